"""Mean Coefficient of Variation (paper §4.1, eq. 9-10)."""
from typing import Dict, List

import numpy as np
from mmpose.registry import METRICS

from ..functional import coefficient_of_variation
from .base_video_metric import BaseVideoMetric


@METRICS.register_module()
class MCV(BaseVideoMetric):
    """Mean Coefficient of Variation of predicted landmarks over videos.

    docs/conventions.md §4: per video, each landmark coordinate series
    (x and y separately, image pixels, frames in ``frame_id`` order) has
    CV = sample std (ddof=1) / |mean| · 100 (eq. 9, percent); the video's CVar
    is the mean over landmarks and both coordinates; MCV (eq. 10) is the mean
    over videos. Key: ``MCV`` (plus the variant / scenario prefixes of
    :class:`BaseVideoMetric`).

    Undefined cases, each skipped with a warning, never ``inf`` nor a crash:
    a video with fewer than 2 frames; a coordinate series whose |mean| is
    below ``min_abs_mean`` pixels (CV undefined; the video's CVar averages
    the remaining series, and a video with none left is skipped).

    CV divides by the position, so the same jitter scores lower for a face
    far from the image origin; MCV is not translation-invariant (use
    :class:`MAV`, whose ``allan_taus`` / ``error_signal`` options separate
    jitter from head motion). No CV of the error signal is offered: the
    error's mean is ~0, where CV is undefined.

    Args:
        min_abs_mean (float): Pixels; see above. Default 1.0.
        **kwargs: :class:`BaseVideoMetric` arguments (``filters``,
            ``extra_pred_keys``, ``scenario_key``, ``video_scenarios``,
            ``nan_policy``, ``collect_device``, ``prefix``).
    """
    min_frames = 2

    def __init__(self, min_abs_mean: float = 1.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.min_abs_mean = float(min_abs_mean)

    def compute_video(self, series, track) -> dict:
        cv = coefficient_of_variation(series, self.min_abs_mean)
        undefined = int(np.isnan(cv).sum())
        if undefined == cv.size:
            self._warn(track, f'every coordinate series has |mean| < '
                       f'{self.min_abs_mean} px, CV undefined; skipped')
            return dict(CVar=None)
        if undefined:
            self._warn(track, f'{undefined} of {cv.size} coordinate series '
                       f'have |mean| < {self.min_abs_mean} px (CV undefined);'
                       ' left out of its CVar')
        return dict(CVar=float(np.nanmean(cv)))

    def aggregate(self, per_video: List[dict]) -> Dict[str, float]:
        return dict(MCV=self._mean(v['CVar'] for v in per_video))
