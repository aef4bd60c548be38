"""NMF (LDEQ's video_NMJ) and its metric; values worked out by hand."""
import numpy as np
import pytest
from mmengine.evaluator import Evaluator
from mmpose.registry import METRICS

from mmstable.evaluation import NMF, face_scale, nmf, normalised_jitter

# Ground truth, 2 landmarks, constant: (0, 0) and (256, 64) → w = 256,
# h = 64, s = sqrt(256·64 / 256²) = 128 / 256 = 0.5 in every frame.
GT = np.tile(np.array([[0., 0.], [256., 64.]]), (3, 1, 1))
# Errors e_t: e_0 = 0; e_1 = [(3, 4), (0, 0)]; e_2 = [(3, 4), (0, 1)].
ERR = np.array([[[0., 0.], [0., 0.]],
                [[3., 4.], [0., 0.]],
                [[3., 4.], [0., 1.]]])
PRED = GT + ERR
# NMJ_1 = [100·5/0.5, 0] = [1000, 0]; NMJ_2 = [0, 100·1/0.5] = [0, 200].
# RMS over landmarks: frame 1 sqrt(1000²/2) = 707.10678;
#   frame 2 sqrt(200²/2) = 141.42136.
# RMS over frames: sqrt((500000 + 20000) / 2) = sqrt(260000) = 509.90195.
NMF_A = 509.90195
# Video B: the same landmarks, every prediction shifted by a constant
# (3, 4) → e_t constant → NMF 0 (a constant error is not flicker).
NMF_B = 0.


def samples(video_id, pred, gt, **meta):
    out = []
    for t in range(len(pred)):
        out.append(dict(
            video_id=video_id, frame_id=t, **meta,
            pred_instances=dict(keypoints=pred[t][None].astype(np.float32),
                                raw=(gt[t][None] + 1.).astype(np.float32)),
            gt_instances=dict(keypoints=gt[t][None],
                              keypoints_visible=np.ones((1, gt.shape[1])))))
    return out


def run(metric, *videos):
    for v in videos:
        metric.process(None, v)
    return metric.evaluate(sum(len(v) for v in videos))


def test_functional_hand_values():
    np.testing.assert_allclose(face_scale(GT), [0.5, 0.5, 0.5])
    np.testing.assert_allclose(normalised_jitter(PRED, GT),
                               [[1000., 0.], [0., 200.]])
    assert nmf(PRED, GT) == pytest.approx(NMF_A, rel=1e-7)
    assert nmf(GT + [3., 4.], GT) == pytest.approx(0.)


def test_scale_is_per_frame():
    # frame 1's face is twice as large (w = 512, h = 128 → s = 1): its jump
    # counts half. NMJ_1 = [100·5/1, 0] = [500, 0]; frame 2 has s = 0.5,
    # NMJ_2 = [0, 200]. RMS_k: 353.55339, 141.42136;
    # RMS_t = sqrt((125000 + 20000) / 2) = sqrt(72500) = 269.25824.
    gt = GT.copy()
    gt[1, 1] = [512., 128.]
    pred = gt + ERR
    assert nmf(pred, gt) == pytest.approx(269.25824, rel=1e-7)


def test_mask_leaves_out_pairs_with_an_invisible_landmark():
    # landmark 1 invisible in frame 2: only landmark 0 counts there, and
    # frame 2's extent would come from 1 landmark → scale undefined → frame 2
    # left out: NMF = RMS_k of frame 1 = 707.10678.
    mask = np.ones((3, 2), bool)
    mask[2, 1] = False
    assert nmf(PRED, GT, mask) == pytest.approx(707.10678, rel=1e-7)


def test_bad_shapes_and_short_videos():
    with pytest.raises(ValueError, match=r'same shape \(T, K, 2\)'):
        nmf(PRED[:, :1], GT)
    assert np.isnan(nmf(PRED[:1], GT[:1]))


def test_metric_from_config_scenarios_sources():
    metric = METRICS.build(dict(type='NMF',
                                extra_pred_keys=dict(Raw='raw')))
    assert isinstance(metric, NMF)
    res = run(metric,
              samples('a', PRED, GT, scenario='moving_jittered'),
              samples('b', GT + [3., 4.], GT, scenario='still_exact'))
    assert res['NMF'] == pytest.approx((NMF_A + NMF_B) / 2, rel=1e-6)
    assert res['moving_jittered/NMF'] == pytest.approx(NMF_A, rel=1e-6)
    assert res['still_exact/NMF'] == pytest.approx(0., abs=1e-4)
    assert metric.scenarios == ['moving_jittered', 'still_exact']
    # raw = gt + 1 everywhere: a constant error
    assert res['Raw/NMF'] == pytest.approx(0., abs=1e-4)
    assert 'NMExNMF' not in res


def test_nme_product_for_best_checkpoint():
    # NME with keypoint_indices (0, 1): d = |(256, 64)| = sqrt(69632)
    # = 263.87876. Video A per frame mean error: frame 0: 0; frame 1:
    # (5 + 0)/2 = 2.5; frame 2: (5 + 1)/2 = 3 → NME_t = 0, 0.0094740,
    # 0.0113689. Video B: error 5 for both landmarks → 5/d = 0.0189481.
    # NME pools the 6 frames: (0 + 2.5 + 3 + 3·5) / 6 / d = 0.0129479.
    # NMF = (509.90195 + 0)/2 = 254.950975 → NMExNMF = 3.3010709.
    metric = NMF(nme_product=True, keypoint_indices=(0, 1))
    res = run(metric, samples('a', PRED, GT), samples('b', GT + [3., 4.], GT))
    assert res['NMExNMF'] == pytest.approx(3.3010709, rel=1e-6)
    assert 'NME' not in res  # VideoNME owns that key


def test_evaluator_with_video_nme_has_no_key_clash():
    ev = Evaluator([dict(type='VideoNME', keypoint_indices=(0, 1)),
                    dict(type='NMF', nme_product=True,
                         keypoint_indices=(0, 1))])
    ev.process(samples('a', PRED, GT))
    res = ev.evaluate(3)
    assert {'NME', 'NMF', 'NMExNMF'} <= set(res)


def test_bad_config_errors():
    with pytest.raises(ValueError, match='pair'):
        NMF(keypoint_indices=(0, 1, 2))
    metric = NMF(nme_product=True)
    metric.dataset_meta = dict(dataset_name='nowhere')
    with pytest.raises(KeyError, match='NMF.keypoint_indices'):
        run(metric, samples('a', PRED, GT))


def test_needs_ground_truth():
    metric = NMF()
    s = samples('a', PRED, GT)
    for x in s:
        del x['gt_instances']
    with pytest.raises(KeyError, match='gt_instances'):
        metric.process(None, s)
