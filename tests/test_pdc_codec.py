"""PDCCodec and pdc_centre_of_mass (Algorithm 1, §3.3)."""
import numpy as np
import pytest
import torch
from mmpose.codecs import MSRAHeatmap
from mmpose.registry import KEYPOINT_CODECS

from mmstable.codecs import PDCCodec, pdc_centre_of_mass


def build(**kwargs):
    cfg = dict(
        type='PDCCodec', input_size=(10, 10), heatmap_size=(5, 5), sigma=2)
    cfg.update(kwargs)
    return KEYPOINT_CODECS.build(cfg)


def hand_map():
    # 5x5 map, rows are y, columns are x.
    return np.array([
        [0.0, 0.00, 0.0, 0.0, 0.0],
        [0.0, 0.10, 0.3, 0.1, 0.0],
        [0.0, 0.40, 1.0, 0.5, 0.0],
        [0.0, 0.10, 0.25, 0.1, 0.0],
        [0.0, 0.00, 0.0, 0.0, 0.0],
    ], dtype=np.float32)


def test_build_from_config_and_encode_is_msra():
    codec = build(pdc_threshold=0.3, threshold_mode='relative', unbiased=True)
    assert isinstance(codec, PDCCodec) and isinstance(codec, MSRAHeatmap)
    assert codec.pdc_threshold == 0.3 and codec.threshold_mode == 'relative'
    assert codec.support_batch_decoding
    assert codec.label_mapping_table == MSRAHeatmap.label_mapping_table
    assert codec.field_mapping_table == MSRAHeatmap.field_mapping_table
    msra = KEYPOINT_CODECS.build(
        dict(
            type='MSRAHeatmap',
            input_size=(10, 10),
            heatmap_size=(5, 5),
            sigma=2,
            unbiased=True))
    kp = np.array([[[4.3, 5.1]]])
    ours, theirs = codec.encode(kp), msra.encode(kp)
    np.testing.assert_array_equal(ours['heatmaps'], theirs['heatmaps'])
    np.testing.assert_array_equal(ours['keypoint_weights'],
                                  theirs['keypoint_weights'])


def test_algorithm1_by_hand():
    # Threshold 0.2 keeps 0.3 (y1,x2), 0.4 (y2,x1), 1.0 (y2,x2), 0.5 (y2,x3),
    # 0.25 (y3,x2); sum = 2.45.
    # Algorithm 1 (1-based): column sums x=2: 0.4, x=3: 0.3+1.0+0.25=1.55,
    #   x=4: 0.5 -> sum_X = 2*0.4 + 3*1.55 + 4*0.5 = 0.8+4.65+2.0 = 7.45
    #   row sums y=2: 0.3, y=3: 0.4+1.0+0.5=1.9, y=4: 0.25
    #   -> sum_Y = 2*0.3 + 3*1.9 + 4*0.25 = 0.6+5.7+1.0 = 7.3
    # paper [x, y] = [7.45/2.45, 7.3/2.45]; 0-based = paper - 1.
    paper = np.array([7.45 / 2.45, 7.3 / 2.45])
    expected_hm = paper - 1  # [2.040816, 1.979592]
    com = pdc_centre_of_mass(torch.from_numpy(hand_map()), 0.2)
    np.testing.assert_allclose(com.numpy(), expected_hm, atol=1e-6)

    keypoints, scores = build().decode(hand_map()[None])
    assert keypoints.shape == (1, 1, 2) and scores.shape == (1, 1)
    # input = heatmap px * input_size / heatmap_size = * 2
    np.testing.assert_allclose(keypoints[0, 0], expected_hm * 2, atol=1e-5)
    np.testing.assert_allclose(scores, [[1.0]])


def test_value_equal_to_threshold_is_kept():
    # Algorithm 1 zeroes values *less than* the threshold: 0.2 stays.
    # kept 1.0 at x=1 and 0.2 at x=3 (row 0): x = (1*1.0 + 3*0.2)/1.2 = 4/3
    for dtype in (torch.float32, torch.float64, torch.float16):
        hm = torch.zeros(1, 5, dtype=dtype)
        hm[0, 1], hm[0, 3] = 1.0, 0.2
        com = pdc_centre_of_mass(hm, 0.2)
        assert com.dtype == dtype
        assert com[0].item() == pytest.approx(
            (1 + 3 * float(hm[0, 3])) / (1 + float(hm[0, 3])), rel=1e-3)
        assert com[0].item() == pytest.approx(4 / 3, rel=2e-3)


def test_relative_mode():
    # relative 0.35 of max 1.0 keeps 0.4 (x1), 1.0 (x2), 0.5 (x3), all in
    # row y=2: x = (1*0.4 + 2*1.0 + 3*0.5) / 1.9 = 3.9/1.9, y = 2.
    hm = torch.from_numpy(hand_map())
    expected = [3.9 / 1.9, 2.0]
    for scale in (1.0, 2.0):  # relative threshold is scale invariant
        com = pdc_centre_of_mass(hm * scale, 0.35, 'relative')
        np.testing.assert_allclose(com.numpy(), expected, atol=1e-6)
    # absolute 0.35 on the doubled map keeps 0.6, 0.8, 2.0, 1.0, 0.5 instead
    com = pdc_centre_of_mass(hm * 2, 0.35, 'absolute')
    assert abs(com[1].item() - 2.0) > 1e-2
    keypoints, _ = build(
        pdc_threshold=0.35, threshold_mode='relative').decode(hand_map()[None])
    np.testing.assert_allclose(keypoints[0, 0], np.array(expected) * 2,
                               atol=1e-5)


@pytest.mark.parametrize('threshold,atol', [(0.2, 0.1), (0.0, 1e-3)])
def test_round_trip_unbiased(threshold, atol):
    codec = KEYPOINT_CODECS.build(
        dict(
            type='PDCCodec',
            input_size=(256, 256),
            heatmap_size=(64, 64),
            sigma=2,
            unbiased=True,
            pdc_threshold=threshold))
    # sub-pixel heatmap positions >= 12 px (6 sigma) from the borders
    kp_hm = np.array([[[20.3, 31.7], [40.55, 12.25], [51.9, 44.1],
                       [33.33, 50.61]]])
    encoded = codec.encode(kp_hm * 4)
    keypoints, scores = codec.decode(encoded['heatmaps'])
    np.testing.assert_allclose(keypoints / 4, kp_hm, atol=atol, rtol=0)
    assert (scores > 0.9).all()


def test_degenerate_maps_are_finite():
    hm = np.zeros((5, 5, 5), dtype=np.float32)
    hm[0, 3, 1] = 0.1  # everything below 0.2: argmax (x=1, y=3)
    hm[1] = -np.arange(25, dtype=np.float32).reshape(5, 5) - 1
    hm[1, 4, 2] = -0.5  # all negative: argmax is the least negative pixel
    hm[2] = np.nan  # all NaN: read as zeros, argmax of zeros -> (0, 0)
    hm[3] = hand_map()
    hm[3, 0, 0] = np.nan  # a NaN pixel counts as 0; rest as by hand
    hm[4] = hand_map()
    hm[4, 4, 4], hm[4, 0, 4] = np.inf, -np.inf  # inf pixels count as 0
    keypoints, scores = build().decode(hm)
    assert np.isfinite(keypoints).all() and np.isfinite(scores).all()
    np.testing.assert_allclose(keypoints[0, :3] / 2,
                               [[1, 3], [2, 4], [0, 0]])
    np.testing.assert_allclose(scores[0, :3], [0.1, -0.5, 0.0])
    for k in (3, 4):
        np.testing.assert_allclose(keypoints[0, k] / 2,
                                   [7.45 / 2.45 - 1, 7.3 / 2.45 - 1],
                                   atol=1e-5)
    np.testing.assert_allclose(scores[0, 3:], [1.0, 1.0])

    # threshold 0 on a map with negatives: negatives are zeroed (Alg. 1 l.1)
    hm0 = np.full((1, 5, 5), -0.3, dtype=np.float32)
    hm0[0, 1, 3] = 0.6
    hm0[0, 1, 1] = 0.2
    # kept: 0.6 at x=3 and 0.2 at x=1 in row 1 -> x = (3*.6 + 1*.2)/.8 = 2.5
    keypoints, _ = build(pdc_threshold=0.).decode(hm0)
    np.testing.assert_allclose(keypoints[0, 0] / 2, [2.5, 1.0], atol=1e-6)


def test_gradient_through_kept_values_and_fallback():
    hm = torch.from_numpy(np.stack([hand_map(), np.full((5, 5), 0.1,
                                                        np.float32)]))
    hm[1, 2, 2] = float('nan')
    hm.requires_grad_(True)
    com = pdc_centre_of_mass(hm, 0.2)
    com.sum().backward()
    grad = hm.grad
    assert torch.isfinite(grad).all()
    kept = torch.from_numpy(hand_map() >= 0.2)
    assert (grad[0][~kept] == 0).all() and (grad[0][kept] != 0).any()
    assert (grad[1] == 0).all()  # empty map: argmax fallback, zero gradient
    # d x / d phi_ij = (i - x) / sum at a kept pixel: (y=2, x=3) value 0.5
    x, y = com[0].detach()
    np.testing.assert_allclose(grad[0, 2, 3].item(),
                               ((3 - x) + (2 - y)).item() / 2.45, rtol=1e-5)


def test_decode_and_batch_decode_by_hand():
    """Both decoders against hand-computed values (5x5 heatmaps, input
    10x10: input = heatmap px * 2), B=2 images of K=2 landmarks."""
    two_pixels = np.zeros((5, 5), np.float32)
    two_pixels[0, 4] = 0.6  # (y=0, x=4)
    two_pixels[0, 3] = 0.2  # exactly Theta_PDC: kept
    two_pixels[4, 0] = 0.1  # below Theta_PDC: no mass
    one_hot = np.zeros((5, 5), np.float32)
    one_hot[3, 1] = 0.9  # (y=3, x=1)
    batch = np.stack([np.stack([hand_map(), one_hot]),
                      np.stack([two_pixels, hand_map()])])
    # hand_map: heatmap (2.040816, 1.979592) (test_algorithm1_by_hand);
    # one_hot: (1, 3); two_pixels: x = (4*0.6 + 3*0.2) / 0.8 = 3.75, y = 0
    hand = np.array([7.45 / 2.45 - 1, 7.3 / 2.45 - 1])
    expected = np.array([[hand, [1.0, 3.0]], [[3.75, 0.0], hand]]) * 2
    expected_scores = np.array([[1.0, 0.9], [0.6, 1.0]])
    codec = build()
    kps, scores = codec.batch_decode(torch.from_numpy(batch))
    assert isinstance(kps, list) and len(kps) == 2 and len(scores) == 2
    for b in range(2):
        kp_b, sc_b = codec.decode(batch[b])
        for got, got_scores in ((kps[b], scores[b]), (kp_b, sc_b)):
            assert got.shape == (1, 2, 2) and got_scores.shape == (1, 2)
            np.testing.assert_allclose(got[0], expected[b], atol=1e-5)
            np.testing.assert_allclose(got_scores[0], expected_scores[b],
                                       atol=1e-6)
        assert kps[b].dtype == np.float32


@pytest.mark.parametrize('mode', ['absolute', 'relative'])
def test_batch_decode_chunking_does_not_change_results(mode):
    codec = build(pdc_threshold=0.5, threshold_mode=mode)
    gen = torch.Generator().manual_seed(1)
    batch = torch.rand((4, 3, 5, 5), generator=gen)
    batch[1, 2, 0, 0] = float('nan')  # forces the cleaning pass
    whole = pdc_centre_of_mass(batch, 0.5, mode).numpy() * 2
    codec.decode_chunk_elements = 2 * 25  # two maps per step, 6 steps
    kps, _ = codec.batch_decode(batch)
    np.testing.assert_allclose(np.concatenate(kps), whole, rtol=1e-6)


def test_head_decode_uses_batch_decode(monkeypatch):
    from mmpose.models.heads import HeatmapHead
    head = HeatmapHead(
        in_channels=4,
        out_channels=2,
        deconv_out_channels=None,
        decoder=dict(
            type='PDCCodec',
            input_size=(20, 20),
            heatmap_size=(5, 5),
            sigma=2))
    monkeypatch.setattr(
        PDCCodec, 'decode',
        lambda *a: pytest.fail('per-sample decode used'))
    batch = torch.from_numpy(np.stack([hand_map()] * 2))[None].repeat(
        3, 1, 1, 1)
    preds = head.decode(batch)
    assert len(preds) == 3
    np.testing.assert_allclose(preds[2].keypoints[0, 1],
                               [(7.45 / 2.45 - 1) * 4, (7.3 / 2.45 - 1) * 4],
                               atol=1e-5)


@pytest.mark.parametrize('kwargs,match', [
    (dict(threshold_mode='percent'), 'threshold mode'),
    (dict(pdc_threshold=-0.1), '>= 0'),
    (dict(pdc_threshold=float('nan')), 'finite'),
    (dict(pdc_threshold=1.5, threshold_mode='relative'), r'\[0, 1\]'),
])
def test_bad_args(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build(**kwargs)


def test_bad_decode_shapes():
    with pytest.raises(ValueError, match=r'\(K, H, W\)'):
        build().decode(np.zeros((5, 5), np.float32))
    with pytest.raises(ValueError, match=r'\(B, K, H, W\)'):
        build().batch_decode(torch.zeros(2, 5, 5))
