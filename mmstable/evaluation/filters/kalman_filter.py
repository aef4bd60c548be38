"""Constant-velocity Kalman filter as a causal landmark smoother."""
from typing import Optional

import numpy as np
from mmpose.registry import TASK_UTILS

from .base_temporal_filter import BaseOnlineFilter


@TASK_UTILS.register_module()
class KalmanFilter(BaseOnlineFilter):
    """Constant-velocity Kalman filter, online: causal, frame by frame.

    Every coordinate (x and y of every landmark) is an independent state
    s = (position p, velocity v) in pixels and pixels per frame:

    - predict: s ← F s, P ← F P Fᵀ + Q, with F = [[1, Δ], [0, 1]] and the
      piecewise-constant white acceleration Q = q G Gᵀ, G = (Δ²/2, Δ)
      (Δ: the ``frame_id`` step, 1 without gaps);
    - update with the measured position z: S = P₀₀ + r, K = P[:, 0] / S,
      s ← s + K (z − p), P ← P − K P[0, :].

    The first frame sets p = z, v = 0, P = r·I. All coordinates share one P
    (same model and noises), so the cost is that of a single 2-state filter.
    The estimate depends on the noises only through their ratio q / r: the
    Pareto sweep varies ``process_noise`` with ``measurement_noise`` 1.
    Unlike an EMA it has no steady-state lag on a head moving at constant
    speed.

    Args:
        process_noise (float): q, variance of the acceleration per frame
            (px²/frame⁴·frame): larger follows motion faster, smooths less.
        measurement_noise (float): r, variance of the per-frame landmark
            noise (px²).
    """
    default_name = 'Kalman'

    def __init__(self,
                 process_noise: float = 0.01,
                 measurement_noise: float = 1.0):
        if process_noise < 0 or measurement_noise <= 0:
            raise ValueError('KalmanFilter: process_noise must be >= 0 and '
                             'measurement_noise > 0, got '
                             f'{process_noise}, {measurement_noise}')
        self.process_noise = float(process_noise)
        self.measurement_noise = float(measurement_noise)
        self.reset()

    def reset(self) -> None:
        """Forget the track (call at the start of every video / track)."""
        self._t_prev = None
        self._p = self._v = None
        self._cov = None

    def step(self, x: np.ndarray, t: Optional[float] = None) -> np.ndarray:
        """Filter one frame: ``x`` (K, 2) pixels, ``t`` its frame index
        (default previous + 1). Returns the filtered positions (K, 2)."""
        z = np.asarray(x, dtype=np.float64)
        r = self.measurement_noise
        if self._t_prev is None:
            self._t_prev = 0. if t is None else float(t)
            self._p, self._v = z.copy(), np.zeros_like(z)
            self._cov = np.eye(2) * r
            return z.copy()
        dt = self._elapsed(t)
        F = np.array([[1., dt], [0., 1.]])
        G = np.array([[dt * dt / 2.], [dt]])
        p = self._p + dt * self._v
        v = self._v
        cov = F @ self._cov @ F.T + self.process_noise * (G @ G.T)
        gain = cov[:, 0] / (cov[0, 0] + r)
        innovation = z - p
        self._p = p + gain[0] * innovation
        self._v = v + gain[1] * innovation
        self._cov = cov - np.outer(gain, cov[0, :])
        return self._p.copy()

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(process_noise={self.process_noise}, '
                f'measurement_noise={self.measurement_noise})')
