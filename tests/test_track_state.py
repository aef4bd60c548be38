"""The refiner's state follows the face (mmstable.structures.track_state,
mmstable.structures.crop): hand-computed similarity fits, warps and crop
transforms."""
import math

import numpy as np
import pytest
import torch

from mmstable.structures import (TrackState, apply_affine,
                                 crop_affine_from_metainfo, fit_similarity,
                                 fit_translation, heatmap_affine,
                                 motion_matrix, warp_maps)


def gaussian(cx, cy, size=16, sigma=1.):
    y, x = torch.meshgrid(torch.arange(size, dtype=torch.float32),
                          torch.arange(size, dtype=torch.float32),
                          indexing='ij')
    return torch.exp(-((x - cx)**2 + (y - cy)**2) / (2 * sigma**2))


# -------------------------------------------------------------- motion fits
def test_similarity_fit_recovers_a_known_transform_exactly():
    # rotation 90°, scale 2, translation (3, -1), by hand:
    # (0,0) -> (3,-1); (1,0) -> (0,2)+(3,-1) = (3,1); (0,1) -> (-2,0)+(3,-1)
    src = torch.tensor([[[0., 0.], [1., 0.], [0., 1.]]])
    dst = torch.tensor([[[3., -1.], [3., 1.], [1., -1.]]])
    expected = torch.tensor([[[0., -2., 3.], [2., 0., -1.], [0., 0., 1.]]])
    for weights in (None, torch.tensor([[1., 5., .2]])):
        torch.testing.assert_close(
            fit_similarity(src, dst, weights), expected, atol=1e-6, rtol=0)


def test_similarity_fit_on_many_noiseless_points_and_zero_weight_outlier():
    gen = torch.Generator().manual_seed(0)
    src = torch.rand(2, 20, 2, generator=gen) * 100
    th, s = 0.3, 1.1
    mat = torch.tensor([[s * math.cos(th), -s * math.sin(th), 5.],
                        [s * math.sin(th), s * math.cos(th), -7.],
                        [0., 0., 1.]]).repeat(2, 1, 1)
    dst = apply_affine(mat, src)
    dst[:, 0] += 50.  # an outlier ...
    weights = torch.ones(2, 20)
    weights[:, 0] = 0.  # ... with no weight does not count
    torch.testing.assert_close(fit_similarity(src, dst, weights), mat,
                               atol=1e-4, rtol=0)


def test_degenerate_fits_fall_back_to_translation():
    src = torch.zeros(1, 4, 2)  # all points coincide: no rotation / scale
    dst = torch.full((1, 4, 2), 2.)
    expected = torch.tensor([[[1., 0., 2.], [0., 1., 2.], [0., 0., 1.]]])
    torch.testing.assert_close(fit_similarity(src, dst), expected)
    # all weights 0: uniform weights
    torch.testing.assert_close(
        fit_translation(src, dst, torch.zeros(1, 4)), expected)


def test_similarity_scale_is_clamped():
    src = torch.tensor([[[0., 0.], [1., 0.]]])
    dst = torch.tensor([[[0., 0.], [10., 0.]]])
    mat = fit_similarity(src, dst, max_scale_change=2.)
    assert mat[0, 0, 0].item() == pytest.approx(2.)


# -------------------------------------------------------------------- warps
def test_warp_moves_a_gaussian_by_a_known_translation():
    maps = gaussian(5., 7.)[None, None]
    shift = torch.eye(3)[None].clone()
    shift[0, :2, 2] = torch.tensor([2., 1.])
    out = warp_maps(maps, shift)
    torch.testing.assert_close(out[0, 0], gaussian(7., 8.), atol=1e-5,
                               rtol=0)
    # half-pixel shift: bilinear mix of the two neighbours
    shift[0, :2, 2] = torch.tensor([0.5, 0.])
    out = warp_maps(maps, shift)
    # out(6, 7) = in(5.5, 7) = (in(5, 7) + in(6, 7)) / 2 = (1 + e^-0.5) / 2
    expected = torch.tensor((1 + math.exp(-0.5)) / 2)
    assert out[0, 0, 7, 6].item() == pytest.approx(expected.item(), abs=1e-5)


def test_warp_at_reduced_resolution():
    # pooled by 2: pooled pixel i is centred at heatmap 2i + 0.5, so a
    # heatmap shift of +2 px is one pooled pixel
    maps = torch.zeros(1, 1, 8, 8)
    maps[0, 0, 3, 3] = 1.
    shift = torch.eye(3)[None].clone()
    shift[0, 0, 2] = 2.
    out = warp_maps(maps, shift, stride=2)
    assert out[0, 0, 3, 4].item() == pytest.approx(1.)
    assert out.sum().item() == pytest.approx(1.)
    # a scaling about a pooled pixel centre keeps that pixel in place:
    # heatmap point 2·3 + 0.5 = 6.5 fixed under x -> 2 (x - 6.5) + 6.5
    zoom = torch.tensor([[[2., 0., -6.5], [0., 2., -6.5], [0., 0., 1.]]])
    assert warp_maps(maps, zoom, stride=2)[0, 0, 3, 3].item() == \
        pytest.approx(1.)


def test_state_follows_a_crop_move_of_a_still_face():
    """The face stands still, the crop moves 8 image px right; at 1/4 scale
    (image -> heatmap) the state's blob must move 2 heatmap px left."""
    def crop(x0):  # image -> heatmap: (x - x0) / 4
        return torch.tensor([[[.25, 0., -x0 / 4], [0., .25, 0.],
                              [0., 0., 1.]]])

    kpts = torch.tensor([[[40., 20.], [60., 30.], [50., 50.]]])
    scores = torch.ones(1, 3)
    blob = gaussian(8., 6.)[None, None]
    state = TrackState(blob, 2 * blob, crop(0.), kpts, scores)
    for motion in ('similarity', 'translation', 'none'):
        moved = state.carried_to(crop(8.), kpts, scores, motion)
        torch.testing.assert_close(moved.h[0, 0], gaussian(6., 6.),
                                   atol=1e-5, rtol=0)
        torch.testing.assert_close(moved.c, 2 * moved.h)
        assert torch.equal(moved.affine, crop(8.))


def test_state_follows_the_face_motion():
    """Same crop, the face moves +4 image px down: W = S = translation."""
    eye = torch.eye(3)[None]
    kpts = torch.tensor([[[4., 4.], [10., 4.], [7., 9.]]])
    moved_kpts = kpts + torch.tensor([0., 4.])
    scores = torch.ones(1, 3)
    blob = gaussian(7., 6.)[None, None]
    state = TrackState(blob, blob, eye, kpts, scores)
    moved = state.carried_to(eye, moved_kpts, scores, 'similarity')
    torch.testing.assert_close(moved.h[0, 0], gaussian(7., 10.), atol=1e-5,
                               rtol=0)
    # 'none' undoes only the crops' difference: nothing moves
    still = state.carried_to(eye, moved_kpts, scores, 'none')
    torch.testing.assert_close(still.h, blob)
    mat = motion_matrix(eye, kpts, scores, eye, moved_kpts, scores,
                        'translation')
    torch.testing.assert_close(mat[0, :2, 2], torch.tensor([0., 4.]))


def test_track_state_zeros_cat_select():
    like = torch.zeros(1)
    zero = TrackState.zeros(2, 3, (4, 5), 7, like)
    assert zero.h.shape == (2, 3, 4, 5) and zero.keypoints.shape == (2, 7, 2)
    both = TrackState.cat([zero, TrackState.zeros(1, 3, (4, 5), 7, like)])
    assert both.h.shape[0] == 3 and both.affine.shape == (3, 3, 3)
    one = both.select(2, video_id='A', frame_id=9)
    assert one.video_id == 'A' and one.frame_id == 9 and one.fits(zero)
    assert not one.fits(TrackState.zeros(1, 3, (4, 5), 6, like))


# ------------------------------------------------------------- crop affines
def test_crop_affine_from_input_center_scale_size():
    # centre (50, 60), box 100 px, input 64: x' = 0.64 (x - 50) + 32
    meta = dict(input_center=np.array([50., 60.]),
                input_scale=np.array([100., 100.]), input_size=(64, 64))
    expected = np.array([[0.64, 0., 0.], [0., 0.64, -6.4]])
    np.testing.assert_allclose(crop_affine_from_metainfo(meta), expected,
                               atol=1e-9)
    # rotated box (bbox_rotation packed): the centre still maps to (32, 32)
    mat = crop_affine_from_metainfo(dict(meta, bbox_rotation=np.array([30.])))
    np.testing.assert_allclose(mat @ [50., 60., 1.], [32., 32.], atol=1e-9)
    assert abs(mat[0, 1]) > 0.1
    # a packed crop_affine wins
    packed = np.array([[1., 0., 2.], [0., 1., 3.]])
    np.testing.assert_array_equal(
        crop_affine_from_metainfo(dict(meta, crop_affine=packed)), packed)
    assert crop_affine_from_metainfo(dict(video_id=0)) is None


def test_crop_affine_of_wrong_shape_is_a_clear_error():
    with pytest.raises(ValueError, match='2x3 image -> input-space'):
        crop_affine_from_metainfo(dict(crop_affine=np.zeros((2, 2))))


def test_heatmap_affine_scales_input_to_heatmap():
    crop = np.array([[0.64, 0., 0.], [0., 0.64, -6.4]])
    mat = heatmap_affine(crop, (64, 64), (16, 16))
    np.testing.assert_allclose(mat @ [50., 60., 1.], [8., 8., 1.])
    np.testing.assert_allclose(heatmap_affine(None, (64, 64), (16, 16)),
                               np.diag([.25, .25, 1.]))
