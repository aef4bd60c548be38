from .convlstm_refine_head import ConvLSTMRefineHead
from .decoupled_recurrent_refine_head import DecoupledRecurrentRefineHead

__all__ = ['ConvLSTMRefineHead', 'DecoupledRecurrentRefineHead']
