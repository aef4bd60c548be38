"""motion_split / lag_frames: how far a track trails the face, by hand."""
import numpy as np
import pytest

from mmstable.evaluation.functional import lag_frames, motion_split

SQUARE = np.array([[1., 1.], [1., -1.], [-1., 1.], [-1., -1.]])


def test_translation_and_rotation_are_rigid():
    rot = np.array([[0., -1.], [1., 0.]])  # 90°
    gt = np.stack([SQUARE, SQUARE @ rot.T + [3., -2.]])
    rigid, non_rigid = motion_split(gt)
    assert np.allclose(rigid[0], gt[1] - gt[0])
    assert np.allclose(non_rigid, 0.)


def test_a_stretch_splits_into_scale_and_shape():
    # x stretched by 1.2: the similarity takes the mean scale 1.1
    # (sum x·1.2x / sum (x² + y²) = 1.2 · 4 / 8 + 1 · 4 / 8), the rest
    # is non-rigid: (0.1 x, -0.1 y)
    gt = np.stack([SQUARE, SQUARE * [1.2, 1.]])
    rigid, non_rigid = motion_split(gt)
    assert np.allclose(rigid[0], 0.1 * SQUARE)
    assert np.allclose(non_rigid[0], SQUARE * [0.1, -0.1])
    assert np.allclose(rigid + non_rigid, np.diff(gt, axis=0))


def test_lag_of_a_track_half_a_frame_behind():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(6, 4, 2))
    velocity = rng.normal(size=(5, 4, 2))
    pred = reference.copy()
    pred[1:] -= 0.5 * velocity  # trails by half of each frame's motion
    assert lag_frames(pred, reference, velocity) == pytest.approx(0.5)
    assert lag_frames(reference, reference, velocity) == 0.
    # ahead of it: negative
    pred[1:] += 1.0 * velocity
    assert lag_frames(pred, reference, velocity) == pytest.approx(-0.5)


def test_bad_shapes():
    with pytest.raises(ValueError, match=r'\(T, K, 2\) with T >= 2'):
        motion_split(SQUARE[None])
    with pytest.raises(ValueError, match='velocity'):
        lag_frames(np.zeros((3, 4, 2)), np.zeros((3, 4, 2)),
                   np.zeros((3, 4, 2)))
