"""Accuracy-vs-flicker trade-off: Pareto fronts of filters, the refiner's
standing against them, and the "best filter" rule of the reports.

A *point* is one prediction variant on one scenario, a dict with at least
``label`` (``'Kalman q=0.01'``), ``family`` (``'raw'``, ``'refined'``,
``'OneEuro'``, ``'Kalman'``, ``'EMA'``, ``'SavitzkyGolay'``, ``'Gaussian'``),
``causal`` (bool; raw and the refiner are causal), ``NME`` and ``NMF``
(lower is better for both). :class:`~mmstable.evaluation.metrics.
ParetoSweep` produces them from a test run; the functions here are pure.
"""
from typing import Dict, List, Optional, Sequence

import numpy as np

__all__ = [
    'DEFAULT_GRIDS', 'CAUSAL_FAMILIES', 'pareto_front', 'front_value',
    'compare_to_front', 'best_on_front', 'scenario_summary', 'format_report',
    'add_pareto_sweep', 'claim_checks'
]

#: NME tolerance of "the same NME" (relative), in every rule below.
NME_TOLERANCE = 0.02

#: Causal filter families swept on the raw landmarks.
CAUSAL_FAMILIES = ('OneEuro', 'Kalman', 'EMA')

#: The sweep of :class:`~mmstable.evaluation.metrics.ParetoSweep`: family ->
#: list of filter configs. One Euro as MediaPipe measures it (seconds at
#: 30 fps, speed from the raw signal, in face sizes per second:
#: ``preset mediapipe_face`` is min_cutoff 0.05, beta 80); Kalman: the
#: process / measurement noise ratio q / r (r = 1 px²); EMA: the new frame's
#: weight; Savitzky–Golay and Gaussian: offline (non-causal) references.
DEFAULT_GRIDS = dict(
    OneEuro=[
        dict(type='OneEuroFilter', min_cutoff=mc, beta=b, d_cutoff=1.,
             fps=30., derivative_of='raw', value_scale='object')
        for mc in (0.01, 0.03, 0.1, 0.3, 1., 3., 10.)
        for b in (0., 1., 5., 20., 80., 300., 1000.)
    ],
    Kalman=[
        dict(type='KalmanFilter', process_noise=q, measurement_noise=1.)
        for q in (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1., 3., 10.)
    ],
    EMA=[
        dict(type='EMAFilter', alpha=a)
        for a in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    ],
    SavitzkyGolay=[
        dict(type='SavitzkyGolayFilter', window_size=w, polyorder=2)
        for w in (5, 9, 15, 25)
    ],
    Gaussian=[
        dict(type='GaussianFilter', window_size=None, sigma=s)
        for s in (0.5, 1., 2., 4.)
    ],
)


def _xy(points: Sequence[dict]) -> np.ndarray:
    return np.array([[p['NME'], p['NMF']] for p in points], dtype=np.float64
                    ).reshape(-1, 2)


def pareto_front(points: Sequence[dict]) -> List[int]:
    """Indices of the non-dominated points (NME and NMF both minimised),
    ordered by increasing NME (so by decreasing NMF).

    A point is dominated when another is no worse in both and better in one;
    of exact duplicates the first is kept. Points with a non-finite value are
    never on the front.
    """
    xy = _xy(points)
    ok = np.isfinite(xy).all(1)
    front = []
    for i in np.flatnonzero(ok):
        others = xy[ok]
        no_worse = (others <= xy[i]).all(1)
        better = (others < xy[i]).any(1)
        if (no_worse & better).any():
            continue
        if any((xy[j] == xy[i]).all() for j in front):
            continue
        front.append(int(i))
    return sorted(front, key=lambda i: (xy[i, 0], xy[i, 1]))


def front_value(points: Sequence[dict],
                nme: float,
                tolerance: float = NME_TOLERANCE) -> float:
    """NMF of the Pareto front of ``points`` at accuracy ``nme``.

    The front is a staircase of (NME, NMF) points; between two of them it is
    interpolated linearly in NME. Beyond the front's most accurate end, a
    point within ``tolerance`` (relative) counts as the same NME; more
    accurate than that, no point of ``points`` reaches ``nme``: ``nan``.
    Beyond the least accurate (lowest-NMF) end, the front stays at that
    NMF (a filter may always be less accurate than asked).
    """
    front = [points[i] for i in pareto_front(points)]
    if not front or not np.isfinite(nme):
        return float('nan')
    xy = _xy(front)
    if nme < xy[0, 0]:
        return float(xy[0, 1]) if nme >= xy[0, 0] * (1 - tolerance) \
            else float('nan')
    if nme >= xy[-1, 0]:
        return float(xy[-1, 1])
    return float(np.interp(nme, xy[:, 0], xy[:, 1]))


def compare_to_front(point: dict,
                     points: Sequence[dict],
                     tolerance: float = NME_TOLERANCE) -> dict:
    """Where ``point`` (the refiner) stands against ``points`` (filters).

    Returns a dict:

    - ``front_nmf``: :func:`front_value` at the point's NME;
    - ``gain``: 1 − NMF / front_nmf (0.2 = 20 % less flicker than the best
      filter at the same NME; negative: more), ``nan`` without a front value;
    - ``dominated_by``: label of a point that is no worse in both NME and
      NMF and better in one (the one with the lowest NMF), else ``None``;
    - ``text``: the sentence the reports print.
    """
    front_nmf = front_value(points, point['NME'], tolerance)
    gain = 1. - point['NMF'] / front_nmf if np.isfinite(front_nmf) and \
        front_nmf > 0 else float('nan')
    dominating = [p for p in points if _dominates(p, point)]
    by = min(dominating, key=lambda p: p['NMF'])['label'] \
        if dominating else None
    if by is not None:
        text = (f'dominated by {by} (NME {_get(points, by, "NME"):.4g} <= '
                f'{point["NME"]:.4g}, NMF {_get(points, by, "NMF"):.4g} <= '
                f'{point["NMF"]:.4g})')
    elif np.isfinite(gain):
        text = (f'NMF {100 * abs(gain):.1f}% '
                f'{"below" if gain >= 0 else "above"} the best causal filter '
                f'at the same NME (front NMF {front_nmf:.4g} at NME '
                f'{point["NME"]:.4g})')
    else:
        text = (f'more accurate than every causal filter (NME '
                f'{point["NME"]:.4g}, beyond {100 * tolerance:g}% of the '
                'front): not dominated')
    return dict(front_nmf=front_nmf, gain=gain, dominated_by=by, text=text)


#: Relative differences below this are ties (float noise of equal points).
_EPS = 1e-6


def _dominates(p: dict, q: dict) -> bool:
    """``p`` no worse than ``q`` in NME and NMF and better in one, beyond
    float noise (relative ``_EPS``)."""
    no_worse = all(p[k] <= q[k] * (1 + _EPS) for k in ('NME', 'NMF'))
    better = any(p[k] < q[k] * (1 - _EPS) for k in ('NME', 'NMF'))
    return no_worse and better


def _get(points, label, key):
    return next(p[key] for p in points if p['label'] == label)


def best_on_front(points: Sequence[dict],
                  raw_nme: float,
                  tolerance: float = NME_TOLERANCE) -> Optional[dict]:
    """The reports' "best" filter of a family: on the family's Pareto
    front, the point with the lowest NMF among those with
    NME <= raw NME × (1 + tolerance). ``None`` if no point qualifies."""
    front = [points[i] for i in pareto_front(points)]
    ok = [p for p in front if p['NME'] <= raw_nme * (1 + tolerance)]
    return min(ok, key=lambda p: p['NMF']) if ok else None


def scenario_summary(points: Sequence[dict],
                     tolerance: float = NME_TOLERANCE) -> Dict[str, dict]:
    """The report rows of one scenario: ``raw``, ``best <family>`` for each
    causal family present, ``refined``, and the refiner's standing.

    Returns:
        dict: ``rows`` (label -> point), ``standing``
        (:func:`compare_to_front` of the refined point against every causal
        filter point and raw), or ``None`` where there is no refined point.
    """
    raw = next((p for p in points if p['family'] == 'raw'), None)
    refined = next((p for p in points if p['family'] == 'refined'), None)
    rows = {}
    if raw is not None:
        rows['raw'] = raw
        for family in CAUSAL_FAMILIES:
            fam = [p for p in points if p['family'] == family]
            best = best_on_front(fam, raw['NME'], tolerance) if fam else None
            if best is not None:
                rows[f'best {family}'] = best
    if refined is not None:
        rows['refined'] = refined
    causal = [
        p for p in points if p['causal'] and p['family'] != 'refined'
    ]
    standing = compare_to_front(refined, causal, tolerance) \
        if refined is not None and causal else None
    return dict(rows=rows, standing=standing)


#: Report columns (each row a point).
REPORT_COLUMNS = ('NME', 'NMF', 'MAV', 'MAV_err')


def format_report(summaries: Dict[str, dict],
                  tolerance: float = NME_TOLERANCE) -> str:
    """The per-scenario table of the reports (tools/test.py, the demo,
    tools/analysis/pareto.py): rows raw / best One Euro / best Kalman /
    best EMA / refined, columns NME (a fraction, as VideoNME), NMF, MAV,
    MAV_err with the change against raw, then the refiner's standing.

    Args:
        summaries (dict): scenario -> :func:`scenario_summary` result
            (``ParetoSweep.summaries``).
    """
    width = 20
    lines = [
        '"best" filter of a family: on its Pareto front (NME, NMF), the '
        f'lowest NMF with NME <= raw NME x {1 + tolerance:g}'
    ]
    for scenario, summary in summaries.items():
        rows = summary['rows']
        if not rows:
            continue
        raw = rows.get('raw', {})
        lines.append('')
        lines.append(f'{scenario:<44}' + ''.join(
            f'{c:>{width}}' for c in REPORT_COLUMNS))
        for name, point in rows.items():
            label = name if name in ('raw', 'refined') else \
                f'{name} ({_short(point)})'
            cells = []
            for col in REPORT_COLUMNS:
                v = point.get(col)
                if v is None or not np.isfinite(v):
                    cells.append(f'{"-":>{width}}')
                    continue
                cell = f'{v:.4g}'
                if name != 'raw' and raw.get(col):
                    cell += f' ({100 * (v / raw[col] - 1):+.0f}%)'
                cells.append(f'{cell:>{width}}')
            lines.append(f'  {label:<42}' + ''.join(cells))
        if summary.get('standing'):
            lines.append(f'  refined: {summary["standing"]["text"]}')
    return '\n'.join(lines)


def _short(point: dict) -> str:
    return ', '.join(f'{k}={v:g}' for k, v in point.get('params', {}).items())


def add_pareto_sweep(cfg, out_file: Optional[str] = None,
                     only: bool = False, **sweep_args) -> None:
    """Make a test config compute the Pareto sweep (in place).

    Adds a :class:`~mmstable.evaluation.metrics.ParetoSweep` (raw =
    ``raw_keypoints``) to ``cfg.test_evaluator`` unless one is there, sets
    its ``out_file``, and switches on the model's ``test_cfg.output_raw``.

    Args:
        cfg (mmengine.Config): a test config (its model must be a
            ``StableTopdownPoseEstimator``: raw and refined landmarks).
        out_file (str, optional): JSON of points and summaries.
        only (bool): drop the other test metrics (a sweep-only run).
        **sweep_args: other ParetoSweep arguments (``grids``...).
    """
    evaluator = cfg.get('test_evaluator', [])
    metrics = list(evaluator if isinstance(evaluator, (list, tuple)) else
                   evaluator.get('metrics', [evaluator]) if
                   evaluator.get('type', 'Evaluator') == 'Evaluator' else
                   [evaluator])
    sweeps = [m for m in metrics if m.get('type') == 'ParetoSweep']
    if not sweeps:
        sweeps = [dict(type='ParetoSweep',
                       extra_pred_keys=dict(Raw='raw_keypoints'))]
        metrics.append(sweeps[0])
    for sweep in sweeps:
        sweep.update(sweep_args)
        if out_file:
            sweep['out_file'] = out_file
    cfg.test_evaluator = sweeps if only else metrics
    if cfg.model.get('type') != 'StableTopdownPoseEstimator':
        raise ValueError(
            'The Pareto sweep compares raw and refined landmarks: expected '
            "model.type='StableTopdownPoseEstimator' (a refiner config), "
            f'found {cfg.model.get("type")!r}; use the refiner config with '
            'the image model checkpoint, or a refiner checkpoint')
    cfg.model.setdefault('test_cfg', {})
    cfg.model.test_cfg['output_raw'] = True


def claim_checks(summaries: Dict[str, dict],
                 goal: float = 0.2,
                 tolerance: float = NME_TOLERANCE) -> List[str]:
    """The demo's acceptance, one line per check, each ``PASS`` / ``FAIL``:

    - every scenario: the refined point is not dominated by a causal filter;
    - every scenario: refined NME <= raw NME × (1 + ``tolerance``);
    - every ``moving_*`` / ``fast_*`` scenario with jittered boxes: refined
      NMF below the causal front at the same NME (``goal``: by >= 20 %).
    """
    lines = []
    for scenario, summary in summaries.items():
        if scenario == 'all':
            continue
        rows, standing = summary['rows'], summary.get('standing')
        if 'refined' not in rows or 'raw' not in rows or standing is None:
            continue
        ref, raw = rows['refined'], rows['raw']
        ok = standing['dominated_by'] is None
        lines.append(f'{"PASS" if ok else "FAIL"} {scenario}: refined not '
                     'dominated by a causal filter' +
                     ('' if ok else f' ({standing["text"]})'))
        ok = ref['NME'] <= raw['NME'] * (1 + tolerance)
        lines.append(f'{"PASS" if ok else "FAIL"} {scenario}: refined NME '
                     f'{ref["NME"]:.4g} <= raw {raw["NME"]:.4g} + '
                     f'{100 * tolerance:g}%')
        if scenario.endswith('_jittered') and scenario.split('_')[0] in (
                'moving', 'fast'):
            gain = standing['gain']
            if not np.isfinite(gain):
                lines.append(f'N/A  {scenario}: no causal filter reaches the '
                             'refined NME (within the tolerance)')
                continue
            lines.append(
                f'{"PASS" if gain > 0 else "FAIL"} {scenario}: refined NMF '
                f'{100 * abs(gain):.1f}% {"below" if gain >= 0 else "above"}'
                ' the causal front at equal NME (goal: >= '
                f'{100 * goal:g}% below: '
                f'{"met" if gain >= goal else "not met"})')
    return lines
