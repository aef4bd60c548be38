"""The main job end to end, offline, on the embedded synthetic face videos.

    python tools/demo.py [--work-dir work_dirs/demo] [--data-root data/synthetic]

Runs the same commands a user runs on real data, printing each:

1. ``tools/dataset_converters/make_synthetic_faces.py``: synthetic face videos
   (68 landmarks, 300W layout; train / val / test splits, deterministic);
2. ``tools/train.py configs/demo/synthetic_image_model.py``: an ordinary
   MMPose image model, MMPose's stock recipe, on the training frames;
3. ``tools/train.py configs/demo/synthetic_jitter.py``: freeze it and
   fine-tune the refiner (ConvLSTM with the Jitter loss, then the learnt
   adaptive Kalman filter on the landmarks) on pseudo-clips of the training
   images and on clips of training videos (new identities, the four motion
   presets, detector-like boxes: ``--clip-videos`` of step 1);
4. ``tools/test.py configs/demo/synthetic_jitter.py``: held-out videos in
   frame order, four motions (still / talking / moving / fast) each cropped
   with exact and with jittered (detector-like) boxes; raw vs refined vs the
   raw landmarks through grids of One Euro / Kalman / EMA filters: per
   scenario raw / best One Euro / best Kalman / refined (NME, NMF, MAV,
   MAV_err), the NMF-vs-NME Pareto plot, and the checks of the refiner
   against the causal filters; metrics JSON and plots under
   ``<work-dir>/test``;
5. the same two steps with ``configs/demo/synthetic_rednet.py``: seed 003's
   REDnet (``DecoupledRecurrentRefineHead``) as a second refiner on the same
   frozen image model; a per-scenario table of both refiners side by side,
   REDnet's Pareto JSON / plot under ``<work-dir>/test_rednet/pareto``.
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)


def run(cmd, env):
    print('\n$ ' + ' '.join(cmd), flush=True)
    t0 = time.time()
    subprocess.run(cmd, cwd=ROOT, env=env, check=True)
    return time.time() - t0


def last_checkpoint(work_dir):
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


from mmstable.datasets.synthetic.generator import \
    demo_refiner_data_options  # noqa: E402


def summary(metrics: dict) -> str:
    sources = [('raw (frozen image model)', 'Raw/'),
               ('raw + One Euro (MediaPipe)', 'Raw/MediaPipe/'),
               ('refined (ConvLSTM + Jitter loss)', '')]
    cols = ('NME', 'NMF', 'MCV', 'MAV', 'MAV_err')
    lines = [f'{"all held-out synthetic videos":<34}' +
             ''.join(f'{c:>16}' for c in cols)]
    for label, prefix in sources:
        cells = []
        for c in cols:
            v, raw = metrics.get(prefix + c), metrics.get('Raw/' + c)
            cell = '-' if v is None else f'{v:.4g}'
            if v is not None and raw and prefix != 'Raw/':
                cell += f' ({100 * (v / raw - 1):+.0f}%)'
            cells.append(f'{cell:>16}')
        lines.append(f'{label:<34}' + ''.join(cells))
    return '\n'.join(lines)


def pareto_summary(pareto_file: str) -> str:
    """Per preset and box mode: raw / best One Euro / best Kalman / best
    EMA / refined, and the checks of the refiner against the causal filters
    (from ``ParetoSweep``'s JSON)."""
    from mmstable.evaluation.pareto import claim_checks, format_report
    with open(pareto_file) as f:
        summaries = json.load(f)['summaries']
    return '\n'.join([
        'per preset and box mode (NME a fraction, NMF as LDEQ):',
        format_report(summaries), '', 'refiner vs causal filters:',
        *claim_checks(summaries)
    ])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--data-root', default='data/synthetic')
    args = parser.parse_args(argv)
    env = dict(os.environ)
    # 2 CPU cores: one intra-op thread per process leaves the other core to
    # the data workers (OpenMP threads spinning against them cost ~4x).
    env.setdefault('OMP_NUM_THREADS', '1')
    env.setdefault('MPLBACKEND', 'Agg')
    py, wd = sys.executable, args.work_dir
    t0, times = time.time(), {}

    times['data'] = run([
        py, 'tools/dataset_converters/make_synthetic_faces.py', '--out',
        args.data_root, '--clip-videos', '10', '--clip-frames', '48'
    ], env)
    data_opt = [f'train_dataloader.dataset.data_root={args.data_root}']
    times['image model'] = run([
        py, 'tools/train.py', 'configs/demo/synthetic_image_model.py',
        '--work-dir', f'{wd}/image_model', '--cfg-options', *data_opt,
        f'val_dataloader.dataset.data_root={args.data_root}'
    ], env)
    image_ckpt = last_checkpoint(f'{wd}/image_model')
    times['refiner'] = run([
        py, 'tools/train.py', 'configs/demo/synthetic_jitter.py',
        '--work-dir', f'{wd}/refiner', '--no-validate', '--cfg-options',
        f'load_from={image_ckpt}',
        *demo_refiner_data_options(args.data_root)
    ], env)
    refiner_ckpt = last_checkpoint(f'{wd}/refiner')
    metrics_file = f'{wd}/test/metrics.json'
    times['test'] = run([
        py, 'tools/test.py', 'configs/demo/synthetic_jitter.py',
        refiner_ckpt, '--work-dir', f'{wd}/test', '--out', metrics_file,
        '--plots', f'{wd}/test/plots', '--pareto', f'{wd}/test/pareto',
        '--cfg-options',
        f'test_dataloader.dataset.data_root={args.data_root}'
    ], env)

    # 5. REDnet (issue 14): same frozen model, data and test harness
    times['rednet'] = run([
        py, 'tools/train.py', 'configs/demo/synthetic_rednet.py',
        '--work-dir', f'{wd}/rednet', '--no-validate', '--cfg-options',
        f'load_from={image_ckpt}',
        *demo_refiner_data_options(args.data_root)
    ], env)
    times['rednet test'] = run([
        py, 'tools/test.py', 'configs/demo/synthetic_rednet.py',
        last_checkpoint(f'{wd}/rednet'), '--work-dir', f'{wd}/test_rednet',
        '--out', f'{wd}/test_rednet/metrics.json', '--pareto',
        f'{wd}/test_rednet/pareto', '--cfg-options',
        f'test_dataloader.dataset.data_root={args.data_root}'
    ], env)

    with open(osp.join(ROOT, metrics_file)) as f:
        metrics = json.load(f)
    print('\n' + summary(metrics))
    pareto_file = osp.join(ROOT, wd, 'test', 'pareto', 'pareto.json')
    if osp.isfile(pareto_file):
        print('\n' + pareto_summary(pareto_file))
    rednet_file = osp.join(ROOT, wd, 'test_rednet', 'pareto', 'pareto.json')
    if osp.isfile(pareto_file) and osp.isfile(rednet_file):
        from mmstable.evaluation.refiner_comparison import refiner_table
        tables = {}
        for label, path in (('ConvLSTM', pareto_file),
                            ('REDnet', rednet_file)):
            with open(path) as f:
                tables[label] = json.load(f)['summaries']
        print('\nthe two refiners on the same frozen model (ConvLSTM: '
              'configs/demo/synthetic_jitter.py, REDnet: configs/demo/'
              'synthetic_rednet.py):\n' + refiner_table(tables))
    print('stage times: ' + ', '.join(f'{k} {v:.0f}s'
                                      for k, v in times.items()) +
          f'; total {time.time() - t0:.0f}s')
    print(f'metrics: {metrics_file}; plots: {wd}/test/plots; Pareto plot: '
          f'{wd}/test/pareto/pareto.png')


if __name__ == '__main__':
    main()
