"""Savitzky-Golay smoothing of a whole landmark track (offline)."""
from typing import Optional

import numpy as np
from mmpose.registry import TASK_UTILS
from scipy.signal import savgol_filter

from .base_temporal_filter import BaseTemporalFilter


@TASK_UTILS.register_module()
class SavitzkyGolayFilter(BaseTemporalFilter):
    """Savitzky-Golay filter over the whole track (offline, non-causal).

    :func:`scipy.signal.savgol_filter` along time, each coordinate separately.
    Defaults are MMPose 0.x's ``SavizkyGolayFilter``
    (``configs/_base_/filters/savizky_golay.py``: window_size=11,
    polyorder=2, scipy's default ``mode='interp'``); like it, a track shorter
    than the window is edge-padded at its start and the last T frames are
    returned.

    Args:
        window_size (int): Odd window length in frames.
        polyorder (int): Polynomial order, < window_size.
        mode (str): :func:`scipy.signal.savgol_filter` edge mode.
    """
    default_name = 'SavitzkyGolay'
    online = False

    def __init__(self,
                 window_size: int = 11,
                 polyorder: int = 2,
                 mode: str = 'interp'):
        if window_size % 2 != 1 or not 0 <= polyorder < window_size:
            raise ValueError('SavitzkyGolayFilter needs an odd window_size > '
                             f'polyorder >= 0, got window_size={window_size},'
                             f' polyorder={polyorder}')
        self.window_size = int(window_size)
        self.polyorder = int(polyorder)
        self.mode = mode

    def __call__(self,
                 series: np.ndarray,
                 frame_ids: Optional[np.ndarray] = None) -> np.ndarray:
        series = self._check(series)
        T = series.shape[0]
        if T < self.window_size:
            series = np.pad(series, [(self.window_size - T, 0), (0, 0),
                                     (0, 0)],
                            mode='edge')
        out = savgol_filter(
            series, self.window_size, self.polyorder, axis=0, mode=self.mode)
        return out[-T:]

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(window_size={self.window_size}, '
                f'polyorder={self.polyorder}, mode={self.mode!r})')
