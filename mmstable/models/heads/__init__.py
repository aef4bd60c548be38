from .convlstm_refine_head import ConvLSTMRefineHead

__all__ = ['ConvLSTMRefineHead']
