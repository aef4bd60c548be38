"""Stability plots for reports: trajectories, Allan deviation, robustness.

Figures are drawn on an Agg canvas directly (``matplotlib.figure.Figure``),
so importing this module never changes matplotlib's global backend.
"""
import os
import os.path as osp
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ['plot_trajectories', 'plot_allan', 'plot_robustness']


def _save(fig: Figure, out_png: str) -> str:
    if osp.dirname(out_png):
        os.makedirs(osp.dirname(out_png), exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(out_png, dpi=100)
    return out_png


def plot_trajectories(series: Dict[str, np.ndarray],
                      out_png: str,
                      landmarks: Optional[Sequence[int]] = None,
                      frame_ids: Optional[np.ndarray] = None,
                      title: Optional[str] = None) -> str:
    """x and y against frame for a few landmarks, one line per method.

    Args:
        series (dict): name (``'raw'``, ``'OneEuro'``, ``'refined'``,
            ``'gt'``…) -> (T, K, 2) track in image pixels, same T.
        out_png (str): Output file.
        landmarks (Sequence[int], optional): Landmark indices, one row each;
            default (36, 45, 30, 48) for 68 points (outer eye corners, nose
            tip, mouth corner), else landmark 0.
        frame_ids (np.ndarray, optional): (T,) x axis; default 0..T-1.
        title (str, optional): Figure title (e.g. the video_id).

    Returns:
        str: ``out_png``.
    """
    if not series:
        raise ValueError('plot_trajectories: no series given')
    first = next(iter(series.values()))
    T, K = first.shape[:2]
    if landmarks is None:
        landmarks = (36, 45, 30, 48) if K == 68 else (0, )
    x = np.arange(T) if frame_ids is None else np.asarray(frame_ids)
    fig = Figure(figsize=(10, 2.2 * len(landmarks)))
    axes = fig.subplots(len(landmarks), 2, squeeze=False, sharex=True)
    for row, k in enumerate(landmarks):
        for col, axis in enumerate('xy'):
            ax = axes[row, col]
            for name, s in series.items():
                ax.plot(x, np.asarray(s)[:, k, col], label=name, lw=1)
            ax.set_ylabel(f'landmark {k} {axis} (px)')
    for ax in axes[-1]:
        ax.set_xlabel('frame')
    axes[0, 0].legend(fontsize='small')
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, out_png)


def plot_allan(curves: Dict[str, Tuple[np.ndarray, np.ndarray]],
               out_png: str,
               title: Optional[str] = None) -> str:
    """Allan deviation against τ on log-log axes, one line per method.

    Args:
        curves (dict): name -> ``(taus, adev)`` as returned by
            :func:`mmstable.evaluation.functional.allan_deviation` (frames,
            px); non-finite points are not drawn.
        out_png (str): Output file.
        title (str, optional): Figure title.

    Returns:
        str: ``out_png``.
    """
    fig = Figure(figsize=(5, 4))
    ax = fig.subplots()
    for name, (taus, adev) in curves.items():
        taus, adev = np.asarray(taus, float), np.asarray(adev, float)
        ok = np.isfinite(adev) & (adev > 0)
        ax.loglog(taus[ok], adev[ok], marker='o', label=name)
    ax.set_xlabel('τ (frames)')
    ax.set_ylabel('Allan deviation (px)')
    ax.grid(True, which='both', alpha=0.3)
    ax.legend(fontsize='small')
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return _save(fig, out_png)


def plot_robustness(rows: Sequence[dict],
                    out_png: str,
                    metrics: Sequence[str] = ('MCV', 'MAV', 'NME')) -> str:
    """Metric against degradation level, one line per method (paper fig. 8).

    Args:
        rows (Sequence[dict]): Table rows with keys ``level`` (str, x axis in
            the order first seen), ``method`` and the metric names.
        out_png (str): Output file.
        metrics (Sequence[str]): Columns to plot (missing ones skipped).

    Returns:
        str: ``out_png``.
    """
    metrics = [m for m in metrics if any(m in r for r in rows)]
    levels = list(dict.fromkeys(r['level'] for r in rows))
    methods = list(dict.fromkeys(r['method'] for r in rows))
    fig = Figure(figsize=(4.5 * max(len(metrics), 1), 4))
    axes = fig.subplots(1, max(len(metrics), 1), squeeze=False)[0]
    for ax, metric in zip(axes, metrics):
        for method in methods:
            y = [
                next((r.get(metric, np.nan) for r in rows
                      if r['level'] == lv and r['method'] == method), np.nan)
                for lv in levels
            ]
            ax.plot(range(len(levels)), y, marker='o', label=method)
        ax.set_xticks(range(len(levels)))
        ax.set_xticklabels(levels, rotation=45, ha='right', fontsize='small')
        ax.set_ylabel(metric)
    axes[0].legend(fontsize='small')
    fig.tight_layout()
    return _save(fig, out_png)
