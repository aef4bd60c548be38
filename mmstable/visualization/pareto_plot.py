"""NMF against NME: one panel per scenario, each filter family's front."""
import math
from typing import Dict, Optional, Sequence

import numpy as np
from matplotlib.figure import Figure

from ..evaluation.pareto import pareto_front
from .stability_plots import _save

__all__ = ['plot_pareto']

_STYLE = dict(
    OneEuro=dict(color='tab:blue', marker='o'),
    Kalman=dict(color='tab:green', marker='s'),
    EMA=dict(color='tab:olive', marker='^'),
    SavitzkyGolay=dict(color='0.55', marker='v'),
    Gaussian=dict(color='0.35', marker='D'),
)


def plot_pareto(points: Dict[str, Sequence[dict]],
                out_png: str,
                summaries: Optional[Dict[str, dict]] = None,
                scenarios: Optional[Sequence[str]] = None,
                title: Optional[str] = None) -> str:
    """Accuracy (NME, x) against flicker (NMF, y, log scale), one panel per
    scenario, zoomed on NME up to 25 % above raw: every filter setting as a
    faint marker, each family's Pareto front as a line (offline references
    dashed, grey), raw (black cross), refined (red star), and, with
    ``summaries``, the refiner's standing in the panel title.

    Args:
        points (dict): scenario -> points (``ParetoSweep.points``).
        out_png (str): output file.
        summaries (dict, optional): ``ParetoSweep.summaries``.
        scenarios (Sequence[str], optional): panels, in order; default every
            scenario but ``'all'`` (only ``'all'`` if it is the only one).
        title (str, optional): figure title.

    Returns:
        str: ``out_png``.
    """
    if scenarios is None:
        scenarios = [s for s in points if s != 'all'] or list(points)
    n = len(scenarios)
    cols = min(n, 4) or 1
    rows = max(1, math.ceil(n / cols))
    fig = Figure(figsize=(4.2 * cols, 3.6 * rows + 0.4))
    for i, scenario in enumerate(scenarios):
        ax = fig.add_subplot(rows, cols, i + 1)
        pts = [p for p in points[scenario]
               if np.isfinite(p['NME']) and np.isfinite(p['NMF'])]
        for family, style in _STYLE.items():
            fam = [p for p in pts if p['family'] == family]
            if not fam:
                continue
            xy = np.array([[p['NME'], p['NMF']] for p in fam])
            ax.scatter(xy[:, 0], xy[:, 1], s=10, alpha=0.3,
                       color=style['color'], marker=style['marker'])
            front = xy[pareto_front(fam)]
            offline = not fam[0]['causal']
            ax.plot(front[:, 0], front[:, 1], color=style['color'],
                    marker=style['marker'], markersize=4,
                    linestyle='--' if offline else '-',
                    label=family + (' (offline)' if offline else ''))
        for family, style in (('raw', dict(color='k', marker='x', s=60)),
                              ('refined', dict(color='tab:red', marker='*',
                                               s=140))):
            for p in pts:
                if p['family'] == family:
                    ax.scatter([p['NME']], [p['NMF']], zorder=5,
                               label=family, **style)
        ax.set_yscale('log')
        # zoom on the useful range: up to 25 % less accurate than raw
        ref = [p['NME'] for p in pts if p['family'] in ('raw', 'refined')]
        if ref and pts:
            lo = min(p['NME'] for p in pts)
            hi = max(max(ref) * 1.05, min(ref) * 1.25)
            shown = [p['NMF'] for p in pts if p['NME'] <= hi]
            ax.set_xlim(lo - 0.02 * (hi - lo), hi)
            ax.set_ylim(min(shown) * 0.9, max(shown) * 1.1)
        ax.set_xlabel('NME')
        ax.set_ylabel('NMF')
        head = scenario
        standing = (summaries or {}).get(scenario, {}).get('standing')
        if standing is not None:
            gain = standing['gain']
            head += ('\nrefined dominated' if standing['dominated_by'] else
                     f'\nrefined NMF {100 * abs(gain):.0f}% '
                     f'{"below" if gain >= 0 else "above"} causal front'
                     if np.isfinite(gain) else '\nrefined: beyond the front')
        ax.set_title(head, fontsize=9)
        ax.grid(True, which='both', alpha=0.3)
        if i == 0:
            ax.legend(fontsize=6)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, out_png)
