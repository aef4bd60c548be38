"""Gaussian smoothing of a whole landmark track (offline)."""
from typing import Optional

import numpy as np
from mmpose.registry import TASK_UTILS
from scipy.ndimage import gaussian_filter1d, median_filter

from .base_temporal_filter import BaseTemporalFilter


@TASK_UTILS.register_module()
class GaussianFilter(BaseTemporalFilter):
    """Median then Gaussian filter over the whole track (offline).

    As MMPose 0.x's ``GaussianFilter`` (``configs/_base_/filters/
    gaussian.py``: window_size=11, sigma=4.0): a median filter of
    ``window_size`` frames removes outliers, then
    :func:`scipy.ndimage.gaussian_filter1d` with ``sigma`` frames smooths
    (kernel radius ``truncate``·sigma, scipy's default 4). One deliberate
    difference: both filters pad by repeating the edge frame
    (``mode='nearest'``) where MMPose 0.x used :func:`scipy.signal.medfilt`,
    which pads with zeros and so pulls the first and last frames of pixel
    coordinates towards the smallest nearby value.

    Args:
        window_size (int): Odd median window in frames; 1 or ``None`` skips
            the median filter.
        sigma (float): Gaussian standard deviation in frames.
        truncate (float): Kernel radius in sigmas.
    """
    default_name = 'Gaussian'
    online = False

    def __init__(self,
                 window_size: Optional[int] = 11,
                 sigma: float = 4.0,
                 truncate: float = 4.0):
        if window_size is not None and window_size % 2 != 1:
            raise ValueError('GaussianFilter.window_size must be odd, got '
                             f'{window_size}')
        if sigma <= 0:
            raise ValueError(f'GaussianFilter.sigma must be > 0, got {sigma}')
        self.window_size = window_size
        self.sigma = float(sigma)
        self.truncate = float(truncate)

    def __call__(self,
                 series: np.ndarray,
                 frame_ids: Optional[np.ndarray] = None) -> np.ndarray:
        series = self._check(series)
        if self.window_size and self.window_size > 1:
            series = median_filter(
                series, size=(self.window_size, 1, 1), mode='nearest')
        return gaussian_filter1d(
            series, self.sigma, axis=0, mode='nearest',
            truncate=self.truncate)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(window_size={self.window_size}, '
                f'sigma={self.sigma}, truncate={self.truncate})')
