"""VideoNME: 300VW NRMSE (outer-eye-corner normalisation), AUC, FR."""
import numpy as np
import pytest
import torch
from mmpose.evaluation.metrics import NME
from mmpose.registry import METRICS

from mmstable.evaluation import VideoNME, ced_auc_fr

K = 68


def face(rng):
    """68 points with outer eye corners 36 and 45 exactly 100 px apart."""
    pts = rng.uniform(100, 300, (K, 2))
    pts[36] = [150., 200.]
    pts[45] = [250., 200.]
    return pts


def video(video_id, offsets, rng, tensor=False, **meta):
    """Frames whose every landmark is off by ``offsets[t]`` (dx, dy) px."""
    gt = face(rng)
    out = []
    for t, off in enumerate(offsets):
        pred = (gt + np.asarray(off))[None].astype(np.float32)
        out.append(
            dict(video_id=video_id, frame_id=t, **meta,
                 pred_instances=dict(
                     keypoints=torch.from_numpy(pred) if tensor else pred),
                 gt_instances=dict(keypoints=gt[None].copy(),
                                   keypoints_visible=np.ones((1, K)))))
    return out


def run(metric, *videos):
    for v in videos:
        metric.process(None, v)
    return metric.evaluate(sum(len(v) for v in videos))


def test_hand_computed_nme_auc_fr():
    rng = np.random.default_rng(0)
    # video A: 3 frames off by (3, 4) px → 5 px / 100 px = NME 0.05 each
    # video B: 2 frames off by (6, 8) px → 10 / 100 = NME 0.10 each
    a = video('A', [(3, 4)] * 3, rng)
    b = video('B', [(6, 8)] * 2, rng, tensor=True)
    res = run(VideoNME(keypoint_indices=(36, 45)), a, b)
    # frame average: (3·0.05 + 2·0.10) / 5 = 0.07
    assert res['NME'] == pytest.approx(0.07, rel=1e-6)
    # FR@0.08: 2 of 5 frames above 0.08 → 0.4
    assert res['FR@0.08'] == pytest.approx(0.4)
    # CED is 0 below 0.05 and 3/5 from 0.05 to 0.08:
    # AUC = 0.6 · (0.08 − 0.05) / 0.08 = 0.225 (grid step 1e-4)
    assert res['AUC@0.08'] == pytest.approx(0.225, abs=1e-3)
    # video average: (0.05 + 0.10) / 2 = 0.075
    res = run(VideoNME(keypoint_indices=(36, 45), average='video'),
              video('A', [(3, 4)] * 3, rng), video('B', [(6, 8)] * 2, rng))
    assert res['NME'] == pytest.approx(0.075, rel=1e-6)


def test_matches_mmpose_nme():
    rng = np.random.default_rng(1)
    frames = []
    for v in range(2):
        gt = face(rng)
        for t in range(4):
            frames.append(
                dict(video_id=v, frame_id=t,
                     pred_instances=dict(
                         keypoints=(gt + rng.normal(0, 3, (K, 2)))[None]),
                     gt_instances=dict(
                         keypoints=gt[None],
                         keypoints_visible=np.ones((1, K)))))
    ours = run(VideoNME(keypoint_indices=(36, 45)), frames)['NME']
    ref = NME(norm_mode='keypoint_distance', keypoint_indices=[36, 45])
    ref.dataset_meta = dict(dataset_name='300w',
                            keypoint_id2name={i: str(i) for i in range(K)})
    ref.process(None, frames)
    assert ours == pytest.approx(ref.evaluate(len(frames))['NME'], rel=1e-6)


def test_300vw_default_indices_and_unknown_dataset():
    rng = np.random.default_rng(2)
    metric = METRICS.build(dict(type='VideoNME'))
    metric.dataset_meta = dict(dataset_name='300vw')
    assert run(metric, video('A', [(3, 4)], rng))['NME'] == pytest.approx(
        0.05, rel=1e-6)
    metric = VideoNME()
    metric.dataset_meta = dict(dataset_name='mystery')
    with pytest.raises(KeyError, match='keypoint_indices=\\(36, 45\\)'):
        run(metric, video('A', [(3, 4)], rng))


def test_scenarios_and_filters():
    rng = np.random.default_rng(3)
    a = video('A', [(3, 4)] * 3, rng, scenario=1)
    b = video('B', [(6, 8)] * 2, rng, scenario=3)
    res = run(VideoNME(keypoint_indices=(36, 45), filters=['mmpose0x_savgol']),
              a, b)
    assert res['S1/NME'] == pytest.approx(0.05, rel=1e-6)
    assert res['S3/NME'] == pytest.approx(0.10, rel=1e-6)
    assert res['S3/FR@0.08'] == 1.
    # a constant offset survives smoothing
    assert res['SavitzkyGolay/NME'] == pytest.approx(0.07, rel=1e-5)
    res = run(VideoNME(keypoint_indices=(36, 45),
                       video_scenarios={'A': 2, 'B': 2}),
              video('A', [(3, 4)], rng), video('B', [(6, 8)], rng))
    assert res['S2/NME'] == pytest.approx(0.075, rel=1e-6)


def test_invisible_landmarks_masked():
    rng = np.random.default_rng(4)
    frames = video('A', [(3, 4)], rng)
    frames[0]['pred_instances']['keypoints'][0, 0] += 1000.
    frames[0]['gt_instances']['keypoints_visible'][0, 0] = 0
    res = run(VideoNME(keypoint_indices=(36, 45)), frames)
    assert res['NME'] == pytest.approx(0.05, rel=1e-6)


def test_no_ground_truth_skipped_with_warning():
    rng = np.random.default_rng(5)
    frames = video('A', [(3, 4)], rng)
    for f in frames:
        f['gt_instances'] = dict()
    with pytest.raises(KeyError, match='gt_instances.keypoints'):
        VideoNME(keypoint_indices=(36, 45)).process(None, frames)


def test_nan_frame_dropped():
    rng = np.random.default_rng(6)
    frames = video('A', [(3, 4)] * 3, rng)
    frames[1]['pred_instances']['keypoints'][:] = np.nan
    with pytest.warns(UserWarning, match='dropped 1 of 3'):
        res = run(VideoNME(keypoint_indices=(36, 45)), frames)
    assert res['NME'] == pytest.approx(0.05, rel=1e-6)


def test_ced_auc_fr_edges():
    assert ced_auc_fr(np.zeros(4)) == pytest.approx((1., 0.))
    assert ced_auc_fr(np.full(4, 0.5)) == pytest.approx((0., 1.))
    auc, fr = ced_auc_fr(np.array([]))
    assert np.isnan(auc) and np.isnan(fr)
