"""Exponential moving average as a causal landmark smoother."""
from typing import Optional

import numpy as np
from mmpose.registry import TASK_UTILS

from .base_temporal_filter import BaseOnlineFilter


@TASK_UTILS.register_module()
class EMAFilter(BaseOnlineFilter):
    """Exponential moving average, online: causal, frame by frame.

    x̂_0 = x_0;  x̂_t = a x_t + (1 − a) x̂_{t−1} with a = 1 − (1 − alpha)^Δ,
    Δ the ``frame_id`` step (1 without gaps, so a = ``alpha``): a gap of Δ
    frames decays the memory as Δ steps would.

    The simplest low-pass: it lags a moving face by (1 − alpha) / alpha
    frames of its velocity, which the One Euro and Kalman filters avoid.

    Args:
        alpha (float): weight of the new frame, in (0, 1]; 1 passes the
            input through.
    """
    default_name = 'EMA'

    def __init__(self, alpha: float = 0.5):
        if not 0. < alpha <= 1.:
            raise ValueError(f'EMAFilter.alpha must be in (0, 1], got {alpha}')
        self.alpha = float(alpha)
        self.reset()

    def reset(self) -> None:
        """Forget the track (call at the start of every video / track)."""
        self._t_prev = None
        self._x_hat = None

    def step(self, x: np.ndarray, t: Optional[float] = None) -> np.ndarray:
        """Filter one frame: ``x`` (K, 2) pixels, ``t`` its frame index
        (default previous + 1). Returns (K, 2)."""
        x = np.asarray(x, dtype=np.float64)
        if self._t_prev is None:
            self._t_prev = 0. if t is None else float(t)
            self._x_hat = x.copy()
            return x.copy()
        a = 1. - (1. - self.alpha)**self._elapsed(t)
        self._x_hat = a * x + (1. - a) * self._x_hat
        return self._x_hat.copy()

    def __repr__(self) -> str:
        return f'{type(self).__name__}(alpha={self.alpha})'
