"""Test-time filters: One Euro (online), Savitzky-Golay and Gaussian
(offline), presets."""
import math

import numpy as np
import pytest
from mmpose.registry import TASK_UTILS

from mmstable.evaluation.filters import (FILTER_PRESETS, GaussianFilter,
                                         OneEuroFilter, SavitzkyGolayFilter,
                                         build_filter)


def one_landmark(xs):
    """(T, 1, 2) track moving along x only."""
    xs = np.asarray(xs, dtype=float)
    return np.stack([xs, np.zeros_like(xs)], -1)[:, None]


@pytest.mark.parametrize('cfg, cls', [
    (dict(type='OneEuroFilter', min_cutoff=1., beta=0.1), OneEuroFilter),
    (dict(type='SavitzkyGolayFilter', window_size=5), SavitzkyGolayFilter),
    (dict(type='GaussianFilter', sigma=2.), GaussianFilter),
])
def test_build_from_config(cfg, cls):
    filt = TASK_UTILS.build(cfg)
    assert isinstance(filt, cls)
    out = filt(np.random.default_rng(0).normal(100, 1, (20, 3, 2)))
    assert out.shape == (20, 3, 2)


@pytest.mark.parametrize('preset', sorted(FILTER_PRESETS))
def test_presets_build(preset):
    name, filt = build_filter(preset)
    assert name == FILTER_PRESETS[preset]['name']
    assert type(filt).__name__ == FILTER_PRESETS[preset]['type']


def test_preset_values_match_sources():
    mp = build_filter('mediapipe_face')[1]
    # MediaPipe face_landmarks_detector_graph.cc
    assert (mp.min_cutoff, mp.beta, mp.d_cutoff) == (0.05, 80.0, 1.0)
    mm = build_filter('mmpose0x_one_euro')[1]
    # MMPose 0.x configs/_base_/filters/one_euro.py
    assert (mm.min_cutoff, mm.beta, mm.fps) == (0.004, 0.7, None)
    sg = build_filter('mmpose0x_savgol')[1]
    assert (sg.window_size, sg.polyorder) == (11, 2)
    g = build_filter('mmpose0x_gaussian')[1]
    assert (g.window_size, g.sigma) == (11, 4.0)
    with pytest.raises(KeyError, match='Unknown filter preset'):
        build_filter('nope')


def test_one_euro_hand_computed():
    # time in frames (t_e = 1), min_cutoff = 1, beta = 0.1, d_cutoff = 1,
    # derivative of the filtered signal; x = 0 then 10.
    # α(f) = r / (r + 1), r = 2π f.  α_d = 2π / (2π + 1) = 0.86269744.
    # dx = (10 − 0) / 1 = 10; dx̂ = α_d · 10 = 8.6269744.
    # f_c = 1 + 0.1 · 8.6269744 = 1.8626974; r = 2π f_c = 11.703673;
    # α = 11.703673 / 12.703673 = 0.92128261; x̂ = α · 10 = 9.2128261.
    filt = OneEuroFilter(min_cutoff=1., beta=0.1, d_cutoff=1.)
    out = filt(one_landmark([0., 10.]))
    assert out[0, 0, 0] == 0.  # first frame passes through
    assert out[1, 0, 0] == pytest.approx(9.2128261, rel=1e-7)
    assert out[1, 0, 1] == 0.

    # third frame, x = 10 again, 'filtered' vs 'raw' derivative:
    # filtered: dx = 10 − 9.2128261 = 0.7871739; raw: dx = 10 − 10 = 0.
    def third(derivative_of, dx):
        a_d = 2 * math.pi / (2 * math.pi + 1)
        dx_hat = a_d * dx + (1 - a_d) * 8.6269744
        r = 2 * math.pi * (1 + 0.1 * abs(dx_hat))
        a = r / (r + 1)
        return a * 10 + (1 - a) * 9.2128261

    for mode, dx in (('filtered', 10 - 9.2128261), ('raw', 0.)):
        filt = OneEuroFilter(1., 0.1, 1., derivative_of=mode)
        out = filt(one_landmark([0., 10., 10.]))
        assert out[2, 0, 0] == pytest.approx(third(mode, dx), rel=1e-6)


def test_one_euro_fps_and_gaps():
    # fps=30: t_e = 1/30 s; with beta=0 the weight is α = r/(r+1),
    # r = 2π · 1 Hz / 30 = 0.20943951, α = r / (r + 1) = 0.17317072
    filt = OneEuroFilter(min_cutoff=1., beta=0., fps=30.)
    assert filt(one_landmark([0., 1.]))[1, 0, 0] == pytest.approx(
        0.17317072, rel=1e-6)
    # a dropped frame (frame_ids 0, 2) doubles t_e
    filt = OneEuroFilter(min_cutoff=1., beta=0.)
    r = 2 * math.pi * 2
    out = filt(one_landmark([0., 1.]), frame_ids=np.array([0, 2]))
    assert out[1, 0, 0] == pytest.approx(r / (r + 1))


def test_one_euro_is_causal_and_resets_per_track():
    rng = np.random.default_rng(0)
    x = 100 + rng.normal(0, 1, (30, 4, 2))
    filt = OneEuroFilter(min_cutoff=0.5, beta=0.05)
    a = filt(x)
    y = x.copy()
    y[20:] += 50.  # change the future
    b = filt(y)
    np.testing.assert_array_equal(a[:20], b[:20])
    # a second call starts from a fresh state: same input, same output
    np.testing.assert_array_equal(filt(x), a)
    # frame by frame equals the whole-track call
    filt.reset()
    online = np.stack([filt.step(f) for f in x])
    np.testing.assert_allclose(online, a)


def test_one_euro_object_scale():
    # value_scale='object' divides the speed by the face size: the same
    # motion on a face twice the size is filtered like half the speed
    rng = np.random.default_rng(1)
    face = rng.uniform(0, 100, (10, 2))
    motion = np.cumsum(rng.normal(0, 1, (40, 1, 2)), 0)
    f = OneEuroFilter(min_cutoff=0.5, beta=1., value_scale='object')
    small = f(face + motion) - face
    big = f(2 * face + 2 * motion) - 2 * face
    np.testing.assert_allclose(big, 2 * small, atol=1e-9)


def test_savgol_keeps_polynomials_and_short_tracks():
    t = np.arange(30, dtype=float)
    quad = one_landmark(0.5 * t**2 - 3 * t + 7)
    filt = SavitzkyGolayFilter(window_size=11, polyorder=2)
    np.testing.assert_allclose(filt(quad), quad, atol=1e-8)
    short = one_landmark([1., 2., 3.])
    assert filt(short).shape == (3, 1, 2)
    with pytest.raises(ValueError, match='odd window_size'):
        SavitzkyGolayFilter(window_size=10)


def test_gaussian_keeps_constants_and_removes_outliers():
    const = np.full((25, 2, 2), 42.)
    np.testing.assert_allclose(GaussianFilter()(const), const)
    spike = const.copy()
    spike[12] += 100.
    # the median (window 11) removes a one-frame spike entirely
    np.testing.assert_allclose(GaussianFilter()(spike), const)
    # edges stay on the series (no zero padding)
    ramp = one_landmark(np.arange(20.) + 100.)
    out = GaussianFilter(window_size=5, sigma=1.)(ramp)
    assert out[0, 0, 0] == pytest.approx(100., abs=1.)
    assert GaussianFilter(sigma=2.)(one_landmark([5.])).shape == (1, 1, 2)


def test_filters_lower_jitter():
    rng = np.random.default_rng(2)
    noisy = 200 + rng.normal(0, 1, (100, 5, 2))
    for filt in (OneEuroFilter(min_cutoff=0.05, beta=0.01),
                 SavitzkyGolayFilter(), GaussianFilter()):
        diff = np.diff(filt(noisy), axis=0)
        assert (diff**2).mean() < 0.5 * (np.diff(noisy, axis=0)**2).mean()
