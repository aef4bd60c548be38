from .rng_state_hook import RNGStateHook
from .trajectory_plot_hook import TrajectoryPlotHook

__all__ = ['RNGStateHook', 'TrajectoryPlotHook']
