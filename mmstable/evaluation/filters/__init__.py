"""Test-time landmark filters (baselines for the ConvLSTM refinement)."""
from .base_temporal_filter import BaseOnlineFilter, BaseTemporalFilter
from .ema_filter import EMAFilter
from .gaussian_filter import GaussianFilter
from .kalman_filter import KalmanFilter
from .one_euro_filter import OneEuroFilter
from .presets import FILTER_PRESETS, build_filter
from .savitzky_golay_filter import SavitzkyGolayFilter

__all__ = [
    'BaseTemporalFilter', 'BaseOnlineFilter', 'OneEuroFilter', 'SavitzkyGolayFilter',
    'GaussianFilter', 'KalmanFilter', 'EMAFilter', 'FILTER_PRESETS',
    'build_filter'
]
