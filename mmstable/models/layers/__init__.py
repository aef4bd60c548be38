from .adaptive_kalman import AdaptiveKalmanFilter, KalmanTrackState
from .conv_lstm import ConvLSTMCell, TiedGroupConv1x1, TiedGroupConvLSTMCell

__all__ = [
    'ConvLSTMCell', 'TiedGroupConvLSTMCell', 'TiedGroupConv1x1',
    'AdaptiveKalmanFilter', 'KalmanTrackState'
]
