"""Mean Allan Variance (paper §4.1, eq. 11) and jitter-vs-motion extras."""
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
from mmpose.registry import METRICS

from ..functional import acceleration_error, allan_variance
from .base_video_metric import BaseVideoMetric

#: τ (frames) of ``allan_taus=True``.
DEFAULT_TAUS = (1, 2, 4, 8, 16, 32, 64)


@METRICS.register_module()
class MAV(BaseVideoMetric):
    """Mean Allan Variance of predicted landmarks over videos.

    docs/conventions.md §4: per video, the AVar of a landmark is
    Σ_t ‖u_{t+1} − u_t‖² / (2(T−1)) (eq. 11, image px², frames in
    ``frame_id`` order); the video's AVar is the mean over landmarks; MAV is
    the mean over videos. Key ``MAV``. Videos with fewer than 2 frames are
    skipped with a warning.

    Options beyond the paper (MAV on raw positions cannot tell jitter from
    real head motion):

    - ``allan_taus``: Allan deviation over τ frames, keys ``ADEV@τ`` (px):
      per video the landmark-mean AVar(τ) of
      :func:`mmstable.evaluation.functional.allan_variance` (overlapping
      estimator by default, ``allan_overlapping=False`` for non-overlapping
      blocks), averaged over the videos with at least 2τ frames, then the
      square root. ``ADEV@1`` = sqrt(MAV). Jitter falls as τ^(-1/2), motion
      rises with τ.
    - ``error_signal``: the same on e_t = u_t − û_t (needs ground truth),
      keys ``MAV_err`` and ``ADEV_err@τ``: a model that tracks the head
      exactly scores 0 however much the head moves. Landmarks not visible in
      every frame of a video are left out of that video's error values.
    - ``accel``: SmoothNet's acceleration error ``Accel`` (px/frame²; needs
      ground truth), mean over all frames and landmarks of all videos, as
      SmoothNet pools it.

    Videos without ground truth get no ``_err`` / ``Accel`` values (one
    warning each).

    Args:
        allan_taus (bool | Sequence[int], optional): ``True`` for
            :data:`DEFAULT_TAUS` (1, 2, 4, …, 64), a list of frames, or
            ``None`` (off).
        allan_overlapping (bool): Allan estimator. Default ``True``.
        error_signal (bool): Add ``MAV_err`` (and ``ADEV_err@τ``).
        accel (bool): Add ``Accel``.
        **kwargs: :class:`BaseVideoMetric` arguments.
    """
    min_frames = 2

    def __init__(self,
                 allan_taus: Optional[Union[bool, Sequence[int]]] = None,
                 allan_overlapping: bool = True,
                 error_signal: bool = False,
                 accel: bool = False,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if allan_taus is True:
            allan_taus = DEFAULT_TAUS
        self.allan_taus = [int(t) for t in (allan_taus or [])]
        if any(t < 1 for t in self.allan_taus):
            raise ValueError(f'MAV.allan_taus must be >= 1 frame, got '
                             f'{self.allan_taus}')
        self.allan_overlapping = allan_overlapping
        self.error_signal = error_signal
        self.accel = accel

    def _avars(self, series: np.ndarray, suffix: str) -> dict:
        out = {f'AVar{suffix}': float(allan_variance(series, 1).mean())}
        for tau in self.allan_taus:
            out[f'AVar{suffix}@{tau}'] = float(
                allan_variance(series, tau, self.allan_overlapping).mean())
        return out

    def compute_video(self, series, track) -> dict:
        values = self._avars(series, '')
        if not (self.error_signal or self.accel):
            return values
        if track.gt is None:
            self._warn(track, 'no ground truth: no MAV_err / Accel')
            return values
        always = track.mask.all(axis=0)
        if not always.any():
            self._warn(track, 'no landmark visible in every frame: no '
                       'MAV_err / Accel')
            return values
        if self.error_signal:
            err = series[:, always] - track.gt[:, always]
            values.update(self._avars(err, '_err'))
        if self.accel:
            acc = acceleration_error(series, track.gt, always)
            values['accel_sum'] = float(acc.sum())
            values['accel_count'] = int(acc.size)
        return values

    def aggregate(self, per_video: List[dict]) -> Dict[str, float]:
        out = dict(MAV=self._mean(v['AVar'] for v in per_video))
        suffixes = [''] + (['_err'] if self.error_signal else [])
        if self.error_signal:
            out['MAV_err'] = self._mean(v.get('AVar_err') for v in per_video)
        for suffix in suffixes:
            for tau in self.allan_taus:
                avar = self._mean(
                    v.get(f'AVar{suffix}@{tau}') for v in per_video)
                out[f'ADEV{suffix}@{tau}'] = float(np.sqrt(avar))
        if self.accel:
            count = sum(v.get('accel_count', 0) for v in per_video)
            total = sum(v.get('accel_sum', 0.) for v in per_video)
            out['Accel'] = total / count if count else float('nan')
        return out
