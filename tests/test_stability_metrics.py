"""MCV (eq. 9-10), MAV (eq. 11) and their extras; docs/conventions.md §4."""
import importlib.util
import os.path as osp
import random
import warnings

import numpy as np
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.structures import InstanceData
from mmpose.registry import METRICS
from mmpose.structures import PoseDataSample

from mmstable.evaluation import (MAV, MCV, acceleration_error,
                                 allan_deviation, allan_variance,
                                 coefficient_of_variation)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

# Video A: 1 landmark, 3 frames.      Video B: 2 landmarks, 2 frames.
VIDEO_A = np.array([[[10., 20.]], [[12., 20.]], [[14., 23.]]])
VIDEO_B = np.array([[[100., 50.], [200., 100.]],
                    [[101., 50.], [200., 98.]]])
# Video A, x = 10, 12, 14: mean 12, Σd² = 4+0+4 = 8, var = 8/2 = 4, std 2,
#   CV = 2/12 = 16.666667 %.  y = 20, 20, 23: mean 21, Σd² = 1+1+4 = 6,
#   var = 3, std = 1.7320508, CV = 1.7320508/21 = 8.2478609 %.
#   CVar_A = (16.666667 + 8.2478609) / 2 = 12.457264 %.
#   AVar_A: steps (2, 0), (2, 3) → ‖·‖² = 4, 13; (4 + 13) / (2·2) = 4.25 px².
# Video B, landmark 0 x = 100, 101: mean 100.5, std = 1/√2 = 0.70710678,
#   CV = 0.70358884 %; y constant → 0. Landmark 1 x constant → 0;
#   y = 100, 98: mean 99, std = 2/√2 = 1.4142136, CV = 1.4285086 %.
#   CVar_B = (0.70358884 + 0 + 0 + 1.4285086) / 4 = 0.53302437 %.
#   AVar_B: landmark 0: 1² / (2·1) = 0.5; landmark 1: 2² / 2 = 2; mean 1.25.
CVAR_A, CVAR_B = 12.457264, 0.53302437
MCV_AB = (CVAR_A + CVAR_B) / 2  # 6.4951441 %
MAV_AB = (4.25 + 1.25) / 2  # 2.75 px²


def samples(video_id, series, gt=None, tensor=False, **meta):
    """Per-frame dicts as MMEngine's Evaluator hands them to metrics."""
    out = []
    for t, kpts in enumerate(series):
        kpts = kpts[None].astype(np.float32)
        s = dict(video_id=video_id, frame_id=t, **meta,
                 pred_instances=dict(
                     keypoints=torch.from_numpy(kpts) if tensor else kpts))
        if gt is not None:
            s['gt_instances'] = dict(
                keypoints=gt[t][None],
                keypoints_visible=np.ones((1, gt.shape[1])))
        out.append(s)
    return out


def run(metric, *videos):
    for video in videos:
        metric.process(None, video)
    n = sum(len(v) for v in videos)
    return metric.evaluate(n)


# ----------------------------------------------------------- functional
def test_functional_hand_values():
    cv = coefficient_of_variation(VIDEO_A)
    np.testing.assert_allclose(cv, [[16.666667, 8.2478609]], rtol=1e-6)
    np.testing.assert_allclose(allan_variance(VIDEO_A), [4.25])
    np.testing.assert_allclose(allan_variance(VIDEO_B), [0.5, 2.0])
    # τ = 2 on x = 0, 2, 4, 6, 8 (y = 0): overlapping window means
    # 1, 3, 5, 7; lag-2 differences 4, 4 → mean 16 / 2 = 8. Non-overlapping
    # blocks (0,2), (4,6) → 1, 5; (5-1)² / (2·1) = 8.
    ramp = np.stack([np.arange(0., 10., 2.), np.zeros(5)], -1)[:, None]
    assert allan_variance(ramp, 2)[0] == pytest.approx(8.)
    assert allan_variance(ramp, 2, overlapping=False)[0] == pytest.approx(8.)
    assert np.isnan(allan_variance(ramp, 3)[0])  # needs T >= 2τ = 6


def test_acceleration_error_hand_value():
    gt = np.zeros((4, 1, 2))
    pred = gt.copy()
    pred[1, 0, 0] = 1.  # error e = 0, 1, 0, 0 on x
    # second differences of e: t=1: 0 - 2·1 + 0 = -2; t=2: 0 - 0 + 1 = 1
    np.testing.assert_allclose(acceleration_error(pred, gt), [[2.], [1.]])


def test_allan_deviation_separates_jitter_from_motion():
    rng = np.random.default_rng(0)
    jitter = rng.normal(0, 1., (512, 5, 2)) + 300.
    _, adev = allan_deviation(jitter, [1, 4, 16])
    # white noise: ADEV ∝ τ^(-1/2)
    assert adev[0] > adev[1] > adev[2]
    assert adev[0] / adev[2] == pytest.approx(4., rel=0.2)
    motion = 300. + np.cumsum(rng.normal(0, 1., (512, 5, 2)), axis=0)
    _, adev_m = allan_deviation(motion, [1, 4, 16])
    assert adev_m[0] < adev_m[1] < adev_m[2]


# -------------------------------------------------------------- metrics
def test_mcv_mav_hand_computed():
    a, b = samples('A', VIDEO_A), samples('B', VIDEO_B)
    assert run(MCV(), a, b)['MCV'] == pytest.approx(MCV_AB, rel=1e-6)
    assert run(MAV(), a, b)['MAV'] == pytest.approx(MAV_AB)


def test_frames_out_of_order_and_tensors():
    batch = samples('A', VIDEO_A, tensor=True) + samples('B', VIDEO_B)
    random.Random(0).shuffle(batch)
    assert run(MAV(), batch)['MAV'] == pytest.approx(MAV_AB)
    assert run(MCV(), batch)['MCV'] == pytest.approx(MCV_AB, rel=1e-6)


def test_constant_trajectory_is_zero():
    const = np.tile(np.array([[30., 40.], [50., 60.]]), (10, 1, 1))
    res = run(MCV(), samples('c', const))
    assert res['MCV'] == 0.
    res = run(MAV(allan_taus=True), samples('c', const))
    assert res['MAV'] == 0. and res['ADEV@4'] == 0.


def test_build_from_config():
    mcv = METRICS.build(dict(type='MCV', min_abs_mean=2.))
    mav = METRICS.build(
        dict(type='MAV', filters=['mediapipe_face'], allan_taus=[1, 2]))
    assert isinstance(mcv, MCV) and isinstance(mav, MAV)
    assert mav.filters[0][0] == 'MediaPipe'


def test_one_euro_lowers_mav_of_noisy_constant_trajectory():
    rng = np.random.default_rng(0)
    face = rng.uniform(100, 300, (68, 2))
    noisy = face + rng.normal(0, 1., (200, 68, 2))
    res = run(
        MAV(filters=[
            dict(type='OneEuroFilter'), 'mediapipe_face', 'mmpose0x_savgol',
            'mmpose0x_gaussian'
        ]), samples('v', noisy))
    # E‖u_{t+1} − u_t‖² = 2 coordinates · 2σ² = 4 px², AVar = 4 / 2 = 2 px²
    assert res['MAV'] == pytest.approx(2.0, rel=0.1)
    for name in ('OneEuro', 'MediaPipe', 'SavitzkyGolay', 'Gaussian'):
        assert res[f'{name}/MAV'] < res['MAV'], name
    # MMPose 0.x's beta=0.7 (tuned by VIBE on SMPL angles) barely narrows the
    # cutoff for 1 px jitter: ~1/3 less; the others more than halve it
    assert res['OneEuro/MAV'] < 0.8 * res['MAV']
    for name in ('MediaPipe', 'SavitzkyGolay', 'Gaussian'):
        assert res[f'{name}/MAV'] < 0.5 * res['MAV'], name


def test_raw_filtered_refined_side_by_side():
    """Main prediction (refined) + frozen model output (Raw) + a filter."""
    rng = np.random.default_rng(1)
    face = rng.uniform(100, 300, (5, 2))
    raw = face + rng.normal(0, 1., (50, 5, 2))
    refined = face + rng.normal(0, 0.1, (50, 5, 2))
    batch = samples('v', refined)
    for t, s in enumerate(batch):
        s['pred_instances']['raw_keypoints'] = raw[t][None]
    res = run(
        MAV(filters=['mmpose0x_one_euro'],
            extra_pred_keys=dict(Raw='raw_keypoints')), batch)
    assert set(res) == {'MAV', 'OneEuro/MAV', 'Raw/MAV', 'Raw/OneEuro/MAV'}
    assert res['MAV'] < res['Raw/OneEuro/MAV'] < res['Raw/MAV']


def test_error_signal_and_accel():
    # the head moves 3 px/frame; the prediction follows it with a fixed
    # offset: large raw MAV (9/2 = 4.5 px²), zero error-signal MAV, Accel 0
    T = 20
    gt = np.zeros((T, 2, 2))
    gt[:, :, 0] = 100. + 3. * np.arange(T)[:, None]
    gt[:, 1, 1] = 50.
    pred = gt + np.array([1., -2.])
    res = run(
        MAV(error_signal=True, accel=True, allan_taus=[1, 2]),
        samples('v', pred, gt=gt))
    assert res['MAV'] == pytest.approx(4.5)
    assert res['MAV_err'] == pytest.approx(0.)
    assert res['ADEV_err@2'] == pytest.approx(0.)
    assert res['ADEV@1'] == pytest.approx(np.sqrt(res['MAV']))
    assert res['Accel'] == pytest.approx(0.)


def test_scenarios():
    a = samples('A', VIDEO_A, scenario=1)
    b = samples('B', VIDEO_B, scenario=2)
    res = run(MAV(), a, b)
    assert res['S1/MAV'] == pytest.approx(4.25)
    assert res['S2/MAV'] == pytest.approx(1.25)
    res = run(MCV(video_scenarios=dict(A='S3', B='S3')),
              samples('A', VIDEO_A), samples('B', VIDEO_B))
    assert res['S3/MCV'] == pytest.approx(res['MCV'])


# ------------------------------------------------------------ bad input
def test_one_frame_video_skipped_with_warning():
    one = samples('one', VIDEO_A[:1])
    with pytest.warns(UserWarning, match="'one'.*1 usable frame"):
        res = run(MAV(), one, samples('A', VIDEO_A))
    assert res['MAV'] == pytest.approx(4.25)
    with pytest.warns(UserWarning, match='needs >= 2'):
        res = run(MCV(), samples('one', VIDEO_A[:1]))
    assert np.isnan(res['MCV'])


def test_nan_predictions():
    series = np.concatenate([VIDEO_A[:2], np.full((1, 1, 2), np.nan),
                             VIDEO_A[2:]])
    # drop_frames: the NaN frame is removed, the rest is video A exactly
    with pytest.warns(UserWarning, match='dropped 1 of 4'):
        res = run(MAV(), samples('A', series))
    assert res['MAV'] == pytest.approx(4.25)
    with pytest.warns(UserWarning, match='skip_video'):
        res = run(
            MCV(nan_policy='skip_video'), samples('A', series),
            samples('B', VIDEO_B))
    assert res['MCV'] == pytest.approx(CVAR_B, rel=1e-5)  # float32 input


def test_zero_mean_series_skipped_not_inf():
    # landmark 0's x oscillates around 0 (mean 0): CV undefined
    series = np.array([[[-1., 10.], [5., 6.]], [[1., 12.], [5., 6.]]])
    # remaining series: y0 = 10, 12: mean 11, std √2 → CV = 12.856487 %;
    # landmark 1 constant → 0, 0. CVar = 12.856487 / 3 = 4.2854957 %
    with pytest.warns(UserWarning, match='1 of 4 coordinate series'):
        res = run(MCV(), samples('z', series))
    assert np.isfinite(res['MCV'])
    assert res['MCV'] == pytest.approx(np.sqrt(2) / 11 * 100 / 3)
    zero = np.zeros((3, 1, 2))
    with pytest.warns(UserWarning, match='CV undefined; skipped'):
        res = run(MCV(), samples('z', zero))
    assert np.isnan(res['MCV'])


def test_missing_metainfo_says_what_to_fix():
    s = samples('A', VIDEO_A)[0]
    del s['video_id']
    with pytest.raises(KeyError, match='video_id.*meta_keys'):
        MCV().process(None, [s])


# ---------------------------------------------------- MMEngine test loop
def pose_samples(video_id, series, scenario=None):
    out = []
    for t, kpts in enumerate(series):
        ds = PoseDataSample(metainfo=dict(video_id=video_id, frame_id=t))
        if scenario is not None:
            ds.set_metainfo(dict(scenario=scenario))
        ds.gt_instances = InstanceData(
            keypoints=kpts[None], keypoints_visible=np.ones((1, len(kpts))))
        ds.pred_instances = InstanceData(keypoints=kpts[None].copy())
        out.append(ds)
    return out


def test_evaluator_two_videos():
    evaluator = Evaluator(metrics=[
        dict(type='MCV'),
        dict(type='MAV', filters=['mmpose0x_one_euro'])
    ])
    frames = pose_samples('A', VIDEO_A) + pose_samples('B', VIDEO_B)
    # batches of 2 that mix videos, as a sampler over a flat frame list may
    for i in range(0, len(frames), 2):
        evaluator.process(data_samples=frames[i:i + 2], data_batch=None)
    res = evaluator.evaluate(len(frames))
    assert res['MCV'] == pytest.approx(MCV_AB, rel=1e-6)
    assert res['MAV'] == pytest.approx(MAV_AB)
    assert 'OneEuro/MAV' in res


def test_runner_test_loop(tmp_path):
    """A real ``Runner.test()``: what the test loop hands metrics."""
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    frames = pose_samples('A', VIDEO_A, 1) + pose_samples('B', VIDEO_B, 2)

    class FrameDataset(torch.utils.data.Dataset):
        metainfo = dict(dataset_name='toy')

        def __len__(self):
            return len(frames)

        def __getitem__(self, i):
            ds = frames[i].clone()
            del ds.pred_instances
            return dict(inputs=torch.zeros(3, 4, 4), data_samples=ds)

    class EchoGT(BaseModel):
        """Predicts the ground truth (so MCV/MAV equal the hand values)."""

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, inputs, data_samples=None, mode='tensor'):
            for ds in data_samples:
                ds.pred_instances = InstanceData(
                    keypoints=np.asarray(ds.gt_instances.keypoints))
            return data_samples

    runner = Runner(
        model=EchoGT(),
        work_dir=str(tmp_path),
        test_dataloader=dict(
            dataset=FrameDataset(),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=2,
            num_workers=0,
            collate_fn=dict(type='pseudo_collate')),
        test_evaluator=[dict(type='MCV'),
                        dict(type='MAV', allan_taus=[1])],
        test_cfg=dict(type='TestLoop'),
        default_scope='mmpose',
        default_hooks=dict(logger=dict(type='LoggerHook')),
        log_level='WARNING')
    res = runner.test()
    assert res['MCV'] == pytest.approx(MCV_AB, rel=1e-6)
    assert res['MAV'] == pytest.approx(MAV_AB)
    assert res['S1/MAV'] == pytest.approx(4.25)
    assert res['ADEV@1'] == pytest.approx(np.sqrt(MAV_AB))


# ------------------------------------------------- plots and robustness
def test_plots(tmp_path, monkeypatch):
    """The figures hold the given data (captured on their way to the PNG)
    and the PNGs are drawings, not blank canvases."""
    from matplotlib.image import imread

    from mmstable.visualization import (plot_allan, plot_trajectories,
                                        stability_plots)
    figures, save = [], stability_plots._save
    monkeypatch.setattr(stability_plots, '_save',
                        lambda fig, out: figures.append(fig) or save(fig, out))
    rng = np.random.default_rng(0)
    raw = 100 + rng.normal(0, 1, (64, 68, 2))
    out = plot_trajectories(dict(raw=raw, smooth=raw * 0 + 100),
                            str(tmp_path / 'traj.png'), title='v')
    axes = figures[0].get_axes()
    assert len(axes) == 8  # landmarks 36, 45, 30, 48 (68 points) x (x, y)
    ax = axes[2 * 2 + 1]  # landmark 30, y
    assert ax.get_ylabel() == 'landmark 30 y (px)'
    lines = {ln.get_label(): ln.get_ydata() for ln in ax.get_lines()}
    np.testing.assert_array_equal(lines['raw'], raw[:, 30, 1])
    np.testing.assert_array_equal(lines['smooth'], np.full(64, 100.))
    grey = imread(out)[..., :3].mean(-1)
    assert (grey < 0.5).mean() > 0.005 and (grey > 0.95).mean() > 0.5
    # Allan deviation of white noise (sigma 1 px in x and in y; AVar uses
    # the 2-D norm, conventions §4): AVar(1) = 2 px^2, ADEV(tau) =
    # sqrt(2 / tau), drawn on log-log axes
    taus, adev = allan_deviation(raw)
    out = plot_allan(dict(raw=(taus, adev)), str(tmp_path / 'a.png'))
    ax = figures[1].get_axes()[0]
    assert ax.get_xscale() == ax.get_yscale() == 'log'
    (line, ) = ax.get_lines()
    np.testing.assert_array_equal(line.get_xdata(), taus)
    np.testing.assert_allclose(line.get_ydata()[:3],
                               np.sqrt(2 / taus[:3]), rtol=0.15)
    grey = imread(out)[..., :3].mean(-1)
    assert (grey < 0.5).mean() > 0.005 and (grey > 0.95).mean() > 0.5


def _load_robustness():
    spec = importlib.util.spec_from_file_location(
        'robustness', osp.join(REPO, 'tools', 'analysis', 'robustness.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_robustness_protocol_with_fake_predictor(tmp_path):
    rob = _load_robustness()
    rng = np.random.default_rng(0)
    T, K = 12, 68
    gt = np.tile(rng.uniform(20, 44, (1, K, 2)), (T, 1, 1))
    clips = [
        dict(video_id=v, frames=[np.full((64, 64, 3), 128, np.uint8)] * T,
             gt=gt) for v in ('a', 'b')
    ]

    def fake(frames, clip, gain):
        # jitter grows with the pixel noise the degradation put in
        noise = np.array([f.astype(float).std() for f in frames])
        return clip['gt'] + gain * noise[:, None, None] * rng.normal(
            0, 1, (len(frames), K, 2))

    levels = [dict(name='clean'), dict(name='noise σ=20', noise_sigma=20.),
              dict(name='blur k=5', blur_ksize=5)]
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        rows = rob.run_robustness(
            clips,
            dict(raw=lambda f, c: fake(f, c, 0.1),
                 refined=lambda f, c: fake(f, c, 0.02)),
            levels=levels,
            filters=['mmpose0x_savgol'])
    methods = {r['method'] for r in rows}
    assert methods == {'raw', 'raw+SavitzkyGolay', 'refined'}
    assert len(rows) == 3 * 3
    by = {(r['level'], r['method']): r for r in rows}
    # clean frames: no jitter
    assert by[('clean', 'raw')]['MAV'] == pytest.approx(0., abs=1e-12)
    noisy = 'noise σ=20'
    assert by[(noisy, 'refined')]['MAV'] < by[(noisy, 'raw')]['MAV']
    assert by[(noisy, 'raw+SavitzkyGolay')]['MAV'] < by[(noisy, 'raw')]['MAV']
    assert by[(noisy, 'raw')]['NME'] > 0
    paths = rob.write_table(rows, str(tmp_path))
    assert all(osp.getsize(p) > 0 for p in paths.values())


def test_degrade_is_seeded_and_blurs():
    rob = _load_robustness()
    frames = [np.tile(np.arange(32, dtype=np.uint8) * 8, (32, 1))] * 2
    a = rob.degrade(frames, noise_sigma=10, seed=3)
    b = rob.degrade(frames, noise_sigma=10, seed=3)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], a[1])  # fresh noise per frame
    blurred = rob.degrade([np.eye(9, dtype=np.uint8) * 255], blur_ksize=5)[0]
    assert blurred.max() < 255 and blurred[0, 1] > 0
