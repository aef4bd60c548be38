"""Issue 10's "Why" table for a checkpoint: one 120-frame synthetic video
(seed key (777, 5, 0), 256², noise 1), still head with exact and
centre-jittered (σ 2 / 4 px) boxes, moving head with exact boxes; raw vs
refined NME (% of the outer-eye-corner distance) and NMF, streamed frame by
frame (:mod:`mmstable.evaluation.box_jitter_table`).

    python tools/analysis/box_jitter_table.py CONFIG CHECKPOINT [--frames N]
        [--lag] [--cfg-options model.head.KEY=VALUE ...]
"""
import argparse
import os.path as osp
import sys

from mmengine.config import DictAction

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))
from mmstable.apis import init_model  # noqa: E402
from mmstable.evaluation.box_jitter_table import (  # noqa: E402
    box_jitter_table, format_box_jitter_table, format_moving_head_lag,
    moving_head_lag)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--frames', type=int, default=120)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--lag', action='store_true',
                        help='also the moving head\'s lag analysis')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        default={}, help='config overrides (e.g. a test-time '
                        'option of the refiner)')
    args = parser.parse_args(argv)
    if args.frames < 2:
        parser.error(f'--frames must be >= 2, got {args.frames}')
    model = init_model(args.config, args.checkpoint, device=args.device,
                       cfg_options=args.cfg_options or None)
    rows = box_jitter_table(model, num_frames=args.frames)
    print(format_box_jitter_table(rows))
    if args.lag:
        print()
        print(format_moving_head_lag(
            moving_head_lag(model, num_frames=args.frames)))
    return rows


if __name__ == '__main__':
    main()
