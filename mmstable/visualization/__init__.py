"""Plots of landmark stability (matplotlib, Agg canvas; no GUI)."""
from .pareto_plot import plot_pareto
from .stability_plots import plot_allan, plot_robustness, plot_trajectories

__all__ = ['plot_trajectories', 'plot_allan', 'plot_robustness', 'plot_pareto']
