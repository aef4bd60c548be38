"""One Euro filter (Casiez et al., CHI 2012) as a causal landmark smoother."""
import math
from typing import Optional

import numpy as np
from mmpose.registry import TASK_UTILS

from .base_temporal_filter import BaseOnlineFilter


@TASK_UTILS.register_module()
class OneEuroFilter(BaseOnlineFilter):
    """One Euro filter, online: causal, frame by frame, state per track.

    For each coordinate, with sampling period t_e and
    α(f_c) = r / (r + 1), r = 2π f_c t_e:

    - dx_t = (x_t − x_{t−1}) / t_e · s_t  (x_{t−1} raw or filtered, see
      ``derivative_of``; s_t the value scale, see ``value_scale``)
    - dx̂_t = α(d_cutoff) dx_t + (1 − α(d_cutoff)) dx̂_{t−1}
    - f_c = min_cutoff + beta |dx̂_t|
    - x̂_t = α(f_c) x_t + (1 − α(f_c)) x̂_{t−1}

    The first frame passes through with dx̂ = 0. Units: ``fps=None`` measures
    time in frames (t_e = frame_id difference; cutoffs in cycles/frame, as
    MMPose 0.x); ``fps=30`` measures it in seconds (cutoffs in Hz, as
    MediaPipe). Positions are image pixels, so with ``value_scale=None``
    ``beta`` is in (cutoff unit) per (px per time unit).

    Defaults are MMPose 0.x's (``configs/_base_/filters/one_euro.py`` and
    ``mmpose/core/post_processing/temporal_filters/one_euro_filter.py``):
    min_cutoff=0.004, beta=0.7, d_cutoff=1.0, time in frames, derivative of
    the filtered signal. See :mod:`.presets` for MediaPipe's values.

    Args:
        min_cutoff (float): Cutoff at rest; lower removes more slow jitter.
        beta (float): Speed coefficient; higher reduces lag in fast motion.
        d_cutoff (float): Cutoff of the derivative's low-pass.
        fps (float, optional): Frames per second; ``None``: time in frames.
        derivative_of (str): ``'filtered'`` (x̂_{t−1}; MMPose 0.x / VIBE) or
            ``'raw'`` (x_{t−1}; Casiez's reference code and MediaPipe).
        value_scale (str, optional): ``None`` or ``'object'``: divide the
            speed by the track's size in this frame, (bbox width + height) / 2
            of the K landmarks in pixels (MediaPipe's
            ``LandmarksSmoothingCalculator`` object scale), so ``beta`` is
            per face-sizes per time unit.
    """
    default_name = 'OneEuro'

    def __init__(self,
                 min_cutoff: float = 0.004,
                 beta: float = 0.7,
                 d_cutoff: float = 1.0,
                 fps: Optional[float] = None,
                 derivative_of: str = 'filtered',
                 value_scale: Optional[str] = None):
        if min_cutoff <= 0 or d_cutoff <= 0:
            raise ValueError('OneEuroFilter: min_cutoff and d_cutoff must be '
                             f'> 0, got {min_cutoff}, {d_cutoff}')
        if derivative_of not in ('filtered', 'raw'):
            raise ValueError("OneEuroFilter.derivative_of must be 'filtered' "
                             f"or 'raw', got {derivative_of!r}")
        if value_scale not in (None, 'object'):
            raise ValueError("OneEuroFilter.value_scale must be None or "
                             f"'object', got {value_scale!r}")
        if fps is not None and fps <= 0:
            raise ValueError(f'OneEuroFilter.fps must be > 0, got {fps}')
        self.min_cutoff = float(min_cutoff)
        self.beta = float(beta)
        self.d_cutoff = float(d_cutoff)
        self.fps = fps
        self.derivative_of = derivative_of
        self.value_scale = value_scale
        self.reset()

    def reset(self) -> None:
        """Forget the track (call at the start of every video / track)."""
        self._t_prev = None
        self._x_prev = None  # raw
        self._x_hat_prev = None
        self._dx_hat_prev = None

    @staticmethod
    def _alpha(t_e: float, cutoff):
        r = 2 * math.pi * cutoff * t_e
        return r / (r + 1)

    def step(self, x: np.ndarray, t: Optional[float] = None) -> np.ndarray:
        """Filter one frame.

        Args:
            x (np.ndarray): (K, 2) landmarks of the current frame, pixels.
            t (float, optional): Its frame index; default previous + 1.

        Returns:
            np.ndarray: (K, 2) filtered landmarks.
        """
        x = np.asarray(x, dtype=np.float64)
        if self._t_prev is None:
            self._t_prev = 0. if t is None else float(t)
            self._x_prev = self._x_hat_prev = x.copy()
            self._dx_hat_prev = np.zeros_like(x)
            return x.copy()
        t_e = self._elapsed(t)
        if self.fps is not None:
            t_e /= self.fps
        scale = 1.
        if self.value_scale == 'object':
            size = x.max(0) - x.min(0)
            scale = 1. / max(float(size.mean()), 1e-6)
        ref = self._x_hat_prev if self.derivative_of == 'filtered' \
            else self._x_prev
        dx = (x - ref) / t_e * scale
        a_d = self._alpha(t_e, self.d_cutoff)
        dx_hat = a_d * dx + (1 - a_d) * self._dx_hat_prev
        a = self._alpha(t_e, self.min_cutoff + self.beta * np.abs(dx_hat))
        x_hat = a * x + (1 - a) * self._x_hat_prev
        self._x_prev = x.copy()
        self._x_hat_prev, self._dx_hat_prev = x_hat, dx_hat
        return x_hat

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(min_cutoff={self.min_cutoff}, '
                f'beta={self.beta}, d_cutoff={self.d_cutoff}, fps={self.fps}, '
                f'derivative_of={self.derivative_of!r}, '
                f'value_scale={self.value_scale!r})')
