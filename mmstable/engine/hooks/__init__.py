from .trajectory_plot_hook import TrajectoryPlotHook

__all__ = ['TrajectoryPlotHook']
