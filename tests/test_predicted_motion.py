"""motion_compensation='predicted': the state is warped by a constant-velocity
prediction from the refiner's own output keypoints of the two previous frames
(mmstable.structures.predicted_motion), in training clips and streaming."""
import copy

import pytest
import torch

from mmpose.registry import MODELS
from mmstable.models.heads.convlstm_refine_head import _argmax_keypoints
from mmstable.structures import TrackState, predicted_motion

KPTS = torch.tensor([[[4., 4.], [10., 4.], [7., 9.]]])


def gaussian(cx, cy, size=16, sigma=1.):
    y, x = torch.meshgrid(torch.arange(size, dtype=torch.float32),
                          torch.arange(size, dtype=torch.float32),
                          indexing='ij')
    return torch.exp(-((x - cx)**2 + (y - cy)**2) / (2 * sigma**2))


def history(prev, last, count=2):
    return (torch.stack([prev, last], 1), torch.ones(prev.shape[0], 2, 3),
            torch.tensor([count]))


def test_constant_translation_predicts_that_translation():
    # refined_{t-2} -> refined_{t-1} moved by (3, -2): S_t is that shift
    motion = predicted_motion(*history(KPTS, KPTS + torch.tensor([3., -2.])))
    expected = torch.tensor([[[1., 0., 3.], [0., 1., -2.], [0., 0., 1.]]])
    torch.testing.assert_close(motion, expected)
    # damping 0.5 halves it, damping 1 is the identity
    half = predicted_motion(*history(KPTS, KPTS + torch.tensor([3., -2.])),
                            damping=.5)
    torch.testing.assert_close(half[0, :2, 2], torch.tensor([1.5, -1.]))
    torch.testing.assert_close(half[0, :2, :2], torch.eye(2))
    full = predicted_motion(*history(KPTS, KPTS + 3.), damping=1.)
    torch.testing.assert_close(full, torch.eye(3)[None])


def test_zero_motion_or_short_history_gives_identity():
    torch.testing.assert_close(predicted_motion(*history(KPTS, KPTS)),
                               torch.eye(3)[None])
    for count in (0, 1):
        moved = history(KPTS, KPTS + 5., count)
        torch.testing.assert_close(predicted_motion(*moved),
                                   torch.eye(3)[None])


def test_state_moves_by_the_refined_velocity_not_the_raw_keypoints():
    """Refined keypoints moved +4 px down between the last two frames; the
    raw keypoints of the new frame jitter 3 px right: the state moves 4 px
    down ('similarity' would have followed the raw jitter)."""
    eye = torch.eye(3)[None]
    scores = torch.ones(1, 3)
    blob = gaussian(7., 6.)[None, None]
    state = TrackState(blob, blob, eye, KPTS, scores)
    state = state.with_refined(KPTS, scores)
    assert int(state.refined_count) == 1
    # one frame of history: identity
    still = state.carried_to(eye, KPTS + torch.tensor([3., 0.]), scores,
                             'predicted')
    torch.testing.assert_close(still.h, blob)
    state = state.with_refined(KPTS + torch.tensor([0., 4.]), scores)
    assert int(state.refined_count) == 2
    moved = state.carried_to(eye, KPTS + torch.tensor([3., 0.]), scores,
                             'predicted')
    torch.testing.assert_close(moved.h[0, 0], gaussian(7., 10.), atol=1e-5,
                               rtol=0)
    # the history travels with the state through cat / select
    both = TrackState.cat([moved, TrackState.zeros(1, 1, (16, 16), 3, blob)])
    assert both.refined.shape == (2, 2, 3, 2)
    torch.testing.assert_close(both.select(0).refined, moved.refined)


def make_head(**kwargs):
    k, c, hm, size = 5, 8, 16, 64
    cfg = dict(
        type='ConvLSTMRefineHead', hidden_channels=2,
        base_head=dict(type='HeatmapHead', in_channels=c, out_channels=k,
                       deconv_out_channels=None,
                       decoder=dict(type='MSRAHeatmap',
                                    input_size=(size, size),
                                    heatmap_size=(hm, hm), sigma=1)),
        loss=dict(type='KeypointMSELoss', use_target_weight=True),
        motion_compensation='predicted')
    cfg.update(kwargs)
    torch.manual_seed(0)
    head = MODELS.build(cfg)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in head.named_parameters():
            if not name.startswith('base_head'):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    return head


def moving_heatmaps(b=2, t=6, k=5):
    maps = torch.stack([
        torch.stack([
            torch.stack([gaussian(3 + 1.5 * i + j + r, 4 + 0.5 * i + r)
                         for j in range(k)]) for i in range(t)
        ]) for r in range(b)
    ])
    return maps + 0.05 * torch.rand(maps.shape, generator=torch.Generator(
    ).manual_seed(0))


def test_head_keeps_refined_history_and_streams_like_a_clip():
    head = make_head().eval()
    maps = moving_heatmaps()
    with torch.no_grad():
        whole, state = head.refine(maps)
        # the state's history = the decoded outputs of the last two frames
        for j, i in enumerate((-2, -1)):
            kpts, _ = _argmax_keypoints(whole[:, i])
            torch.testing.assert_close(state.refined[:, j], kpts)
        assert state.refined_count.tolist() == [2, 2]
        # frame by frame, the state carried between calls: same outputs
        st, steps = None, []
        for i in range(maps.shape[1]):
            out, st = head.refine(maps[:, i:i + 1], st)
            steps.append(out)
        torch.testing.assert_close(torch.cat(steps, 1), whole)
        # B clips in parallel = each alone
        for r in range(maps.shape[0]):
            alone, _ = head.refine(maps[r:r + 1])
            torch.testing.assert_close(alone, whole[r:r + 1])
    # the prediction changes the result (vs the raw-keypoint similarity)
    other = make_head(motion_compensation='similarity').eval()
    with torch.no_grad():
        assert not torch.allclose(other.refine(maps)[0], whole)


def test_bad_damping_is_refused():
    with pytest.raises(ValueError, match='motion_damping'):
        make_head(motion_damping=1.5)
