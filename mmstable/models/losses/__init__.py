from .jitter_loss import JitterLoss
from .keypoint_flicker_loss import KeypointFlickerLoss

__all__ = ['JitterLoss', 'KeypointFlickerLoss']
