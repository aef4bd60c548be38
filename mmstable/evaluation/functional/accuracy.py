"""Per-frame accuracy for video face alignment (pure numpy).

NME here is MMPose's :func:`mmpose.evaluation.functional.keypoint_nme`,
called once per frame so that the per-frame errors feed the cumulative error
distribution (CED) behind AUC and failure rate, as 300VW reports them.
"""
from typing import Sequence, Tuple

import numpy as np
from scipy.integrate import trapezoid
from mmpose.evaluation.functional import keypoint_nme

__all__ = ['frame_nme', 'interocular_distance', 'ced_auc_fr']


def interocular_distance(gt: np.ndarray,
                         keypoint_indices: Sequence[int]) -> np.ndarray:
    """Distance between two ground-truth landmarks per frame.

    For 300VW (68 points) the pair is the outer eye corners, 0-based
    ``(36, 45)`` — the same pair MMPose's ``NME`` uses for '300w'.

    Args:
        gt (np.ndarray): (T, K, 2) ground truth.
        keypoint_indices (Sequence[int]): The two landmark indices.

    Returns:
        np.ndarray: (T,) pixels.
    """
    i, j = keypoint_indices
    return np.linalg.norm(gt[:, i] - gt[:, j], axis=-1)


def frame_nme(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray,
              norm: np.ndarray) -> np.ndarray:
    """Normalised mean error of each frame (the 300VW "NRMSE").

    NME_t = mean over visible landmarks of ‖p − g‖ / d_t.

    Args:
        pred (np.ndarray): (T, K, 2) prediction, image pixels.
        gt (np.ndarray): (T, K, 2) ground truth, image pixels.
        mask (np.ndarray): (T, K) bool, visible landmarks.
        norm (np.ndarray): (T,) normalisation distance d_t in pixels.

    Returns:
        np.ndarray: (T,) NME per frame; ``nan`` for a frame with no visible
        landmark or d_t <= 0 (MMPose would count it as 0).
    """
    out = np.full(pred.shape[0], np.nan)
    for t in range(pred.shape[0]):
        if norm[t] <= 0 or not mask[t].any():
            continue
        # keypoint_nme overwrites non-positive factors in place: pass a copy
        factor = np.full((1, 2), norm[t], dtype=np.float64)
        out[t] = keypoint_nme(pred[t][None], gt[t][None], mask[t][None],
                              factor)
    return out


def ced_auc_fr(nmes: np.ndarray,
               threshold: float = 0.08,
               step: float = 1e-4) -> Tuple[float, float]:
    """AUC of the cumulative error distribution up to ``threshold`` and the
    failure rate at it.

    CED(e) = fraction of frames with NME <= e; AUC = ∫_0^thr CED(e) de / thr
    (trapezoid rule on a grid of ``step``), in [0, 1]; FR = fraction of frames
    with NME > thr. 300VW results are usually given at thr = 0.08.

    Args:
        nmes (np.ndarray): (N,) per-frame NME (``nan`` entries ignored).
        threshold (float): Failure threshold (NME units, a fraction).
        step (float): CED grid step.

    Returns:
        tuple: ``(auc, fr)``; ``(nan, nan)`` without frames.
    """
    nmes = np.asarray(nmes, dtype=np.float64)
    nmes = nmes[np.isfinite(nmes)]
    if nmes.size == 0:
        return float('nan'), float('nan')
    grid = np.arange(0., threshold + step / 2, step)
    nmes_sorted = np.sort(nmes)
    ced = np.searchsorted(nmes_sorted, grid, side='right') / nmes.size
    auc = trapezoid(ced, grid) / threshold
    fr = float((nmes > threshold).mean())
    return float(auc), fr
