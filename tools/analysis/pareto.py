"""Refiner against hand-tuned filters on the test videos: NMF vs NME.

    python tools/analysis/pareto.py CONFIG CHECKPOINT [--work-dir DIR]
        [--cfg-options KEY=VALUE ...]

One pass over the config's test videos (its test dataloader, its
``VideoSampler``: whole videos in frame order) gives the raw (frozen image
model) and refined landmarks; on the raw ones, in image space, grids of
causal filters (One Euro over (min_cutoff, beta), a constant-velocity Kalman
filter over noise ratios, EMA over alphas) and offline references
(Savitzky–Golay, Gaussian) are scored with NME, NMF, MAV and MAV_err per
scenario (:class:`mmstable.evaluation.ParetoSweep`, grids in
``mmstable.evaluation.pareto.DEFAULT_GRIDS``). Prints, per scenario, raw /
best One Euro / best Kalman / best EMA / refined and where the refiner
stands against the causal front; writes ``<work-dir>/pareto.json`` and the
plot ``<work-dir>/pareto.png``.

CHECKPOINT may be a refiner checkpoint or the image model's (an untrained
refiner returns the raw landmarks exactly). ``--tracker`` adds, per preset,
the videos cropped by the streaming tracker's own rule
(:class:`mmstable.apis.StableFaceTracker` with ``track_by='landmarks'``:
each frame's box is the previous frame's landmark box), frame by frame
(:func:`mmstable.evaluation.tracked_video_records`).
"""
import argparse
import os.path as osp
import sys

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))
import mmstable  # noqa: E402,F401
from mmstable.apis import init_model  # noqa: E402
from mmstable.evaluation import (ParetoSweep,  # noqa: E402
                                 tracked_video_records)
from mmstable.evaluation.pareto import (add_pareto_sweep,  # noqa: E402
                                        format_report)
from mmstable.visualization import plot_pareto  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--work-dir', default=None,
                        help='default work_dirs/pareto/<config name>')
    parser.add_argument('--tracker', action='store_true',
                        help="also crop each video with the streaming "
                        "tracker's rule (box of the previous frame's "
                        "landmarks): scenarios '<preset>_tracker'")
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        default={})
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    cfg.work_dir = args.work_dir or osp.join(
        'work_dirs', 'pareto',
        osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    out_json = osp.join(cfg.work_dir, 'pareto.json')
    add_pareto_sweep(cfg, out_file=out_json, only=True)
    runner = Runner.from_cfg(cfg)
    runner.test()
    if runner.rank != 0:
        return None
    sweep = next(m for m in runner.test_evaluator.metrics
                 if isinstance(m, ParetoSweep))
    if args.tracker:
        model = init_model(cfg, args.checkpoint, device='cpu')
        sweep.extend(
            tracked_video_records(model, runner.test_dataloader.dataset))
    print('\n' + format_report(sweep.summaries))
    png = plot_pareto(sweep.points, osp.join(cfg.work_dir, 'pareto.png'),
                      sweep.summaries, title=osp.basename(args.config))
    print(f'\npoints: {out_json}; plot: {png}')
    return sweep


if __name__ == '__main__':
    main()
