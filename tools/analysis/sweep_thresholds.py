"""Sweep Θ and Θ_PDC on the demo data (Sun et al., tables 3 and 4).

    python tools/analysis/sweep_thresholds.py IMAGE_CKPT \\
        [--param theta pdc] [--thetas 0 0.5 1 1.5 2] \\
        [--pdc-thresholds 0 0.1 0.2 0.4 0.6] [--pdc-mode retest|retrain] \\
        [--config configs/demo/synthetic_jitter.py] [--work-dir DIR] \\
        [--cfg-options ...] [--dry-run]

``IMAGE_CKPT`` is the frozen image model (stage 1 of ``tools/demo.py``,
e.g. ``work_dirs/demo/image_model/epoch_6.pth``); it becomes ``load_from``.
Every run is the user's own commands, each in a fresh process:
``tools/train.py CONFIG --cfg-options load_from=IMAGE_CKPT <value>`` then
``tools/test.py CONFIG CKPT --out metrics.json``, one work dir per value.

- Θ (``JitterLoss.jitter_threshold``, docs/conventions.md §3, table 3):
  one fine-tune and test per value.
- Θ_PDC (``PDCCodec.pdc_threshold``, table 4) with ``--pdc-mode retest``
  (default): Θ_PDC only changes how heatmaps are decoded at test time, so
  *one* fine-tuned model (at the config's own Θ_PDC; the Θ run at the
  config's Θ is reused when the Θ sweep ran) is tested once per value with
  ``model.head.decoder.pdc_threshold`` (and, for consistency of the dumped
  config, the loss's ``pdc_threshold``; the loss is not used in testing).
  This isolates the decoder. ``--pdc-mode retrain`` also fine-tunes per
  value, with the loss's ``pdc_threshold`` (the PDC landmarks ``u_t`` of
  eq. 6) set to it as well: the paper's setting if Θ_PDC is taken to shape
  training too; 5 fine-tunes instead of 1.

Table columns: NME in percent (MMPose's metrics report a fraction; 300VW
calls it NRMSE), MCV (%), MAV (px²), and the products NME×MCV and NME×MAV
with NME in percent, for the refined model and for the frozen model
(``Raw/`` keys of the same runs; PDC decodes those too, so they change with
Θ_PDC, not with Θ). Tables and the per-value metrics are also written to
``<work-dir>/sweep_<param>.json``.
"""
import argparse
import inspect
import json
import os
import os.path as osp
import subprocess
import sys
from typing import Dict, List, Optional, Sequence

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)  # mmstable, as tools/train.py does
DEFAULT_CONFIG = 'configs/demo/synthetic_jitter.py'

#: param -> (paper symbol, config keys it sets, paper's values)
PARAMS = {
    'theta': ('Θ', ('model.head.loss.jitter_threshold', ),
              (0, 0.5, 1, 1.5, 2)),
    'pdc': ('Θ_PDC', ('model.head.decoder.pdc_threshold',
                      'model.head.loss.pdc_threshold'),
            (0, 0.1, 0.2, 0.4, 0.6)),
}
METRICS = ('NME', 'MCV', 'MAV')
COLUMNS = ('NME(%)', 'MCV', 'MAV', 'NME×MCV', 'NME×MAV')


# ------------------------------------------------------------------ tables
def table_rows(results: Dict[float, dict], source: str = '') -> List[dict]:
    """One row per swept value from its test metrics.

    Args:
        results: swept value -> metrics dict of ``tools/test.py --out``
            (keys ``NME``, ``MCV``, ``MAV`` for the refined model,
            ``Raw/NME``... for the frozen one).
        source: key prefix, ``''`` (refined) or ``'Raw'``.

    Returns:
        list[dict]: ``value`` and the :data:`COLUMNS` (``None`` where a
        metric is missing), sorted by value.
    """
    prefix = f'{source}/' if source else ''
    rows = []
    for value in sorted(results):
        m = {k: results[value].get(prefix + k) for k in METRICS}
        nme = None if m['NME'] is None else 100 * m['NME']
        rows.append({
            'value': value,
            'NME(%)': nme,
            'MCV': m['MCV'],
            'MAV': m['MAV'],
            'NME×MCV': _product(nme, m['MCV']),
            'NME×MAV': _product(nme, m['MAV']),
        })
    return rows


def _product(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return None if a is None or b is None else a * b


def format_table(symbol: str, rows: Sequence[dict], title: str = '') -> str:
    """Rows of :func:`table_rows` as text, best value of each column
    marked with ``*`` (all columns: lower is better)."""
    best = {
        c: min((r[c] for r in rows if r[c] is not None), default=None)
        for c in COLUMNS
    }
    lines = [title] if title else []
    lines.append(f'{symbol:>8}' + ''.join(f'{c:>12}' for c in COLUMNS))
    for row in rows:
        cells = []
        for c in COLUMNS:
            v = row[c]
            cell = '-' if v is None else f'{v:.4g}' + (
                '*' if v == best[c] else ' ')
            cells.append(f'{cell:>12}')
        lines.append(f'{row["value"]:>8g}' + ''.join(cells))
    return '\n'.join(lines)


def load_results(paths: Dict[float, str]) -> Dict[float, dict]:
    """Swept value -> metrics of the ``--out`` JSON files."""
    results = {}
    for value, path in paths.items():
        with open(path) as f:
            results[value] = json.load(f)
    return results


def report(param: str, results: Dict[float, dict]) -> dict:
    """The refined and raw tables of one sweep, as text and rows."""
    symbol = PARAMS[param][0]
    tables = {}
    for source, label in (('', 'refined (ConvLSTM + Jitter loss)'),
                          ('Raw', 'raw (frozen image model)')):
        rows = table_rows(results, source)
        tables[source or 'Refined'] = dict(
            rows=rows, text=format_table(symbol, rows, f'{symbol}: {label}'))
    return tables


# -------------------------------------------------------------------- runs
class Sweep:
    """Plans and runs the train / test commands of a sweep."""

    def __init__(self, args):
        self.args = args
        self.python = sys.executable
        self.env = dict(os.environ,
                        PYTHONPATH=os.pathsep.join(
                            p for p in (ROOT, os.environ.get('PYTHONPATH'))
                            if p))
        self.trained: Dict[tuple, str] = {}  # (key=value, ...) -> ckpt

    def _run(self, cmd: List[str]) -> None:
        print('\n$ ' + ' '.join(cmd), flush=True)
        if not self.args.dry_run:
            subprocess.run(cmd, cwd=ROOT, env=self.env, check=True)

    def _options(self, overrides: Dict[str, float]) -> List[str]:
        return [f'{k}={v}' for k, v in overrides.items()] + list(
            self.args.cfg_options or [])

    def finetune(self, name: str, overrides: Dict[str, float]) -> str:
        """Fine-tune with ``overrides`` (once per distinct setting); returns
        the checkpoint."""
        key = tuple(sorted(overrides.items()))
        if key in self.trained:
            return self.trained[key]
        work_dir = osp.join(self.args.work_dir, name)
        self._run([
            self.python, 'tools/train.py', self.args.config, '--work-dir',
            work_dir, '--cfg-options', f'load_from={self.args.image_ckpt}',
            f'randomness.seed={self.args.seed}', *self._options(overrides)
        ])
        ckpt_file = osp.join(work_dir, 'last_checkpoint')
        if self.args.dry_run:
            ckpt = osp.join(work_dir, 'epoch_N.pth')
        else:
            with open(ckpt_file) as f:
                ckpt = f.read().strip()
        self.trained[key] = ckpt
        return ckpt

    def test(self, name: str, ckpt: str, overrides: Dict[str, float]) -> str:
        work_dir = osp.join(self.args.work_dir, name)
        out = osp.join(work_dir, 'metrics.json')
        self._run([
            self.python, 'tools/test.py', self.args.config, ckpt,
            '--work-dir', osp.join(work_dir, 'test'), '--out', out,
            '--cfg-options', *self._options(overrides)
        ])
        return out

    def theta(self, values) -> Dict[float, str]:
        (key, ) = PARAMS['theta'][1]
        outs = {}
        for v in values:
            name = f'theta_{v:g}'
            ckpt = self.finetune(name, {key: v})
            outs[v] = self.test(name, ckpt, {key: v})
        return outs

    def pdc(self, values) -> Dict[float, str]:
        keys = PARAMS['pdc'][1]
        outs = {}
        if self.args.pdc_mode == 'retest':
            ckpt = self.finetune_default()
        for v in values:
            name = f'pdc_{v:g}'
            overrides = {k: v for k in keys}
            if self.args.pdc_mode == 'retrain':
                ckpt = self.finetune(name, overrides)
            outs[v] = self.test(name, ckpt, overrides)
        return outs

    def finetune_default(self) -> str:
        """The config's own Θ and Θ_PDC: the Θ run at the config's Θ when
        the Θ sweep trained one, else a fine-tune of its own."""
        from mmengine.config import Config

        from mmstable.models.losses import JitterLoss
        cfg = Config.fromfile(self.args.config)
        (key, ) = PARAMS['theta'][1]
        default = inspect.signature(JitterLoss).parameters[
            'jitter_threshold'].default
        theta = cfg.model.head.loss.get('jitter_threshold', default)
        if ((key, theta), ) in self.trained:
            return self.trained[((key, theta), )]
        return self.finetune('pdc_model', {})


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n', 2)[2])
    parser.add_argument('image_ckpt', help='checkpoint of the image model '
                        '(load_from of the fine-tunes)')
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    parser.add_argument('--work-dir', default='work_dirs/sweep_thresholds')
    parser.add_argument('--param', nargs='+', choices=sorted(PARAMS),
                        default=['theta', 'pdc'])
    parser.add_argument('--thetas', nargs='+', type=float,
                        default=[float(v) for v in PARAMS['theta'][2]])
    parser.add_argument('--pdc-thresholds', nargs='+', type=float,
                        default=[float(v) for v in PARAMS['pdc'][2]])
    parser.add_argument('--pdc-mode', choices=('retest', 'retrain'),
                        default='retest', help='see the module docstring')
    parser.add_argument('--seed', type=int, default=0,
                        help='randomness.seed of every fine-tune')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        help='more key=value overrides for every run')
    parser.add_argument('--dry-run', action='store_true',
                        help='print the commands, run nothing')
    args = parser.parse_args(argv)
    if not osp.isfile(args.config):  # relative to the repository
        args.config = osp.join(ROOT, args.config)
    args.config = osp.abspath(args.config)
    args.image_ckpt = osp.abspath(args.image_ckpt)
    args.work_dir = osp.abspath(args.work_dir)
    return args


def main(argv=None) -> Dict[str, dict]:
    args = parse_args(argv)
    sweep = Sweep(args)
    reports = {}
    for param in sorted(args.param, key=['theta', 'pdc'].index):
        values = args.thetas if param == 'theta' else args.pdc_thresholds
        outs = getattr(sweep, param)(values)
        if args.dry_run:
            continue
        reports[param] = report(param, load_results(outs))
        print()
        for table in reports[param].values():
            print(table['text'] + '\n')
        summary = osp.join(args.work_dir, f'sweep_{param}.json')
        with open(summary, 'w') as f:
            json.dump(dict(param=param, config_keys=PARAMS[param][1],
                           pdc_mode=args.pdc_mode if param == 'pdc' else None,
                           tables={k: v['rows']
                                   for k, v in reports[param].items()},
                           metrics_files=outs), f, indent=2)
        print(f'wrote {summary}')
    return reports


if __name__ == '__main__':
    main()
