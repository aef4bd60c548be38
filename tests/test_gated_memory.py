"""memory='gated': a full-resolution memory of the refiner's own output
heatmaps, warped with the state, blended with the current map by a learnt
per-landmark-per-pixel gate: s_t = g ⊙ W(s_{t-1}) + (1 - g) ⊙ r_t."""
import copy

import pytest
import torch

from mmpose.registry import MODELS
from mmstable.structures import TrackState

K, C, HM, INPUT = 3, 8, 16, 64
BASE_HEAD = dict(
    type='HeatmapHead', in_channels=C, out_channels=K,
    deconv_out_channels=None,
    decoder=dict(type='MSRAHeatmap', input_size=(INPUT, INPUT),
                 heatmap_size=(HM, HM), sigma=1))
KPTS = torch.tensor([[[4., 4.], [10., 4.], [7., 9.]]])


def make_head(**kwargs):
    cfg = dict(type='ConvLSTMRefineHead', base_head=copy.deepcopy(BASE_HEAD),
               memory='gated', motion_compensation='predicted',
               loss=dict(type='KeypointMSELoss', use_target_weight=True))
    cfg.update(kwargs)
    torch.manual_seed(0)
    return MODELS.build(cfg)


def gaussian(cx, cy, size=HM, sigma=1.):
    y, x = torch.meshgrid(torch.arange(size, dtype=torch.float32),
                          torch.arange(size, dtype=torch.float32),
                          indexing='ij')
    return torch.exp(-((x - cx)**2 + (y - cy)**2) / (2 * sigma**2))


def test_gate_half_without_motion_is_an_exact_ema():
    # no motion: identity crops, motion_compensation='none' and no
    # non-rigid prediction (random maps would give 'predicted' and it a
    # random velocity from frame 2 on)
    head = make_head(gate_init=0.5, motion_compensation='none',
                     nonrigid_prediction=0.)
    torch.manual_seed(1)
    o = torch.rand(2, 3, K, HM, HM)
    s, state = head.refine(o)
    torch.testing.assert_close(s[:, 0], o[:, 0])  # frame 0: s_0 = o_0
    torch.testing.assert_close(s[:, 1], 0.5 * o[:, 0] + 0.5 * o[:, 1])
    torch.testing.assert_close(s[:, 2], 0.5 * s[:, 1] + 0.5 * o[:, 2])
    torch.testing.assert_close(state.memory, s[:, 2])
    assert state.memory_count.tolist() == [1, 1]


def test_gate_init_sets_the_blend():
    head = make_head(gate_init=0.8)
    o = torch.rand(1, 2, K, HM, HM)
    s, _ = head.refine(o)
    torch.testing.assert_close(s[:, 1], 0.8 * o[:, 0] + 0.2 * o[:, 1])
    with pytest.raises(ValueError):
        make_head(gate_init=1.)
    with pytest.raises(ValueError):
        make_head(share_across_keypoints=False)


def test_known_translation_warps_the_memory():
    """Refined keypoints moved (3, -2) px between the last two frames
    (identity crops): the memory peak moves by (3, -2)."""
    eye, scores = torch.eye(3)[None], torch.ones(1, K)
    zero = torch.zeros(1, K * 2, 8, 8)
    memory = gaussian(6., 7.).expand(1, K, HM, HM).contiguous()
    state = TrackState(zero, zero, eye, KPTS, scores, memory=memory,
                       memory_count=torch.ones(1, dtype=torch.long))
    state = state.with_refined(KPTS, scores).with_refined(
        KPTS + torch.tensor([3., -2.]), scores)
    moved = state.carried_to(eye, KPTS, scores, 'predicted', stride=2)
    torch.testing.assert_close(moved.memory[0, 0], gaussian(9., 5.),
                               atol=1e-5, rtol=0)
    # the gate (0.5) then blends the *moved* memory with the current map
    head = make_head()
    o = torch.rand(1, 1, K, HM, HM)
    s, _ = head.refine(o, state)
    torch.testing.assert_close(s[0, 0], 0.5 * moved.memory[0] + 0.5 * o[0, 0],
                               atol=1e-5, rtol=0)


def test_streaming_equals_one_clip_and_fresh_rows_have_no_memory():
    head = make_head()
    with torch.no_grad():
        head.gate_proj.weight.normal_()
        head.out_proj.weight.normal_(std=0.1)
    o = torch.rand(1, 4, K, HM, HM)
    full, _ = head.refine(o)
    s01, state = head.refine(o[:, :2])
    s23, _ = head.refine(o[:, 2:], state)
    torch.testing.assert_close(torch.cat([s01, s23], 1), full)
    # a batch mixing a continued track and a fresh one: the fresh row's
    # first frame is its plain refined map (no memory)
    fresh = TrackState.zeros(1, state.h.shape[1], state.h.shape[-2:], K, o,
                             memory_shape=(K, HM, HM))
    both, _ = head.refine(o[:, 2:].expand(2, -1, -1, -1, -1),
                          TrackState.cat([state, fresh]))
    torch.testing.assert_close(both[0], s23[0])
    alone, _ = head.refine(o[:, 2:])
    torch.testing.assert_close(both[1], alone[0])


def test_gate_gets_gradients_and_default_has_no_memory():
    head = make_head()
    o = torch.rand(1, 3, K, HM, HM)
    s, _ = head.refine(o)
    (s * torch.rand_like(s)).sum().backward()
    assert head.gate_proj.bias.grad.abs().item() > 0
    default = make_head(memory=None)
    assert not hasattr(default, 'gate_proj')
    _, state = default.refine(o)
    assert state.memory.shape[1] == 0


def test_disagreement_init_lowers_the_gate_where_maps_disagree():
    head = make_head(gate_disagreement_init=-10., motion_compensation='none')
    o = torch.zeros(1, 2, K, HM, HM)
    o[0, 1, :, 8:, :] = 1.  # frame 1 disagrees with frame 0 on its lower half
    s, _ = head.refine(o)
    torch.testing.assert_close(s[0, 1, :, :4], torch.zeros(K, 4, HM))
    # pooled |r - m| = 1 there: g = sigmoid(-10), s ~ o
    assert (s[0, 1, :, 12:] > 0.99).all()
