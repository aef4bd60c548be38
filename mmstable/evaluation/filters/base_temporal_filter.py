"""Common interface of mmstable's test-time landmark filters."""
from abc import ABCMeta, abstractmethod
from typing import Optional

import numpy as np


class BaseTemporalFilter(metaclass=ABCMeta):
    """Smooths one landmark track.

    A track is (T, K, 2): the frames of one face in one video in ``frame_id``
    order, image-space pixels (docs/conventions.md §2). Call the filter once
    per track; it never mixes tracks.

    Class attributes:
        default_name (str): Prefix of the metric keys it produces
            (``'OneEuro/MAV'``); a config's ``name=`` overrides it.
        online (bool): ``True`` if the filter is causal and can run frame by
            frame (:meth:`reset` / :meth:`step`); ``False`` if it needs the
            whole track (offline smoothing).
    """
    default_name = 'Filter'
    online = False

    @abstractmethod
    def __call__(self,
                 series: np.ndarray,
                 frame_ids: Optional[np.ndarray] = None) -> np.ndarray:
        """Filter a whole track.

        Args:
            series (np.ndarray): (T, K, 2) pixels.
            frame_ids (np.ndarray, optional): (T,) frame indices; online
                filters use them as time stamps (gaps from dropped frames),
                offline filters assume uniform sampling and ignore them.

        Returns:
            np.ndarray: (T, K, 2) filtered track, float64.
        """

    @staticmethod
    def _check(series: np.ndarray) -> np.ndarray:
        series = np.asarray(series, dtype=np.float64)
        if series.ndim != 3:
            raise ValueError('A filter expects a track of shape (T, K, 2), '
                             f'got {series.shape}')
        return series
