"""Test a model on whole videos, with stability and Pareto reports.

    python tools/test.py CONFIG CHECKPOINT [MMPose's flags] [--plots DIR]
        [--pareto DIR]

MMPose's own flags (``--work-dir``, ``--out`` metrics JSON, ``--dump``,
``--cfg-options``, ``--launcher``…) are parsed by MMPose's ``tools/test.py``.
Video test sets are evaluated as whole videos in frame order (the config's
``VideoSampler``; the refiner's state is reset per video, see
docs/conventions.md §1). At the end a table of NME / NMF / MCV / MAV is
printed per scenario and per source (raw = the frozen model, its filtered
version, refined) with the change of each against raw; ``--plots DIR``
writes trajectory and Allan-deviation PNGs (:class:`mmstable.engine.hooks.
TrajectoryPlotHook`). With a ``ParetoSweep`` in the test evaluator (the demo
config), or ``--pareto DIR`` to add one, it also prints per scenario (preset
and box mode) raw / best One Euro / best Kalman / best EMA / refined (NME,
NMF, MAV, MAV_err) and where the refiner stands against the causal filters'
Pareto front; ``--pareto DIR`` writes ``pareto.json`` and ``pareto.png``
there (:mod:`mmstable.evaluation.pareto`).
"""
import argparse
import os.path as osp
import re
import sys

import mmengine
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import mmstable  # noqa: E402,F401
from mmstable.evaluation import (ParetoSweep, add_pareto_sweep,  # noqa: E402
                                 format_report)
from mmstable.utils import (CheckpointError,  # noqa: E402
                            CheckpointMismatchError, allow_partial_load,
                            install_checkpoint_fit_check)
from mmstable.utils.mmpose_tools import load_mmpose_tool  # noqa: E402
from mmstable.visualization import plot_pareto  # noqa: E402

COLUMNS = ('NME', 'NMF', 'MCV', 'MAV', 'MAV_err')


def parse_own_args(argv):
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('--plots', metavar='DIR',
                        help='write trajectory / Allan-deviation PNGs here')
    parser.add_argument('--pareto', metavar='DIR',
                        help='filter sweep on the raw landmarks: write '
                        'pareto.json and pareto.png here')
    return parser.parse_known_args(argv)


def stability_table(metrics: dict, scenarios=(), sources=('Raw', )) -> str:
    """Rows ``[scenario/]source``, columns NME / NMF / MCV / MAV / MAV_err,
    and the change of every source against ``Raw`` of the same scenario.
    A key's first part is a scenario if it is in ``scenarios`` or looks like
    300VW's ``S1``; then a source of ``sources`` (the metrics'
    ``extra_pred_keys``), else a filter of the main (refined) prediction:
    ``Refined/MediaPipe``. ``pareto/`` keys are left to the Pareto report."""
    rows = {}
    for key, value in metrics.items():
        *prefix, name = key.split('/')
        if name not in COLUMNS or (prefix and prefix[0] == 'pareto'):
            continue
        scenario = prefix.pop(0) if prefix and (
            prefix[0] in scenarios
            or re.fullmatch(r'S\d+', prefix[0])) else ''
        if prefix and prefix[0] not in sources:
            prefix.insert(0, 'Refined')  # a filter on the main prediction
        source = '/'.join(prefix) or 'Refined'
        rows.setdefault((scenario, source), {})[name] = value
    if not rows:
        return ''
    lines = [f'{"source":<34}' + ''.join(f'{c:>18}' for c in COLUMNS)]
    for (scenario, source), vals in sorted(rows.items()):
        raw = rows.get((scenario, 'Raw'), {})
        cells = []
        for col in COLUMNS:
            if col not in vals:
                cells.append(f'{"-":>18}')
                continue
            cell = f'{vals[col]:.4g}'
            if source != 'Raw' and raw.get(col):
                cell += f' ({100 * (vals[col] / raw[col] - 1):+.0f}%)'
            cells.append(f'{cell:>18}')
        label = f'{scenario}/{source}' if scenario else source
        lines.append(f'{label:<34}' + ''.join(cells))
    return '\n'.join(lines)


class _SaveMetrics(Hook):
    """MMPose's ``--out``: dump the metrics as JSON after the test epoch."""

    def __init__(self, out):
        self.out = out

    def after_test_epoch(self, runner, metrics=None):
        if metrics is not None:
            mmengine.dump(metrics, self.out)


def main(argv=None):
    own, rest = parse_own_args(sys.argv[1:] if argv is None else argv)
    mmpose_test = load_mmpose_tool('test')
    sys.argv = [sys.argv[0], *rest]
    args = mmpose_test.parse_args()
    cfg = mmpose_test.merge_args(Config.fromfile(args.config), args)
    if own.plots:
        cfg.custom_hooks = [
            *cfg.get('custom_hooks', []),
            dict(type='TrajectoryPlotHook', out_dir=own.plots)
        ]
    if own.pareto:
        add_pareto_sweep(cfg, out_file=osp.join(own.pareto, 'pareto.json'))
    runner = Runner.from_cfg(cfg)
    if args.out:
        runner.register_hook(_SaveMetrics(args.out), 'LOWEST')
    # a checkpoint that does not fit the model is an error, unless the config
    # says allow_partial_load=True; checkpoint errors: one line, exit 1
    install_checkpoint_fit_check(runner.model)
    try:
        with allow_partial_load(cfg.get('allow_partial_load', False)):
            metrics = runner.test()
    except CheckpointError as e:
        where = f'{cfg.load_from}: ' if isinstance(
            e, CheckpointMismatchError) else ''  # the others name the file
        sys.exit(f'tools/test.py: error: {where}{e}')
    if runner.rank != 0:
        return metrics
    scenarios = {s for m in runner.test_evaluator.metrics
                 for s in getattr(m, 'scenarios', ())}
    sources = {s for m in runner.test_evaluator.metrics
               for s in getattr(m, 'extra_pred_keys', {})}
    table = stability_table(metrics, scenarios, sources)
    if table:
        print('\n' + table)
    for metric in runner.test_evaluator.metrics:
        if isinstance(metric, ParetoSweep):
            print('\n' + format_report(metric.summaries))
            if own.pareto:
                png = plot_pareto(metric.points,
                                  osp.join(own.pareto, 'pareto.png'),
                                  metric.summaries,
                                  title=osp.basename(args.config))
                print(f'Pareto points: {metric.out_file}; plot: {png}')
    return metrics



if __name__ == '__main__':
    main()
