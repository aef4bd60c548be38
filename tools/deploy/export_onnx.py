"""Export a face model's streaming step (refiner state in and out) to ONNX.

    python tools/deploy/export_onnx.py CONFIG CKPT OUT.onnx
        [--cfg-options KEY=VALUE ...] [--verify-frames 100]

One stateful step as a graph (:class:`mmstable.deploy.StatefulStep`): the
face crop (N, 3, h, w) float BGR 0..255, its image → input affine (N, 3, 3)
and the tracks' state in; landmarks in crop pixels with scores (PDC in the
graph; refined and through the keypoint stage for an mmstable model), the
frozen model's raw landmarks and the new state out. Dynamic batch N. A
plain MMPose model (no refiner) exports with the same interface and no
state; its decoder must be ``PDCCodec`` (``--cfg-options
model.head.decoder.type=PDCCodec``). Flip test is switched off (one view per
state). ``--verify-frames N`` then tracks a synthetic N-frame clip with the
torch model and with ONNX Runtime (:mod:`mmstable.deploy.verify`) and prints
the largest landmark difference.

Run it with mmstable.apis (``init_model('OUT.onnx')`` +
``StableFaceTracker``), or from plain numpy + onnxruntime (README, Deploy).
"""
import argparse
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint', help="weights ('none': random)")
    parser.add_argument('out', help='the .onnx file to write')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        default={})
    parser.add_argument('--verify-frames', type=int, default=0,
                        help='compare torch and ONNX Runtime on a synthetic '
                        'clip of this many frames (0: skip)')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    from mmstable.apis import init_model
    from mmstable.deploy import export_onnx
    from mmstable.utils.safe_paths import check_no_overwrite

    if not args.out.endswith('.onnx'):
        raise SystemExit(f'export_onnx.py: error: OUT must end in .onnx, got '
                         f'{args.out}')
    ckpt = None if args.checkpoint.lower() == 'none' else args.checkpoint
    check_no_overwrite({'OUT': args.out}, {
        'CONFIG': args.config,
        'CKPT': ckpt
    }, 'pass another OUT.onnx')
    options = dict(args.cfg_options)
    options.setdefault('model.test_cfg.flip_test', False)
    model = init_model(args.config, ckpt, device='cpu', cfg_options=options)
    start = time.perf_counter()
    export_onnx(model, args.out, config_name=args.config,
                checkpoint_name=ckpt)
    print(f'wrote {args.out} ({osp.getsize(args.out) / 2**20:.1f} MiB) in '
          f'{time.perf_counter() - start:.1f} s; reads {args.config}'
          f'{", " + ckpt if ckpt else " (random weights)"}')
    result = dict(out=args.out)
    if args.verify_frames:
        from mmstable.deploy.verify import synthetic_clip, track_agreement
        frames, boxes = synthetic_clip(args.verify_frames, faces=2)
        worst = track_agreement(model, init_model(args.out), frames, boxes)
        print(f'torch vs ONNX Runtime, {worst["frames"]} frames, 2 tracks: '
              f'max |Δ| landmarks {worst["keypoints"]:.2e} px, raw '
              f'{worst["raw_keypoints"]:.2e} px')
        result.update(worst)
    return result


if __name__ == '__main__':
    main()
