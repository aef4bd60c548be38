"""Two refiners on the same frozen model, and a refiner's ablation, as text
tables (issue 14: ConvLSTM vs REDnet; ``tools/demo.py``,
``tools/analysis/rednet_ablation.py``). Pure functions of the report JSONs:
``ParetoSweep`` summaries (``pareto.json``'s ``summaries``) and the metrics
dict of ``tools/test.py --out`` (keys ``[scenario/][Raw/]NAME``,
docs/conventions.md §4)."""
from typing import Dict, Sequence

import numpy as np

__all__ = ['REFINER_COLUMNS', 'refiner_table', 'ablation_table']

#: Columns of both tables (NME a fraction, NMF as LDEQ, MAV / MAV_err px²).
REFINER_COLUMNS = ('NME', 'NMF', 'MAV', 'MAV_err')


def _cell(value, raw=None) -> str:
    if value is None or not np.isfinite(value):
        return '-'
    cell = f'{value:.4g}'
    if raw:
        cell += f' ({100 * (value / raw - 1):+.0f}%)'
    return cell


def refiner_table(summaries: Dict[str, Dict[str, dict]],
                  columns: Sequence[str] = REFINER_COLUMNS) -> str:
    """Per scenario: raw, then each refiner's ``refined`` row (change
    against raw in brackets) and its standing against the causal filters.

    Args:
        summaries (dict): refiner label (``'ConvLSTM'``) -> ``ParetoSweep``
            summaries (scenario -> ``rows`` / ``standing``) of a test run of
            that refiner on the same frozen model and test set.
        columns (Sequence[str]): point keys to show.

    Returns:
        str: the table, one block per scenario of the first refiner.
    """
    if not summaries:
        raise ValueError('refiner_table: expected at least one refiner, got '
                         'none')
    width = 20
    first = next(iter(summaries.values()))
    lines = [f'{"":<30}' + ''.join(f'{c:>{width}}' for c in columns)]
    for scenario in first:
        raw = first[scenario]['rows'].get('raw', {})
        lines.append(scenario)
        lines.append(f'  {"raw":<28}' + ''.join(
            f'{_cell(raw.get(c)):>{width}}' for c in columns))
        for label, summary in summaries.items():
            entry = summary.get(scenario)
            point = entry['rows'].get('refined') if entry else None
            if point is None:
                lines.append(f'  {label:<28}' + f'{"-":>{width}}' *
                             len(columns))
                continue
            lines.append(f'  {label:<28}' + ''.join(
                f'{_cell(point.get(c), raw.get(c)):>{width}}'
                for c in columns))
            standing = entry.get('standing')
            if standing:
                lines.append(f'    {label}: {standing["text"]}')
    return '\n'.join(lines)


def ablation_table(results: Dict[str, dict],
                   scenarios: Sequence[str] = ('all', 'moving_jittered',
                                               'fast_jittered'),
                   columns: Sequence[str] = REFINER_COLUMNS) -> str:
    """One row per setting, one column group per scenario; first row the
    frozen model's own landmarks (``Raw/``) of the first setting's run.

    Args:
        results (dict): setting label -> metrics dict of ``tools/test.py
            --out`` (``'NME'``, ``'moving_jittered/NMF'``,
            ``'Raw/MAV'``, ...); ``'all'`` = the pooled keys.
        scenarios (Sequence[str]): scenario names, or ``'all'``.
        columns (Sequence[str]): metric names.

    Returns:
        str: the table; a missing metric shows as ``-``.
    """
    if not results:
        raise ValueError('ablation_table: expected at least one setting, '
                         'got none')
    width = 11

    def key(scenario, source, col):
        prefix = '' if scenario == 'all' else f'{scenario}/'
        return f'{prefix}{source}{col}'

    header = f'{"":<34}' + ''.join(
        f'{s:^{width * len(columns)}}' for s in scenarios)
    sub = f'{"setting":<34}' + ''.join(
        f'{c:>{width}}' for _ in scenarios for c in columns)
    lines = [header, sub]
    rows = [('raw (frozen model)', next(iter(results.values())), 'Raw/')]
    rows += [(label, metrics, '') for label, metrics in results.items()]
    for label, metrics, source in rows:
        cells = [
            _cell(metrics.get(key(s, source, c))) for s in scenarios
            for c in columns
        ]
        lines.append(f'{label:<34}' + ''.join(f'{c:>{width}}'
                                              for c in cells))
    return '\n'.join(lines)
