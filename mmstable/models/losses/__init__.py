from .jitter_loss import JitterLoss

__all__ = ['JitterLoss']
