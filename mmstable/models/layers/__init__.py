from .conv_lstm import ConvLSTMCell

__all__ = ['ConvLSTMCell']
