"""Published filter settings, usable by name in a metric's ``filters=``.

``filters=['mediapipe_face', dict(type='GaussianFilter', sigma=2)]`` mixes a
preset with a config; a preset's ``name`` becomes the metric key prefix
(``MediaPipe/MAV``).

Sources:

- ``mediapipe_face`` — MediaPipe Tasks face landmarker, function
  ``ConfigureLandmarksSmoothingCalculator`` in
  google-ai-edge/mediapipe, ``mediapipe/tasks/cc/vision/face_landmarker/``
  ``face_landmarks_detector_graph.cc``: ``one_euro_filter { min_cutoff: 0.05
  beta: 80.0 derivate_cutoff: 1.0 }``. MediaPipe's
  ``LandmarksSmoothingCalculator`` measures time in seconds (30 fps video →
  ``fps=30``), takes the speed from the previous *raw* value and divides it
  by the landmarks' object scale (``disable_value_scaling: false``), which
  ``derivative_of='raw'`` and ``value_scale='object'`` reproduce.
- ``mmpose0x_one_euro`` / ``mmpose0x_savgol`` / ``mmpose0x_gaussian`` —
  MMPose 0.x ``configs/_base_/filters/{one_euro,savizky_golay,gaussian}.py``
  and ``mmpose/core/post_processing/temporal_filters/``: OneEuro
  min_cutoff=0.004, beta=0.7 (d_cutoff 1.0, time in frames, derivative of
  the filtered signal, from VIBE); SavizkyGolay window_size=11, polyorder=2;
  Gaussian window_size=11 (median), sigma=4.0.
"""
import copy
from typing import Union

from mmpose.registry import TASK_UTILS

from .base_temporal_filter import BaseTemporalFilter

__all__ = ['FILTER_PRESETS', 'build_filter']

FILTER_PRESETS = dict(
    mediapipe_face=dict(
        type='OneEuroFilter',
        name='MediaPipe',
        min_cutoff=0.05,
        beta=80.0,
        d_cutoff=1.0,
        fps=30.0,
        derivative_of='raw',
        value_scale='object'),
    mmpose0x_one_euro=dict(
        type='OneEuroFilter',
        name='OneEuro',
        min_cutoff=0.004,
        beta=0.7,
        d_cutoff=1.0,
        fps=None,
        derivative_of='filtered'),
    mmpose0x_savgol=dict(
        type='SavitzkyGolayFilter',
        name='SavitzkyGolay',
        window_size=11,
        polyorder=2),
    mmpose0x_gaussian=dict(
        type='GaussianFilter', name='Gaussian', window_size=11, sigma=4.0),
)


def build_filter(cfg: Union[str, dict, BaseTemporalFilter]) -> tuple:
    """Build a filter from a preset name, a config dict or an instance.

    Returns:
        tuple: ``(name, filter)``; ``name`` is the config's ``name`` key, the
        preset's, or the class's ``default_name``.
    """
    if isinstance(cfg, BaseTemporalFilter):
        return cfg.default_name, cfg
    if isinstance(cfg, str):
        if cfg not in FILTER_PRESETS:
            raise KeyError(f'Unknown filter preset {cfg!r}; known: '
                           f'{sorted(FILTER_PRESETS)} '
                           '(mmstable/evaluation/filters/presets.py)')
        cfg = FILTER_PRESETS[cfg]
    cfg = copy.deepcopy(dict(cfg))
    name = cfg.pop('name', None)
    filt = TASK_UTILS.build(cfg)
    if not isinstance(filt, BaseTemporalFilter):
        raise TypeError(f'{cfg["type"]} is not a mmstable temporal filter '
                        '(BaseTemporalFilter)')
    return name or filt.default_name, filt
