"""How far a track trails the face: the part of its difference from a
reference track (e.g. the frozen model's raw landmarks) that follows the
ground truth's velocity, split into the face's rigid motion (a similarity)
and what the landmarks do beyond it (expression, a turning head's
parallax)."""
from typing import Tuple

import numpy as np

__all__ = ['motion_split', 'lag_frames']


def motion_split(gt: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Split the ground truth's frame-to-frame motion.

    Per pair of frames, the least-squares similarity ``S`` (translation,
    rotation, scale; all landmarks weigh the same) from frame t-1's
    landmarks to frame t's: the keypoint stage's own fit
    (:func:`mmstable.models.layers.fit_similarity`).

    Args:
        gt (np.ndarray): (T, K, 2) landmarks of one video.

    Returns:
        tuple: ``rigid`` = ``S(gt_{t-1}) - gt_{t-1}`` and ``non_rigid`` =
        ``gt_t - S(gt_{t-1})``, each (T-1, K, 2); they add up to
        ``gt_t - gt_{t-1}``.
    """
    # the models package imports the evaluation one: import here
    import torch

    from mmstable.models.layers.adaptive_kalman import (complex_mul,
                                                        fit_similarity)

    gt = np.asarray(gt, np.float64)
    if gt.ndim != 3 or gt.shape[-1] != 2 or len(gt) < 2:
        raise ValueError('motion_split: landmarks must be (T, K, 2) with T '
                         f'>= 2, got {gt.shape}')
    src, dst = torch.from_numpy(gt[:-1]), torch.from_numpy(gt[1:])
    a, b = fit_similarity(src, dst)
    fitted = (complex_mul(a, src) + b[:, None]).numpy()
    return fitted - gt[:-1], gt[1:] - fitted


def lag_frames(pred: np.ndarray, reference: np.ndarray,
               velocity: np.ndarray) -> float:
    """How many frames of ``velocity`` the track ``pred`` trails
    ``reference`` by: ``τ`` of the least-squares fit
    ``pred_t - reference_t ≈ -τ · velocity_t`` over frames 1..T-1, all
    landmarks and both axes (0: no lag; 1: a track one frame behind on
    that motion).

    Args:
        pred, reference (np.ndarray): (T, K, 2) two tracks of one video.
        velocity (np.ndarray): (T-1, K, 2) the motion from frame t-1 to t
            (e.g. a part of :func:`motion_split`).
    """
    pred = np.asarray(pred, np.float64)
    reference = np.asarray(reference, np.float64)
    velocity = np.asarray(velocity, np.float64)
    if pred.shape != reference.shape or velocity.shape != (
            pred.shape[0] - 1, *pred.shape[1:]):
        raise ValueError('lag_frames: pred and reference must be (T, K, 2) '
                         'and velocity (T-1, K, 2), got '
                         f'{pred.shape}, {reference.shape}, {velocity.shape}')
    x = velocity.reshape(-1)
    y = (pred - reference)[1:].reshape(-1)
    return float(-(x @ y) / max(x @ x, 1e-12))
