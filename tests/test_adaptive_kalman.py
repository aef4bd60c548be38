"""AdaptiveKalmanFilter: the keypoint stage of the refiner."""
import numpy as np
import pytest
import torch

from mmpose.registry import MODELS

import mmstable  # noqa: F401
from mmstable.evaluation.filters import KalmanFilter
from mmstable.models.layers import AdaptiveKalmanFilter, KalmanTrackState
from mmstable.models.layers.adaptive_kalman import (face_units, fit_similarity,
                                                    similarity_inverse)


def face(offset_x: float, size: float = 100.) -> torch.Tensor:
    """Two landmarks, (0, 0) and (size, size), moved by offset_x: a face
    of extent size x size (face units 1 % of it)."""
    return torch.tensor([[offset_x, 0.], [offset_x + size, size]])


def test_built_from_config_and_zero_init_is_a_fixed_kalman_by_hand():
    filt = MODELS.build(dict(type='AdaptiveKalmanFilter', q_init=1.))
    # extent 100 px: one face unit = 1 px; landmark 0 measured at x = 0, 9, 9
    z = torch.stack([face(0.), face(9.), face(9.)])[None]
    out, state = filt(z)
    x = out[0, :, 0, 0]
    # frame 0: p = z, P = I. frame 1: P⁻ = F I Fᵀ + q G Gᵀ = [[2.25, 1.5],
    # [1.5, 2]], gain (9, 6) / 13 -> p = 81/13, v = 54/13, P = (9, 6, 17) / 13.
    # frame 2: p⁻ = 135/13, P⁻ = (165/52, 59/26, 30/13), gain (165, 118) /
    # 217, innovation 9 - 135/13 = -18/13 -> p = 26325/2821
    assert x.tolist() == pytest.approx([0., 81. / 13., 26325. / 2821.],
                                       abs=1e-5)
    assert out[0, :, 0, 1].tolist() == pytest.approx([0., 0., 0.], abs=1e-6)
    assert state.count.tolist() == [3]
    # P = P⁻ - k P⁻[0, :]: (165/217, 118/217, 30/13 - 118/217 · 59/26)
    expected = [165. / 217., 118. / 217., 6058. / 5642.]
    assert state.cov[0, 0].tolist() == pytest.approx(expected, abs=1e-5)
    assert state.velocity[0, 0, 0].item() == pytest.approx(
        54. / 13. + 118. / 217. * -18. / 13., abs=1e-5)
    # the last innovation is kept (px) for the next frame's cosine feature
    assert state.innovation[0, 0].tolist() == pytest.approx([-18. / 13., 0.],
                                                            abs=1e-5)


def test_successive_innovations_steer_the_gain():
    """An MLP that raises q with the cosine of successive innovations
    follows a steady ramp (same-sign innovations) more closely than the
    fixed filter, and is no faster on a zig-zag (alternating signs)."""
    adaptive = AdaptiveKalmanFilter(q_init=0.01)
    fixed = AdaptiveKalmanFilter(q_init=0.01)
    with torch.no_grad():
        adaptive.mlp[0].weight.zero_()
        adaptive.mlp[0].bias.zero_()
        adaptive.mlp[0].weight[0, 6] = 3.  # hidden 0 = tanh(3 cos)
        adaptive.mlp[2].weight[0, 0] = 4.  # log q += 4 tanh(3 cos)
    t = torch.arange(12.)
    ramp = torch.stack([face(float(x)) for x in t * t * 0.5])[None]
    zigzag = torch.stack([face(float(x)) for x in (t % 2) * 4.])[None]
    with torch.no_grad():
        lag_adaptive = (adaptive(ramp)[0] - ramp).abs().mean()
        lag_fixed = (fixed(ramp)[0] - ramp).abs().mean()
        zz_adaptive = (adaptive(zigzag)[0] - 2.).abs().mean()
        zz_fixed = (fixed(zigzag)[0] - 2.).abs().mean()
    assert lag_adaptive < 0.5 * lag_fixed
    assert zz_adaptive <= zz_fixed + 1e-4


def test_untrained_filter_equals_the_evaluation_kalman_filter():
    """Constant face size: the same estimate as KalmanFilter with the same
    q / r ratio (it depends on nothing else), on a random track."""
    rng = np.random.default_rng(0)
    t = 40
    size = 200.  # face units of 2 px: q, r scale alike
    path = np.cumsum(rng.normal(0, 3, size=(t, 2)), 0)
    z = np.stack([path, path + size], 1) + rng.normal(0, 1, size=(t, 2, 2))
    # keep the extent exactly size x size so the unit is constant
    z[:, 1] = z[:, 0] + size
    filt = AdaptiveKalmanFilter(q_init=0.3)
    with torch.no_grad():
        out, _ = filt(torch.tensor(z, dtype=torch.float32)[None])
    ref = KalmanFilter(process_noise=0.3, measurement_noise=1.)(z)
    np.testing.assert_allclose(out[0].double().numpy(), ref, atol=2e-3)


def test_state_carried_between_calls_and_padding():
    torch.manual_seed(0)
    filt = AdaptiveKalmanFilter()
    with torch.no_grad():  # a trained-looking MLP: the features matter
        for p in filt.mlp.parameters():
            p.normal_(0, 0.5)
    z = torch.cumsum(torch.randn(2, 10, 5, 2), 1) * 3 + torch.rand(
        1, 1, 5, 2) * 100
    ref = z + torch.randn_like(z)
    whole, state = filt(z, ref)
    first, mid = filt(z[:, :4], ref[:, :4])
    second, end = filt(z[:, 4:], ref[:, 4:], mid)
    torch.testing.assert_close(torch.cat([first, second], 1), whole)
    torch.testing.assert_close(end.position, state.position)
    # clip 1 padded after 6 frames: its state is the one after frame 6
    padded, pstate = filt(z, ref, lengths=[10, 6])
    alone, astate = filt(z[1:, :6], ref[1:, :6])
    torch.testing.assert_close(padded[1, :6], alone[0])
    torch.testing.assert_close(pstate.position[1], astate.position[0])
    assert pstate.count.tolist() == [10, 6]
    # the blend uses the raw landmarks: changing them changes the output
    assert not torch.allclose(filt(z, z)[0], whole)


def test_first_frame_of_a_continued_state_is_not_a_restart():
    filt = AdaptiveKalmanFilter(q_init=1.)
    z = torch.stack([face(0.), face(9.)])[None]
    _, state = filt(z[:, :1])
    out, _ = filt(z[:, 1:], state=state)
    assert out[0, 0, 0, 0].item() == pytest.approx(81. / 13., abs=1e-5)
    fresh = KalmanTrackState.zeros(1, 2, z)
    out, _ = filt(z[:, 1:], state=fresh)
    assert out[0, 0, 0, 0].item() == pytest.approx(9., abs=1e-6)


def test_face_units():
    kpts = torch.tensor([[0., 0.], [30., 120.], [10., 10.]])
    assert face_units(kpts).item() == pytest.approx(0.6)  # sqrt(3600)/100


@pytest.mark.parametrize('kwargs, match', [
    (dict(q_init=0.), 'q_init'),
    (dict(q_init=-1.), 'q_init'),
    (dict(blend_init=1.), 'blend_init'),
    (dict(blend_init=-0.1), 'blend_init'),
    (dict(hidden_channels=0), 'hidden_channels'),
])
def test_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AdaptiveKalmanFilter(**kwargs)


def test_bad_shapes():
    filt = AdaptiveKalmanFilter()
    with pytest.raises(ValueError, match=r'\(B, T, K, 2\)'):
        filt(torch.zeros(3, 5, 2))
    with pytest.raises(ValueError, match='must match'):
        filt(torch.zeros(1, 3, 5, 2), torch.zeros(1, 3, 4, 2))


# velocity_damping: F = [[1, 1], [0, ρ]], ρ = 1 − sigmoid(u) (issue 11)


def test_velocity_damping_built_from_config():
    filt = MODELS.build(dict(type='AdaptiveKalmanFilter',
                             velocity_damping=True))
    assert filt.velocity_damping is True
    assert filt.mlp[2].weight.shape == (3, 16)
    assert filt.mlp[2].weight.abs().sum().item() == 0.
    assert filt.mlp[2].bias[2].item() == -30.
    # ρ = 1 − sigmoid(−30) rounds to exactly 1 in float32
    assert (1. - torch.sigmoid(filt.mlp[2].bias[2])).item() == 1.
    assert 'velocity_damping=True' in repr(filt)
    # the default keeps the two-output MLP: earlier checkpoints load
    plain = AdaptiveKalmanFilter()
    assert {k: tuple(v.shape) for k, v in plain.state_dict().items()} == {
        'mlp.0.weight': (16, 8), 'mlp.0.bias': (16, ),
        'mlp.2.weight': (2, 16), 'mlp.2.bias': (2, )}
    assert 'velocity_damping' not in repr(plain)


def _damping_pair(seed: int):
    torch.manual_seed(seed)
    plain = AdaptiveKalmanFilter(velocity_damping=False)
    torch.manual_seed(seed)
    damped = AdaptiveKalmanFilter(velocity_damping=True)
    return plain, damped


def test_velocity_damping_at_init_is_the_constant_velocity_filter():
    plain, damped = _damping_pair(0)
    torch.manual_seed(1)
    z = torch.cumsum(torch.randn(2, 12, 3, 2), 1) * 3 + torch.rand(
        1, 1, 3, 2) * 100
    ref = z + torch.randn_like(z)
    assert torch.equal(plain.mlp[0].weight, damped.mlp[0].weight)
    out_p, st_p = plain(z, ref)
    out_d, st_d = damped(z, ref)
    assert torch.equal(out_p, out_d)
    assert torch.equal(st_p.velocity, st_d.velocity)
    assert torch.equal(st_p.cov, st_d.cov)
    # also with a trained-looking q / blend (u's row still at init)
    with torch.no_grad():
        w = torch.randn(2, 16) * 0.5
        plain.mlp[2].weight.copy_(w)
        damped.mlp[2].weight[:2] = w
    out_p, st_p = plain(z, ref)
    out_d, st_d = damped(z, ref)
    assert not torch.equal(out_p, plain.__class__()(z, ref)[0])
    assert torch.equal(out_p, out_d)
    assert torch.equal(st_p.cov, st_d.cov)


def test_velocity_damping_fixed_retention_by_hand():
    filt = AdaptiveKalmanFilter(q_init=1., velocity_damping=True)
    with torch.no_grad():
        filt.mlp[2].bias[2] = 0.  # ρ = 1 − sigmoid(0) = 1/2
    # one face unit = 1 px; landmark 0 measured at x = 0, 9, 12
    z = torch.stack([face(0.), face(9.), face(12.)])[None]
    out, state = filt(z)
    # frame 0: p = 0, v = 0, P = I.
    # frame 1: p⁻ = 0, v⁻ = 0; F P Fᵀ = (P00 + 2 P01 + P11, ρ (P01 + P11),
    # ρ² P11) = (2, 1/2, 1/4); + q G Gᵀ = (1/4, 1/2, 1) -> (9/4, 1, 5/4).
    # gain (9/4, 1) / (13/4) = (9/13, 4/13), innovation 9 -> p = 81/13,
    # v = 36/13, P = (9/4 · 4/13, 1 − 9/13, 5/4 − 4/13) = (9/13, 4/13,
    # 49/52).
    # frame 2: p⁻ = 81/13 + 36/13 = 9, v⁻ = 18/13; F P Fᵀ = (9/13 + 8/13 +
    # 49/52, (4/13 + 49/52) / 2, 49/208) = (9/4, 5/8, 49/208); + q G Gᵀ ->
    # (5/2, 9/8, 257/208); gain (5/7, 9/28), innovation 12 − 9 = 3 ->
    # p = 9 + 15/7 = 78/7, v = 18/13 + 27/28 = 855/364,
    # P = (5/2 · 2/7, 9/8 · 2/7, 257/208 − 9/28 · 9/8) = (5/7, 9/28,
    # 2545/2912).
    assert out[0, :, 0, 0].tolist() == pytest.approx(
        [0., 81. / 13., 78. / 7.], abs=1e-5)
    assert out[0, :, 0, 1].tolist() == pytest.approx([0., 0., 0.], abs=1e-6)
    assert state.velocity[0, 0].tolist() == pytest.approx(
        [855. / 364., 0.], abs=1e-5)
    assert state.cov[0, 0].tolist() == pytest.approx(
        [5. / 7., 9. / 28., 2545. / 2912.], abs=1e-5)
    assert state.innovation[0, 0].tolist() == pytest.approx([3., 0.],
                                                            abs=1e-5)
    # the same clip without damping: frame 1 equals, frame 2 differs
    # (p = 26325/2821 + … ≠ 78/7)
    plain, _ = AdaptiveKalmanFilter(q_init=1.)(z)
    assert plain[0, 1, 0, 0].item() == pytest.approx(81. / 13., abs=1e-5)
    assert abs(plain[0, 2, 0, 0].item() - 78. / 7.) > 0.1


def test_velocity_damping_retention_init():
    filt = AdaptiveKalmanFilter(velocity_damping=True, retention_init=0.8)
    # u = logit(1 − 0.8) = log(0.2 / 0.8) = −log 4
    assert filt.mlp[2].bias[2].item() == pytest.approx(-np.log(4.))
    assert 'retention_init=0.8' in repr(filt)
    # unlike ρ = 1 (dρ/du ≈ 1e-13), u learns: dρ/du = −0.2 · 0.8
    z = torch.stack([face(0.), face(3.), face(7.), face(8.)])[None]
    out, _ = filt(z)
    out.sum().backward()
    assert filt.mlp[2].bias.grad[2].abs().item() > 1e-3


def test_velocity_damping_towards_zero_is_calmer_on_a_still_face():
    """ρ → 0 forgets the velocity: on a still face whose measurements
    alternate ±1 px the constant-velocity filter chases the alternation
    with its velocity, the damped one moves less at the same q."""
    t = torch.arange(30)
    still = torch.stack([face(float(x)) for x in (t % 2) * 2. - 1.])[None]
    change = {}
    for u in (-30., 30.):  # ρ = 1, ρ = 0
        filt = AdaptiveKalmanFilter(q_init=0.1, velocity_damping=True)
        with torch.no_grad():
            filt.mlp[2].bias[2] = u
            out, _ = filt(still)
        change[u] = out[0, 10:, 0, 0].diff().abs().mean().item()
    # measured: 0.65 px (ρ = 1) vs 0.39 px (ρ = 0) per frame
    assert change[30.] < 0.75 * change[-30.]


@pytest.mark.parametrize('kwargs, match', [
    (dict(velocity_damping=1), 'velocity_damping must be True or False'),
    (dict(velocity_damping='yes'), 'velocity_damping must be True or False'),
    (dict(velocity_damping=None), 'velocity_damping must be True or False'),
    (dict(velocity_damping=True, retention_init=0.), 'retention_init'),
    (dict(velocity_damping=True, retention_init=1.5), 'retention_init'),
    (dict(retention_init=0.9), 'needs velocity_damping=True'),
])
def test_velocity_damping_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AdaptiveKalmanFilter(**kwargs)


# frame='face': a similarity (pose) of a shape in the track's face frame


def test_fit_similarity_by_hand():
    # source (0, 0), (2, 0); target (1, 1), (1, 3): centred source ∓1,
    # target ∓i -> a = (conj(-1)(-i) + conj(1) i) / 2 = i,
    # b = mean(t) - a mean(s) = (1 + 2i) - i = 1 + i
    source = torch.tensor([[[0., 0.], [2., 0.]]])
    target = torch.tensor([[[1., 1.], [1., 3.]]])
    a, b = fit_similarity(source, target)
    assert a[0].tolist() == pytest.approx([0., 1.], abs=1e-6)
    assert b[0].tolist() == pytest.approx([1., 1.], abs=1e-6)
    back = similarity_inverse(a, b, target)
    assert back[0].tolist() == [pytest.approx(p, abs=1e-6)
                                for p in ([0., 0.], [2., 0.])]
    # a scaled, rotated, shifted copy of 3 points: a = 2 e^{iπ/2} = 2i
    src = torch.tensor([[[0., 0.], [4., 0.], [0., 2.]]])
    tgt = torch.stack([5. - 2. * src[..., 1], 7. + 2. * src[..., 0]], -1)
    a, b = fit_similarity(src, tgt)
    assert a[0].tolist() == pytest.approx([0., 2.], abs=1e-5)
    assert b[0].tolist() == pytest.approx([5., 7.], abs=1e-5)


def test_face_frame_built_from_config_state_rows_and_first_frame():
    filt = MODELS.build(dict(type='AdaptiveKalmanFilter', frame='face'))
    assert filt.frame == 'face' and "frame='face'" in repr(filt)
    assert filt.mlp[0].weight.shape == (16, 9)  # + the pose-row input
    assert filt.num_rows(68) == 70
    state = filt.zero_state(3, 68, torch.zeros(1))
    assert state.position.shape == (3, 70, 2) and state.fits(70)
    z = torch.rand(2, 4, 68, 2) * 100
    out, state = filt(z)
    assert out.shape == (2, 4, 68, 2) and state.position.shape == (2, 70, 2)
    # a track's first frame is its measurement; its face frame the first
    # frame centred, the pose points its centre ± (RMS radius, 0)
    torch.testing.assert_close(out[:, 0], z[:, 0], atol=1e-4, rtol=0)
    _, first = filt(z[:, :1])
    centred = z[:, 0] - z[:, 0].mean(1, keepdim=True)
    torch.testing.assert_close(first.position[:, :68], centred, atol=1e-4,
                               rtol=0)
    radius = centred.pow(2).sum(-1).mean(1).sqrt()
    expected = z[:, 0].mean(1)[:, None] + torch.stack(
        [torch.stack([radius, 0 * radius], -1),
         torch.stack([-radius, 0 * radius], -1)], 1)
    torch.testing.assert_close(first.position[:, 68:], expected, atol=1e-4,
                               rtol=0)
    assert filt.state_dict()['mlp.0.weight'].shape == (16, 9)
    plain = AdaptiveKalmanFilter()
    assert plain.num_rows(68) == 68 and plain.frame == 'image'


def test_face_frame_bad_option():
    with pytest.raises(ValueError, match="frame must be 'image' or 'face'"):
        AdaptiveKalmanFilter(frame='crop')


def test_face_frame_untrained_equals_the_evaluation_kalman_on_a_rigid_face():
    """A fixed shape moved by a similarity (turning, growing, translating
    with acceleration): the shape rows never see an innovation and the
    pose points are linear in (A, B), so the untrained filter gives what
    KalmanFilter (the same q / r) gives on every landmark: an independent
    reference, not this module."""
    rng = np.random.default_rng(1)
    shape = rng.normal(0, 40, size=(6, 2))
    t = np.arange(30.)
    angle = 0.3 * np.sin(t / 6.)
    scale = 1. + 0.01 * t
    shift = np.stack([100 + 0.2 * t * t, 80 + 3 * t], -1)
    rot = np.stack([np.stack([np.cos(angle), -np.sin(angle)], -1),
                    np.stack([np.sin(angle), np.cos(angle)], -1)], -2)
    z = scale[:, None, None] * np.einsum('tij,kj->tki', rot, shape) + \
        shift[:, None]
    ref = KalmanFilter(process_noise=0.3, measurement_noise=1.)(z)
    filt = AdaptiveKalmanFilter(q_init=0.3, frame='face')
    with torch.no_grad():
        out, _ = filt(torch.tensor(z, dtype=torch.float64)[None].float())
    np.testing.assert_allclose(out[0].double().numpy(), ref, atol=2e-3)
    # image-frame filter, same here: the two differ only once shape and
    # pose get different gains
    image = AdaptiveKalmanFilter(q_init=0.3)
    with torch.no_grad():
        out_image, _ = image(torch.tensor(z, dtype=torch.float32)[None])
    np.testing.assert_allclose(out_image[0].double().numpy(), ref,
                               atol=2e-3)


def test_face_frame_pose_and_shape_gains_beat_any_one_gain():
    """What the face frame is for: a noisy face that turns and moves. With
    a high q on the pose rows and a low one on the shape rows (set through
    the pose-row input), the error is below that of the per-landmark filter
    at any q of the evaluation grid."""
    rng = np.random.default_rng(2)
    shape = rng.normal(0, 30, size=(68, 2))
    t = np.arange(60.)
    angle = 0.4 * np.sin(t / 5.)
    shift = np.stack([150 + 40 * np.sin(t / 7.), 150 + 4 * t], -1)
    rot = np.stack([np.stack([np.cos(angle), -np.sin(angle)], -1),
                    np.stack([np.sin(angle), np.cos(angle)], -1)], -2)
    gt = np.einsum('tij,kj->tki', rot, shape) + shift[:, None]
    z = gt + rng.normal(0, 1.5, size=gt.shape)
    filt = AdaptiveKalmanFilter(q_init=1e-3, frame='face')
    with torch.no_grad():
        filt.mlp[0].weight.zero_()
        filt.mlp[0].bias.zero_()
        filt.mlp[0].weight[0, 8] = 10.  # hidden 0 = tanh(10) ≈ 1, pose rows
        filt.mlp[2].weight[0, 0] = float(np.log(1e4))  # pose q ≈ 10
        out, _ = filt(torch.tensor(z, dtype=torch.float32)[None])
    err_face = np.linalg.norm(out[0].double().numpy() - gt, axis=-1).mean()
    err_best = min(
        np.linalg.norm(KalmanFilter(process_noise=q)(z) - gt, axis=-1).mean()
        for q in (1e-4, 1e-3, 1e-2, 0.1, 1., 10., 100.))
    err_raw = np.linalg.norm(z - gt, axis=-1).mean()
    assert err_face < 0.8 * err_best < err_raw


# crop_offset: the landmarks' lean towards the crop's centre


def test_crop_offset_built_from_config_and_zero_gain_is_the_plain_filter():
    filt = MODELS.build(dict(type='AdaptiveKalmanFilter', crop_offset=True,
                             crop_offset_window=12, velocity_damping=True,
                             retention_init=0.9))
    assert filt.crop_offset and filt.crop_offset_window == 12
    assert filt.crop_gain.tolist() == [0., 0.]
    assert 'crop_offset=True' in repr(filt)
    plain = AdaptiveKalmanFilter(velocity_damping=True, retention_init=0.9)
    plain.mlp.load_state_dict(filt.mlp.state_dict())
    rng = np.random.default_rng(0)
    z = torch.tensor(rng.normal(0, 20, (2, 9, 5, 2)), dtype=torch.float32)
    crops = torch.tensor(rng.normal(0, 30, (2, 9, 2)), dtype=torch.float32)
    with torch.no_grad():
        out, state = filt(z, crop_centres=crops)
        expected, _ = plain(z)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)
    # the state keeps the offset's running mean, face units
    assert state.offset.shape == (2, 2) and state.offset.abs().sum() > 0


def _crop_step(filt, z, crop, state):
    with torch.no_grad():
        return filt.step(z[None], z[None], state, torch.tensor([crop]))


def test_crop_offset_update_by_hand():
    """One frame from a set state, g = (0, 0.5), q = 1, face units 1 px:
    the predicted face centre m⁻ = (50, 50), the offset's mean ō = (0,
    10), the crop centre c = (50, 64): lean g (c − m⁻ − ō) = (0, 2). The
    landmarks measured 3 px lower than predicted: innovation (0, 1) each,
    the centre's one / (1 − g): (0, 2) = the centre without the lean
    ((53 − 0.5 · 54) / 0.5 = 52) minus 50. Gains with P = 0: P⁻ = q G Gᵀ
    = (1/4, 1/2, 1) → k = (0.2, 0.4): p += (0, 0.4), v = (0, 0.8); ō +=
    (c − mean p − ō) / 6 (six frames seen) = (0, 10 + 3.6 / 6)."""
    filt = AdaptiveKalmanFilter(q_init=1., blend_init=0., crop_offset=True)
    with torch.no_grad():
        filt.crop_gain.copy_(torch.tensor([0., 0.5]))
    pred = face(0.)[None]  # landmarks (0, 0), (100, 100): centre (50, 50)
    state = KalmanTrackState(pred, torch.zeros(1, 2, 2),
                             torch.zeros(1, 2, 3), torch.tensor([5]),
                             torch.zeros(1, 2, 2), torch.tensor([[0., 10.]]))
    out, new = _crop_step(filt, face(0.) + torch.tensor([0., 3.]),
                          [50., 64.], state)
    torch.testing.assert_close(out[0], face(0.) + torch.tensor([0., 0.4]))
    torch.testing.assert_close(new.velocity[0],
                               torch.tensor([[0., 0.8], [0., 0.8]]))
    torch.testing.assert_close(new.offset[0], torch.tensor([0., 10.6]))
    torch.testing.assert_close(new.cov[0, 0],
                               torch.tensor([0.2, 0.4, 0.8]))
    assert new.count.tolist() == [6]


@pytest.mark.parametrize('frame', ['image', 'face'])
def test_crop_offset_removes_the_lean_of_a_jumping_crop(frame):
    """A still face whose landmarks lean by g = 0.3 towards a crop that
    jumps by 10 px, the lean measured from the running mean of the crop's
    offset (the documented rule, simulated here: ō₀ = o₀, then ō_t = ō_t−1
    + (o_t − ō_t−1) / (t + 1)): with the gain known the filtered
    landmarks stay on the face; the plain filter follows the jumps.
    ``frame='face'``: the same on the pose rows (the lean is a translation
    of the face)."""
    filt = AdaptiveKalmanFilter(q_init=1., blend_init=0., crop_offset=True,
                                frame=frame)
    plain = AdaptiveKalmanFilter(q_init=1., blend_init=0., frame=frame)
    with torch.no_grad():
        filt.crop_gain.copy_(torch.tensor([0.3, 0.3]))
    truth = face(0.)  # centre (50, 50), face units 1 px
    crops = torch.tensor([[58., 47.], [68., 47.], [48., 57.], [58., 37.],
                          [58., 47.], [68., 57.]])
    frames, mean_offset = [truth], crops[0] - 50.
    for t in range(1, len(crops)):
        offset = crops[t] - 50.
        frames.append(truth + 0.3 * (offset - mean_offset))
        mean_offset = mean_offset + (offset - mean_offset) / (t + 1)
    z = torch.stack(frames)[None]
    with torch.no_grad():
        out, state = filt(z, crop_centres=crops[None])
        moved, _ = plain(z)
    torch.testing.assert_close(out[0], truth.expand(6, 2, 2), rtol=0,
                               atol=1e-4)
    torch.testing.assert_close(state.offset[0], mean_offset)
    assert (moved[0] - truth).abs().max() > 1.
    if frame == 'face':  # the shape rows are untouched by the lean
        assert state.position.shape[1] == 4


def test_crop_offset_first_frame_is_kept_as_measured():
    filt = AdaptiveKalmanFilter(crop_offset=True)
    with torch.no_grad():
        filt.crop_gain.copy_(torch.tensor([0.4, 0.4]))
    z = face(7.)
    out, state = _crop_step(filt, z, [300., -80.],
                            filt.zero_state(1, 2, z))
    torch.testing.assert_close(out[0], z)
    # ō: the offset of the crop from the measured centre (57, 50)
    torch.testing.assert_close(state.offset[0], torch.tensor([243., -130.]))


@pytest.mark.parametrize('kwargs, match', [
    (dict(crop_offset='yes'), 'crop_offset must be True or False'),
    (dict(crop_offset=True, crop_offset_window=0), 'crop_offset_window'),
    (dict(crop_offset=True, crop_offset_window=2.5), 'crop_offset_window'),
])
def test_crop_offset_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AdaptiveKalmanFilter(**kwargs)


def test_crop_offset_needs_the_crop_centres():
    filt = AdaptiveKalmanFilter(crop_offset=True)
    z = torch.zeros(2, 3, 4, 2)
    with pytest.raises(ValueError, match='needs the crop centres'):
        filt(z)
    with pytest.raises(ValueError, match=r'\(B, T, 2\)'):
        filt(z, crop_centres=torch.zeros(2, 3, 3))
    with pytest.raises(ValueError, match=r'\(N, 2\)'):
        filt.step(z[:, 0], z[:, 0], filt.zero_state(2, 4, z),
                  torch.zeros(3, 2))


def test_crop_offset_gain_is_learnt_from_leaning_tracks():
    """Seeded: still faces whose landmarks lean by 0.3 of the crop's
    jitter (σ 6 px, faces of 100 px) plus noise; a short training with
    the flicker loss learns a positive gain, and the trained filter is
    both steadier and closer to the truth than the plain filter trained
    the same way."""
    from mmstable.models.losses import KeypointFlickerLoss
    gen = torch.Generator().manual_seed(0)
    b, t, k = 16, 24, 5
    truth = torch.rand(b, 1, k, 2, generator=gen) * 100.
    truth = truth.expand(b, t, k, 2)
    centre = truth.mean(2)  # (B, T, 2)
    crops = centre + 5. + torch.randn(b, t, 2, generator=gen) * 6.
    offset = crops - centre
    lean = 0.3 * (offset - offset.mean(1, keepdim=True))
    z = truth + lean[:, :, None] + torch.randn(b, t, k, 2,
                                               generator=gen) * 0.5
    weights = torch.ones(b, t, k)
    loss_fn = KeypointFlickerLoss(jitter_weight=0.2)

    def trained(**kw):
        torch.manual_seed(0)
        filt = AdaptiveKalmanFilter(**kw)
        opt = torch.optim.Adam(filt.parameters(), lr=0.05)
        for _ in range(60):
            out, _ = filt(z, crop_centres=crops if filt.crop_offset else None)
            loss = loss_fn(out, truth, weights)
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            out, _ = filt(z, crop_centres=crops if filt.crop_offset else None)
        return filt, out

    filt, out = trained(crop_offset=True)
    _, plain = trained()
    assert (filt.crop_gain > 0.1).all()
    err = (out - truth).norm(dim=-1).mean()
    err_plain = (plain - truth).norm(dim=-1).mean()
    jit = (out[:, 1:] - out[:, :-1]).norm(dim=-1).mean()
    jit_plain = (plain[:, 1:] - plain[:, :-1]).norm(dim=-1).mean()
    assert err < 0.9 * err_plain and jit < 0.9 * jit_plain
