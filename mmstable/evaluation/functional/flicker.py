"""Normalised Mean Flicker (NMF), LDEQ's video jitter metric (pure numpy).

Micaelli et al., "Recurrence without Recurrence: Stable Video Landmark
Detection with Deep Equilibrium Models" (CVPR 2023), ``video_NMJ`` of their
code: the jitter is measured on the *error* e_t = pred_t − gt_t, so a model
that follows a moving head exactly scores 0, and it is normalised by the
face's size in each frame, so it compares across videos and resolutions.
"""
from typing import Optional

import numpy as np

__all__ = ['face_scale', 'normalised_jitter', 'nmf']

#: LDEQ's reference face: sizes are in units of a 256 x 256 face.
REFERENCE_SIZE = 256.


def _check_pair(pred: np.ndarray, gt: np.ndarray):
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.ndim != 3 or pred.shape[-1] != 2 or pred.shape != gt.shape:
        raise ValueError('NMF expects prediction and ground truth of the same '
                         f'shape (T, K, 2), got {pred.shape} and {gt.shape}')
    return pred, gt


def face_scale(gt: np.ndarray,
               mask: Optional[np.ndarray] = None) -> np.ndarray:
    """s_t = sqrt(w_t · h_t / 256²) per frame.

    w_t, h_t: extent (max − min) of the (visible) ground-truth landmarks of
    frame t in x and y, pixels.

    Args:
        gt (np.ndarray): (T, K, 2) ground truth, image pixels.
        mask (np.ndarray, optional): (T, K) bool, visible landmarks.

    Returns:
        np.ndarray: (T,) scale; ``nan`` where fewer than 2 landmarks are
        visible or the extent is 0.
    """
    gt = np.asarray(gt, dtype=np.float64)
    if mask is None:
        mask = np.ones(gt.shape[:2], dtype=bool)
    lo = np.where(mask[..., None], gt, np.inf).min(axis=1)
    hi = np.where(mask[..., None], gt, -np.inf).max(axis=1)
    with np.errstate(invalid='ignore'):
        extent = hi - lo
        area = extent[:, 0] * extent[:, 1]
    scale = np.full(gt.shape[0], np.nan)
    ok = (mask.sum(1) >= 2) & np.isfinite(area) & (area > 0)
    scale[ok] = np.sqrt(area[ok]) / REFERENCE_SIZE
    return scale


def normalised_jitter(pred: np.ndarray,
                      gt: np.ndarray,
                      mask: Optional[np.ndarray] = None) -> np.ndarray:
    """NMJ_{t,k} = 100 · ‖e_{t,k} − e_{t−1,k}‖ / s_t for t = 1 … T−1.

    Args:
        pred (np.ndarray): (T, K, 2) prediction, image pixels.
        gt (np.ndarray): (T, K, 2) ground truth, image pixels.
        mask (np.ndarray, optional): (T, K) bool; NMJ_{t,k} is ``nan`` unless
            landmark k is visible in frames t and t−1.

    Returns:
        np.ndarray: (T−1, K); row t−1 holds frame t.
    """
    pred, gt = _check_pair(pred, gt)
    err = pred - gt
    step = np.linalg.norm(err[1:] - err[:-1], axis=-1)
    nmj = 100. * step / face_scale(gt, mask)[1:, None]
    if mask is not None:
        both = np.asarray(mask[1:], bool) & np.asarray(mask[:-1], bool)
        nmj = np.where(both, nmj, np.nan)
    return nmj


def nmf(pred: np.ndarray,
        gt: np.ndarray,
        mask: Optional[np.ndarray] = None) -> float:
    """One video's NMF = RMS over frames of (RMS over landmarks of NMJ).

    Exactly LDEQ's ``video_NMJ`` when every landmark is visible; with a
    ``mask``, each RMS runs over the defined entries only (frames with none
    are left out).

    Args:
        pred (np.ndarray): (T, K, 2) prediction, image pixels.
        gt (np.ndarray): (T, K, 2) ground truth, image pixels.
        mask (np.ndarray, optional): (T, K) bool, visible landmarks.

    Returns:
        float: NMF (percent of a 256-pixel face per frame, as LDEQ);
        ``nan`` for T < 2 or no defined frame.
    """
    pred, gt = _check_pair(pred, gt)
    if pred.shape[0] < 2:
        return float('nan')
    nmj = normalised_jitter(pred, gt, mask)
    defined = np.isfinite(nmj)
    count = defined.sum(axis=1)
    frames = count > 0
    if not frames.any():
        return float('nan')
    sq = np.where(defined, nmj, 0.)**2
    per_frame = sq[frames].sum(axis=1) / count[frames]  # RMS², landmarks
    return float(np.sqrt(per_frame.mean()))
