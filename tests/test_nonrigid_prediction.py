"""nonrigid_prediction: each landmark's state also moves by its own refined
motion beyond the face's similarity (a constant-velocity prediction of a
turning head's parallax / expression; mmstable.structures.nonrigid_velocity,
TrackState.carried_to), in training clips, streaming and the exported step."""
import pytest
import torch

from mmpose.registry import MODELS
from mmstable.codecs.pdc_codec import _pdc
from mmstable.structures import (TrackState, nonrigid_velocity, shift_maps,
                                 warp_maps)

# a square centred at (5, 5): its stretch (εx, −εy) about the centre has no
# similarity part (zero mean, Σ x·r = ε Σ (x² − y²) = 0, Σ x × r = −2ε Σ xy
# = 0), so it is all non-rigid
SQUARE = torch.tensor([[[4., 4.], [6., 4.], [6., 6.], [4., 6.]]])
STRETCH = torch.tensor([[[-1., 1.], [1., 1.], [1., -1.], [-1., -1.]]])


def history(prev, last, count=2):
    return (torch.stack([prev, last], 1), torch.ones(prev.shape[0], 2, 4),
            torch.tensor([count]))


def gaussian(cx, cy, size=16, sigma=1.):
    y, x = torch.meshgrid(torch.arange(size, dtype=torch.float32),
                          torch.arange(size, dtype=torch.float32),
                          indexing='ij')
    return torch.exp(-((x - cx)**2 + (y - cy)**2) / (2 * sigma**2))


def test_velocity_is_the_motion_beyond_the_similarity():
    # a stretch by ε = 0.5 plus a shift (3, -2): the shift is the
    # similarity's, each point keeps ε·(x - 5, -(y - 5))
    moved = SQUARE + 0.5 * STRETCH + torch.tensor([3., -2.])
    torch.testing.assert_close(nonrigid_velocity(*history(SQUARE, moved)),
                               0.5 * STRETCH)
    # rigid only (90° turn about the centre, then a shift): nothing left
    turned = torch.stack([10. - SQUARE[..., 1], SQUARE[..., 0]], -1) + 1.
    torch.testing.assert_close(nonrigid_velocity(*history(SQUARE, turned)),
                               torch.zeros(1, 4, 2), atol=1e-5, rtol=0)
    # fewer than two refined frames: no prediction
    for count in (0, 1):
        torch.testing.assert_close(
            nonrigid_velocity(*history(SQUARE, moved, count)),
            torch.zeros(1, 4, 2))


def test_running_mean_of_the_velocity():
    """with_refined keeps v ← a·v + (1−a)·v_now, a = 0.5. Frames: SQUARE
    (one frame: v = 0); SQUARE stretched by ε = 0.5 (v_now = 0.5·STRETCH,
    v = 0.25·STRETCH); SQUARE again: from the stretched square (centred
    (1.5x, 0.5y), x, y = ±1) back to (x, y) the fitted scale is
    Σ(1.5x² + 0.5y²) / Σ(2.25x² + 0.25y²) = 0.8, v_now = (x, y) − 0.8 ·
    (1.5x, 0.5y) = (−0.2x, 0.6y), v = 0.125·(x, −y) + (−0.1x, 0.3y) =
    (0.025x, 0.175y)."""
    scores = torch.ones(1, 4)
    centred = SQUARE - 5.
    state = TrackState.zeros(1, 4, (16, 16), 4, torch.zeros(1))
    state = state.with_refined(SQUARE, scores, 0.5)
    torch.testing.assert_close(state.refined_velocity, torch.zeros(1, 4, 2))
    state = state.with_refined(SQUARE + 0.5 * STRETCH, scores, 0.5)
    torch.testing.assert_close(state.refined_velocity, 0.25 * STRETCH)
    state = state.with_refined(SQUARE, scores, 0.5)
    torch.testing.assert_close(state.refined_velocity,
                               centred * torch.tensor([0.025, 0.175]))
    # a = 0: the last pair only; the field travels through cat / select
    fresh = state.with_refined(SQUARE + 2. * STRETCH, scores)
    torch.testing.assert_close(fresh.refined_velocity, 2. * STRETCH)
    both = TrackState.cat([fresh, state])
    torch.testing.assert_close(both.select(1).refined_velocity,
                               state.refined_velocity)


def blob_state(refined_last, affine):
    """Four landmarks, one channel each (h = c), every map a blob at
    (7, 6); raw keypoints still, so W_t is the identity for all."""
    blobs = gaussian(7., 6.)[None, None].repeat(1, 4, 1, 1)
    scores = torch.ones(1, 4)
    state = TrackState(blobs, blobs.clone(), affine, SQUARE, scores)
    state = state.with_refined(SQUARE, scores)
    return state.with_refined(refined_last, scores), scores


def test_shift_maps_is_the_bilinear_translation():
    """shift_maps = warp_maps with each group's translation (|s| ≤ 1 px):
    same values; a whole-pixel shift moves the blob exactly."""
    gen = torch.Generator().manual_seed(0)
    maps = torch.rand(2, 3, 4, 9, 11, generator=gen)
    shift = torch.tensor([[[0.3, -0.7], [1., 0.], [-0.25, 0.9]],
                          [[0., 0.], [-1., -1.], [0.5, 0.5]]])
    out = shift_maps(maps, shift)
    eye = torch.eye(3).repeat(6, 1, 1)
    eye[:, :2, 2] = shift.flatten(0, 1)
    want = warp_maps(maps.flatten(0, 1), eye).view(maps.shape)
    torch.testing.assert_close(out, want, atol=1e-6, rtol=0)
    blob = gaussian(7., 6.)[None, None, None]
    moved = shift_maps(blob, torch.tensor([[[1., -1.]]]))
    torch.testing.assert_close(moved[0, 0, 0], gaussian(8., 5.), atol=1e-6,
                               rtol=0)
    # larger shifts are clamped to one pixel per axis
    torch.testing.assert_close(shift_maps(blob, torch.tensor([[[3., 0.]]])),
                               shift_maps(blob, torch.tensor([[[1., 0.]]])))


def test_each_landmark_state_moves_by_its_own_velocity():
    """Image → heatmap = 2× (both frames): ε = 0.25 in the image is 0.5 px
    on the heatmap; the blob of landmark j moves by β · 0.5 · STRETCH_j,
    at most one heatmap pixel (ε = 1: (±2, ±2) px → length 1)."""
    affine = torch.diag(torch.tensor([2., 2., 1.]))[None]
    for eps, beta, step in ((.25, 1., .5), (.25, .5, .25),
                            (1., 1., 2**-0.5)):
        state, scores = blob_state(SQUARE + eps * STRETCH, affine)
        moved = state.carried_to(affine, SQUARE, scores, 'similarity',
                                 nonrigid=beta)
        for j in range(4):
            dx, dy = (step * STRETCH[0, j]).tolist()
            for maps in (moved.h, moved.c):
                # bilinear resampling keeps the centre of mass of a blob
                # inside the map
                com = torch.stack([
                    (maps[0, j].sum(0) * torch.arange(16.)).sum(),
                    (maps[0, j].sum(1) * torch.arange(16.)).sum()
                ]) / maps[0, j].sum()
                torch.testing.assert_close(
                    com, torch.tensor([7. + dx, 6. + dy]), atol=1e-4,
                    rtol=0)
    # β = 0: the plain warp (identity here)
    plain = state.carried_to(affine, SQUARE, scores, 'similarity')
    torch.testing.assert_close(plain.h, state.h)
    # at stride 2 the same heatmap shift is half a pixel of the state
    state, scores = blob_state(SQUARE + .25 * STRETCH, affine)
    half = state.carried_to(affine, SQUARE, scores, stride=2, nonrigid=1.)
    torch.testing.assert_close(
        half.h, shift_maps(state.h[:, :, None], 0.25 * STRETCH)[:, :, 0])


def test_still_history_or_channels_that_do_not_split_by_landmark():
    affine = torch.eye(3)[None]
    state, scores = blob_state(SQUARE, affine)
    moved = state.carried_to(affine, SQUARE, scores, nonrigid=1.)
    torch.testing.assert_close(moved.h, state.h, atol=1e-6, rtol=0)
    odd = TrackState(state.h[:, :3], state.c[:, :3], affine, SQUARE, scores)
    with pytest.raises(ValueError, match='K equal channel groups'):
        odd.carried_to(affine, SQUARE, scores, nonrigid=1.)


def make_head(**kwargs):
    k, c, hm, size = 5, 8, 16, 64
    cfg = dict(
        type='ConvLSTMRefineHead', hidden_channels=2,
        base_head=dict(type='HeatmapHead', in_channels=c, out_channels=k,
                       deconv_out_channels=None,
                       decoder=dict(type='MSRAHeatmap',
                                    input_size=(size, size),
                                    heatmap_size=(hm, hm), sigma=1)),
        decoder=dict(type='PDCCodec', input_size=(size, size),
                     heatmap_size=(hm, hm), sigma=1, pdc_threshold=0.2),
        loss=dict(type='KeypointMSELoss', use_target_weight=True),
        keypoint_filter=None, nonrigid_prediction=1.)
    cfg.update(kwargs)
    torch.manual_seed(0)
    head = MODELS.build(cfg)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in head.named_parameters():
            # random refiner weights; the learnt gain keeps its init
            if not name.startswith('base_head') and name != 'nonrigid_gain':
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    return head


def deforming_heatmaps(b=2, t=6, k=5):
    # landmarks spreading apart over time: non-rigid motion
    maps = torch.stack([
        torch.stack([
            torch.stack([gaussian(4 + j * (1.5 + 0.2 * i) + r, 5 + 0.3 * i)
                         for j in range(k)]) for i in range(t)
        ]) for r in range(b)
    ])
    return maps + 0.05 * torch.rand(maps.shape, generator=torch.Generator(
    ).manual_seed(0))


def test_head_keeps_pdc_history_and_streams_like_a_clip():
    head = make_head().eval()
    assert head.needs_refined_history()
    maps = deforming_heatmaps()
    with torch.no_grad():
        whole, state = head.refine(maps)
        # the history = the PDC-decoded outputs of the last two frames
        for j, i in enumerate((-2, -1)):
            kpts, _ = _pdc(whole[:, i], 0.2, 'absolute')
            torch.testing.assert_close(state.refined[:, j], kpts)
        st, steps = None, []
        for i in range(maps.shape[1]):
            out, st = head.refine(maps[:, i:i + 1], st)
            steps.append(out)
        torch.testing.assert_close(torch.cat(steps, 1), whole)
        for r in range(maps.shape[0]):
            alone, _ = head.refine(maps[r:r + 1])
            torch.testing.assert_close(alone, whole[r:r + 1])
        # the prediction changes the result
        assert not torch.allclose(
            make_head(nonrigid_prediction=0.).eval().refine(maps)[0], whole)
    assert not make_head(nonrigid_prediction=0.).needs_refined_history()


def test_learnt_gain_per_landmark_starts_at_the_setting_and_trains():
    """learn_nonrigid_gain: gain_k = 2·sigmoid(u_k), u_k = logit(β / 2) at
    init, so β = 1 gives u = 0 and the fixed head's output; a loss on the
    output reaches u through the warp of each landmark's state."""
    maps = deforming_heatmaps()
    head = make_head(learn_nonrigid_gain=True)
    assert head.nonrigid_gain.shape == (5, )
    torch.testing.assert_close(head.nonrigid_gain.detach(), torch.zeros(5))
    fixed = make_head()
    with torch.no_grad():
        fixed.load_state_dict(
            {k: v for k, v in head.state_dict().items()
             if k != 'nonrigid_gain'})
        torch.testing.assert_close(head.eval().refine(maps)[0],
                                   fixed.eval().refine(maps)[0])
    head.train()
    out, _ = head.refine(maps)
    out.square().sum().backward()
    assert head.nonrigid_gain.grad.abs().min() > 0
    half = make_head(nonrigid_prediction=0.5, learn_nonrigid_gain=True)
    torch.testing.assert_close(2 * torch.sigmoid(half.nonrigid_gain.detach()),
                               torch.full((5, ), 0.5))


@pytest.mark.parametrize('bad, match', [
    (dict(nonrigid_prediction=1.5), r'nonrigid_prediction must be in'),
    (dict(nonrigid_prediction=-0.1), r'nonrigid_prediction must be in'),
    (dict(nonrigid_smoothing=1.), r'nonrigid_smoothing must be in'),
    (dict(nonrigid_consistency=1.), r'nonrigid_consistency must be in'),
    (dict(nonrigid_prediction=0., learn_nonrigid_gain=True),
     'learn_nonrigid_gain needs'),
    (dict(share_across_keypoints=False), 'share_across_keypoints=True'),
    (dict(warp_state=False), 'warp_state=True'),
])
def test_bad_settings_are_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        make_head(**bad)
