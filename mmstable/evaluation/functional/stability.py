"""Stability measures on one landmark track (pure numpy).

A *track* is ``series``, an array (T, K, 2): T frames ordered by ``frame_id``,
K landmarks, (x, y) in image-space pixels (docs/conventions.md §2). The metric
convention (which averages are taken, units) is docs/conventions.md §4; the
functions here compute one track's share of it and return ``nan`` where a
quantity is undefined, leaving the warning to the caller, who knows the
``video_id``.
"""
from typing import Optional, Sequence, Tuple

import numpy as np

__all__ = [
    'coefficient_of_variation', 'allan_variance', 'allan_deviation',
    'default_taus', 'acceleration_error'
]


def coefficient_of_variation(series: np.ndarray,
                             min_abs_mean: float = 1.0) -> np.ndarray:
    """Paper eq. 9 for every coordinate series of a track, in percent.

    CV = sample std (ddof=1) / |mean| · 100, x and y separately.

    The paper's CV assumes a positive mean (image coordinates). A series
    whose |mean| is below ``min_abs_mean`` pixels (a landmark on the image
    border, or an error signal) has no meaningful CV: it is ``nan`` there,
    never ``inf``. ``|mean|`` keeps a landmark left of / above the image
    origin from entering the average with a negative sign.

    Args:
        series (np.ndarray): (T, K, 2) track, T >= 2.
        min_abs_mean (float): Pixels; smaller |means| give ``nan``.

    Returns:
        np.ndarray: (K, 2) CV in percent, ``nan`` where undefined
        (T < 2 or |mean| < ``min_abs_mean``).
    """
    series = np.asarray(series, dtype=np.float64)
    _check_track(series)
    if series.shape[0] < 2:
        return np.full(series.shape[1:], np.nan)
    mean = series.mean(axis=0)
    std = series.std(axis=0, ddof=1)
    defined = np.abs(mean) >= min_abs_mean
    cv = np.full(mean.shape, np.nan)
    cv[defined] = std[defined] / np.abs(mean[defined]) * 100.
    return cv


def allan_variance(series: np.ndarray,
                   tau: int = 1,
                   overlapping: bool = True) -> np.ndarray:
    """Allan variance of every landmark of a track at averaging time ``tau``.

    With ȳ_k the mean of frames k .. k+τ-1 (a 2-vector per landmark):

    - overlapping (IEEE Std 1139; every start k):
      AVar(τ) = Σ_{k=0}^{T-2τ} ‖ȳ_{k+τ} − ȳ_k‖² / (2 (T − 2τ + 1))
    - non-overlapping (consecutive blocks of τ frames, M = ⌊T/τ⌋ blocks):
      AVar(τ) = Σ_{j=0}^{M-2} ‖ȳ_{j+1} − ȳ_j‖² / (2 (M − 1))

    At τ = 1 both are the paper's eq. 11,
    Σ_{t=1}^{T-1} ‖u_{t+1} − u_t‖² / (2(T−1)), in px².

    Args:
        series (np.ndarray): (T, K, 2) track.
        tau (int): Averaging time in frames, >= 1.
        overlapping (bool): Estimator, see above.

    Returns:
        np.ndarray: (K,) px², ``nan`` when the track is shorter than 2τ frames.
    """
    series = np.asarray(series, dtype=np.float64)
    _check_track(series)
    tau = int(tau)
    if tau < 1:
        raise ValueError(f'tau must be a positive number of frames, got {tau}')
    T = series.shape[0]
    if T < 2 * tau:
        return np.full(series.shape[1], np.nan)
    if overlapping:
        csum = np.concatenate(
            [np.zeros((1, ) + series.shape[1:]),
             np.cumsum(series, axis=0)])
        means = (csum[tau:] - csum[:-tau]) / tau  # (T - tau + 1, K, 2)
        diffs = means[tau:] - means[:-tau]  # (T - 2 tau + 1, K, 2)
    else:
        M = T // tau
        means = series[:M * tau].reshape(M, tau, *series.shape[1:]).mean(1)
        diffs = means[1:] - means[:-1]  # (M - 1, K, 2)
    return (diffs**2).sum(-1).mean(0) / 2.


def default_taus(num_frames: int) -> list:
    """τ = 1, 2, 4, 8, … frames while a track of ``num_frames`` frames has at
    least two averaging windows (2τ <= T)."""
    taus, tau = [], 1
    while 2 * tau <= num_frames:
        taus.append(tau)
        tau *= 2
    return taus


def allan_deviation(series: np.ndarray,
                    taus: Optional[Sequence[int]] = None,
                    overlapping: bool = True) -> Tuple[np.ndarray, np.ndarray]:
    """Allan deviation curve of a track: sqrt of the landmark-mean AVar(τ).

    White jitter falls as τ^(-1/2) on a log-log plot while real head motion
    (drift, random walk) rises with τ, so the curve separates the two, which
    MCV / MAV on raw positions cannot.

    Args:
        series (np.ndarray): (T, K, 2) track.
        taus (Sequence[int], optional): Frames; default :func:`default_taus`.
        overlapping (bool): See :func:`allan_variance`.

    Returns:
        tuple: ``taus`` (n,) int and ``adev`` (n,) px (``nan`` where the track
        is too short).
    """
    series = np.asarray(series, dtype=np.float64)
    if taus is None:
        taus = default_taus(series.shape[0])
    taus = np.asarray(list(taus), dtype=int)
    adev = np.array([
        np.sqrt(allan_variance(series, tau, overlapping).mean())
        for tau in taus
    ])
    return taus, adev


def acceleration_error(pred: np.ndarray,
                       gt: np.ndarray,
                       mask: Optional[np.ndarray] = None) -> np.ndarray:
    """SmoothNet's acceleration error (Zeng et al., ECCV 2022), in px/frame².

    For t = 1 .. T-2: ‖(p_{t+1} − 2p_t + p_{t−1}) − (g_{t+1} − 2g_t + g_{t−1})‖
    per landmark.

    Args:
        pred (np.ndarray): (T, K, 2) predicted track.
        gt (np.ndarray): (T, K, 2) ground-truth track.
        mask (np.ndarray, optional): (K,) bool, landmarks to use.

    Returns:
        np.ndarray: (T-2, K') per-frame, per-landmark errors (empty if T < 3);
        the caller averages (SmoothNet pools all frames).
    """
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    _check_track(pred)
    if pred.shape != gt.shape:
        raise ValueError(f'pred {pred.shape} and gt {gt.shape} must match')
    if mask is not None:
        pred, gt = pred[:, mask], gt[:, mask]
    if pred.shape[0] < 3:
        return np.zeros((0, pred.shape[1]))
    accel_pred = pred[2:] - 2 * pred[1:-1] + pred[:-2]
    accel_gt = gt[2:] - 2 * gt[1:-1] + gt[:-2]
    return np.linalg.norm(accel_pred - accel_gt, axis=-1)


def _check_track(series: np.ndarray) -> None:
    if series.ndim != 3 or series.shape[-1] != 2:
        raise ValueError('Expected a landmark track of shape (T, K, 2) '
                         f'(frames, landmarks, xy), got {series.shape}')
