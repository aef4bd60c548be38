"""REDnet's ablation (issue 14) on the demo data, one command.

    python tools/analysis/rednet_ablation.py [--image-model CKPT]
        [--work-dir work_dirs/rednet_ablation] [--iters 120]
        [--scenarios all moving_jittered fast_jittered]

For each switch setting of ``configs/demo/synthetic_rednet.py`` (identity
loss on/off, spatial-feedback passes 1/2/3, temporal recurrence on/off; one
switch changed at a time from the demo's setting) it trains the refiner on
the frozen demo image model (``tools/train.py``, ``--iters`` iterations) and
tests it on the held-out synthetic videos (``tools/test.py --out``), then
prints one table (NME, NMF, MAV, MAV_err per scenario, ``all`` = pooled;
first row the frozen model's own landmarks) with
:func:`mmstable.evaluation.refiner_comparison.ablation_table`.
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
from mmstable.datasets.synthetic.generator import \
    demo_refiner_data_options  # noqa: E402

CONFIG = 'configs/demo/synthetic_rednet.py'
#: label -> model.head overrides (the demo's setting: identity loss on,
#: n_iters=2, temporal on)
SETTINGS = {
    'demo (identity, 2 passes, temporal)': {},
    'identity loss off': dict(identity_loss_weight=0.),
    'n_iters=1 (no feedback)': dict(n_iters=1),
    'n_iters=3': dict(n_iters=3),
    'temporal off': dict(temporal=False),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--image-model',
                        default='work_dirs/demo/image_model/epoch_6.pth',
                        help='the frozen demo image model (tools/demo.py '
                        'stage 2)')
    parser.add_argument('--work-dir', default='work_dirs/rednet_ablation')
    parser.add_argument('--data-root', default='data/synthetic')
    parser.add_argument('--iters', type=int, default=120,
                        help='training iterations per setting (batch 4)')
    parser.add_argument('--scenarios', nargs='+',
                        default=['all', 'moving_jittered', 'fast_jittered'])
    parser.add_argument('--only', nargs='*', default=None,
                        choices=list(SETTINGS),
                        help='run these settings only')
    return parser.parse_args(argv)


def run(cmd, env):
    print('\n$ ' + ' '.join(cmd), flush=True)
    subprocess.run(cmd, cwd=ROOT, env=env, check=True)


def main(argv=None):
    args = parse_args(argv)
    if not osp.isfile(osp.join(ROOT, args.image_model)):
        raise FileNotFoundError(
            f'rednet_ablation: no image model at {args.image_model}; run '
            'tools/demo.py first or pass --image-model')
    if args.iters < 1:
        raise ValueError(f'rednet_ablation: --iters must be >= 1, got '
                         f'{args.iters}')
    env = dict(os.environ)
    env.setdefault('OMP_NUM_THREADS', '1')
    env.setdefault('MPLBACKEND', 'Agg')
    py, results, times = sys.executable, {}, {}
    for i, (label, head) in enumerate(SETTINGS.items()):
        if args.only is not None and label not in args.only:
            continue
        wd = osp.join(args.work_dir, f'setting{i}')
        opts = [f'model.head.{k}={v}' for k, v in head.items()]
        t0 = time.time()
        run([
            py, 'tools/train.py', CONFIG, '--work-dir', f'{wd}/train',
            '--no-validate', '--cfg-options', f'load_from={args.image_model}',
            # the pseudo-clips (dataset 0 of the ConcatDataset) set the length
            f'train_dataloader.dataset.datasets.0.dataset.indices='
            f'{4 * args.iters}', *demo_refiner_data_options(args.data_root),
            *opts
        ], env)
        with open(osp.join(ROOT, wd, 'train', 'last_checkpoint')) as f:
            ckpt = f.read().strip()
        out = f'{wd}/metrics.json'
        run([
            py, 'tools/test.py', CONFIG, ckpt, '--work-dir', f'{wd}/test',
            '--out', out, '--cfg-options',
            f'test_dataloader.dataset.data_root={args.data_root}', *opts
        ], env)
        with open(osp.join(ROOT, out)) as f:
            results[label] = json.load(f)
        times[label] = time.time() - t0

    from mmstable.evaluation.refiner_comparison import ablation_table
    print(f'\nREDnet ablation ({CONFIG}, {args.iters} iterations each, '
          'frozen demo image model; NME a fraction, NMF as LDEQ, MAV / '
          'MAV_err px²):')
    print(ablation_table(results, args.scenarios))
    print('times: ' + ', '.join(f'{k} {v:.0f}s' for k, v in times.items()))


if __name__ == '__main__':
    main()
