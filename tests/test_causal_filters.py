"""Constant-velocity Kalman and EMA filters; values worked out by hand."""
import numpy as np
import pytest
from mmpose.registry import TASK_UTILS

from mmstable.evaluation.filters import EMAFilter, KalmanFilter, build_filter


def one_landmark(xs):
    """(T, 1, 2) track moving along x only."""
    xs = np.asarray(xs, dtype=float)
    return np.stack([xs, np.zeros_like(xs)], -1)[:, None]


@pytest.mark.parametrize('cfg, cls, name', [
    (dict(type='KalmanFilter', process_noise=0.1), KalmanFilter, 'Kalman'),
    (dict(type='EMAFilter', alpha=0.3), EMAFilter, 'EMA'),
])
def test_build_from_config(cfg, cls, name):
    filt = TASK_UTILS.build(cfg)
    assert isinstance(filt, cls) and filt.online
    assert build_filter(cfg)[0] == name
    assert build_filter(dict(cfg, name='K2'))[0] == 'K2'
    out = filt(np.random.default_rng(0).normal(100, 1, (20, 3, 2)))
    assert out.shape == (20, 3, 2)


def test_ema_hand_computed_and_gaps():
    # alpha 0.5: 0 → 0; 10 → 0.5·10 + 0.5·0 = 5; 10 → 5 + 0.5·5 = 7.5
    out = EMAFilter(alpha=0.5)(one_landmark([0., 10., 10.]))
    np.testing.assert_allclose(out[:, 0, 0], [0., 5., 7.5])
    # a 2-frame gap: a = 1 − 0.5² = 0.75 → 0.75·10 = 7.5
    out = EMAFilter(alpha=0.5)(one_landmark([0., 10.]), np.array([3, 5]))
    np.testing.assert_allclose(out[:, 0, 0], [0., 7.5])
    # alpha 1 passes through
    x = one_landmark([1., 4., 2.])
    np.testing.assert_allclose(EMAFilter(alpha=1.)(x), x)


def test_kalman_hand_computed():
    # q = 0, r = 1, P0 = I, z = 0, 1, 1 (x only).
    # frame 1: predict s = (0, 0), P = F I Fᵀ = [[2, 1], [1, 1]];
    #   S = 2 + 1 = 3, K = (2/3, 1/3), innovation 1 → s = (2/3, 1/3);
    #   P = P − K P[0] = [[2/3, 1/3], [1/3, 2/3]].
    # frame 2: predict s = (2/3 + 1/3, 1/3) = (1, 1/3);
    #   P = F P Fᵀ = [[2, 1], [1, 2/3]]; S = 3, K = (2/3, 1/3);
    #   innovation 1 − 1 = 0 → p = 1.
    out = KalmanFilter(process_noise=0., measurement_noise=1.)(
        one_landmark([0., 1., 1.]))
    np.testing.assert_allclose(out[:, 0, 0], [0., 2. / 3., 1.])
    np.testing.assert_allclose(out[:, 0, 1], 0.)  # y stays 0


def test_kalman_depends_on_the_noise_ratio_only_and_tracks_a_ramp():
    x = np.random.default_rng(1).normal(50, 2, (30, 4, 2))
    a = KalmanFilter(process_noise=0.05, measurement_noise=1.)(x)
    b = KalmanFilter(process_noise=0.5, measurement_noise=10.)(x)
    np.testing.assert_allclose(a, b)
    # constant velocity: no steady-state lag (an EMA lags (1-α)/α·v = 3 px)
    ramp = one_landmark(np.arange(200.) * 3.)
    k = KalmanFilter(process_noise=0.01)(ramp)
    e = EMAFilter(alpha=0.5)(ramp)
    assert abs(k[-1, 0, 0] - ramp[-1, 0, 0]) < 1e-3
    assert e[-1, 0, 0] - ramp[-1, 0, 0] == pytest.approx(-3.)


def test_kalman_gap_is_one_prediction_of_two_frames():
    # q = 0, r = 1, z = 0 at frame 0 and z = 1 at frame 2 (Δ = 2):
    # P = F I Fᵀ with F = [[1, 2], [0, 1]] = [[5, 2], [2, 1]]; S = 6,
    # K = (5/6, 2/6) → p = 5/6.
    out = KalmanFilter(process_noise=0.)(one_landmark([0., 1.]),
                                         np.array([0, 2]))
    assert out[1, 0, 0] == pytest.approx(5. / 6.)


@pytest.mark.parametrize('cls', [KalmanFilter, EMAFilter])
def test_causal_and_reset_per_track(cls):
    rng = np.random.default_rng(2)
    x = rng.normal(100, 3, (20, 2, 2))
    filt = cls()
    full = filt(x)
    # causal: the first 10 outputs do not see the later frames
    np.testing.assert_allclose(filt(x[:10]), full[:10])
    # a second call starts afresh (one call = one track)
    np.testing.assert_allclose(filt(x), full)
    with pytest.raises(ValueError, match='must increase'):
        filt(x[:3], np.array([0, 2, 2]))


@pytest.mark.parametrize('cfg, match', [
    (dict(type='EMAFilter', alpha=0.), r'alpha must be in \(0, 1\]'),
    (dict(type='EMAFilter', alpha=1.5), r'alpha must be in \(0, 1\]'),
    (dict(type='KalmanFilter', process_noise=-1.), 'process_noise must'),
    (dict(type='KalmanFilter', measurement_noise=0.), 'measurement_noise'),
])
def test_bad_arguments(cfg, match):
    with pytest.raises(ValueError, match=match):
        TASK_UTILS.build(cfg)


def test_lower_jitter_of_a_still_noisy_landmark():
    x = np.random.default_rng(3).normal(100, 2, (200, 1, 2))
    raw = np.diff(x, axis=0).std()
    for filt in (KalmanFilter(process_noise=0.01), EMAFilter(alpha=0.2)):
        assert np.diff(filt(x), axis=0).std() < 0.5 * raw
