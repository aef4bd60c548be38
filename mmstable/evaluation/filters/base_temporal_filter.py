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


class BaseOnlineFilter(BaseTemporalFilter):
    """A causal filter: :meth:`step` takes one frame's (K, 2) landmarks (and
    its frame index) and returns their filtered value; :meth:`reset` starts a
    new track. Filtering a whole track is stepping through it from a reset
    state (and leaving the filter reset)."""
    online = True

    @abstractmethod
    def reset(self) -> None:
        """Forget the track filtered so far."""

    @abstractmethod
    def step(self, x: np.ndarray, t: Optional[float] = None) -> np.ndarray:
        """Filter one frame: (K, 2) pixels at frame index ``t`` (default:
        the previous one + 1) → (K, 2)."""

    def _elapsed(self, t: Optional[float]) -> float:
        """Frames since the previous step (``self._t_prev``, ``None`` before
        the first), with ``t`` defaulting to the previous index + 1; frame
        indices must increase. Moves ``self._t_prev`` to ``t``."""
        t = self._t_prev + 1. if t is None else float(t)
        if t <= self._t_prev:
            raise ValueError(f'{type(self).__name__}.step: frame indices must '
                             f'increase, got {t} after {self._t_prev}')
        dt, self._t_prev = t - self._t_prev, t
        return dt

    def __call__(self,
                 series: np.ndarray,
                 frame_ids: Optional[np.ndarray] = None) -> np.ndarray:
        series = self._check(series)
        self.reset()
        out = np.empty_like(series)
        for i, x in enumerate(series):
            out[i] = self.step(x, None if frame_ids is None else frame_ids[i])
        self.reset()
        return out
