"""Streaming fps of a face model with and without mmstable's refiner.

Both models are MMPose's WFLW HRNetV2-W18 at 256x256 (random weights: timing
does not depend on them; backbone ``init_cfg=None``):

- plain: ``TopdownPoseEstimator`` + ``HeatmapHead`` + ``MSRAHeatmap``;
- stable: ``StableTopdownPoseEstimator`` + ``ConvLSTMRefineHead`` (around the
  same ``HeatmapHead``) + ``PDCCodec``.

Each is driven through :class:`mmstable.apis.StableFaceTracker` exactly as a
video would drive it: one frame per ``update``, one face (batch 1), a fixed
box, the refiner carrying its state from frame to frame. The two are
interleaved frame by frame so that load from other processes hits both;
fps = 1 / median per-frame time (test pipeline, model, decode, tracking).
Flip test is off on both sides (``--flip`` turns it on).

Usage::

    python tools/benchmark_streaming.py [--frames 30] [--threads 1]
        [--device cpu|cuda:0] [--flip] [--output-raw]
"""
import argparse
import copy
import statistics
import time

import numpy as np
import torch

MMPOSE_CONFIG = ('mmpose::face_2d_keypoint/topdown_heatmap/wflw/'
                 'td-hm_hrnetv2-w18_8xb64-60e_wflw-256x256.py')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--frames', type=int, default=30,
                        help='timed frames per model')
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--threads', type=int, default=None,
                        help='torch CPU threads (default: torch\'s; on a '
                        'machine shared with other jobs use 1)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--flip', action='store_true',
                        help='flip test on both sides')
    parser.add_argument('--output-raw', action='store_true',
                        help='the stable model also decodes the frozen '
                        'model\'s landmarks (as tools/demo_video.py does)')
    return parser.parse_args(argv)


def build_configs(flip: bool):
    from mmengine.config import Config
    cfg = Config.fromstring(f"_base_ = '{MMPOSE_CONFIG}'\n", '.py')
    cfg.model.backbone.init_cfg = None
    cfg.model.test_cfg.flip_test = flip
    plain = copy.deepcopy(cfg)
    stable = copy.deepcopy(cfg)
    head = stable.model.head
    stable.model.type = 'StableTopdownPoseEstimator'
    stable.model.head = dict(
        type='ConvLSTMRefineHead', base_head=head,
        decoder=dict(head.decoder, type='PDCCodec'))
    return plain, stable


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from mmstable.apis import StableFaceTracker, init_model
    from mmstable.datasets.synthetic import FaceVideoGenerator

    plain_cfg, stable_cfg = build_configs(args.flip)
    trackers = dict(
        plain=StableFaceTracker(init_model(plain_cfg, device=args.device)),
        stable=StableFaceTracker(
            init_model(stable_cfg, device=args.device),
            output_raw=args.output_raw))
    video = FaceVideoGenerator(image_size=256).generate(
        0, args.warmup + args.frames)
    box = np.array([[32., 32., 224., 224.]], np.float32)
    sync = (torch.cuda.synchronize
            if str(args.device).startswith('cuda') else (lambda: None))

    times = {name: [] for name in trackers}
    for i, frame in enumerate(video.frames):
        for name, tracker in trackers.items():
            sync()
            start = time.perf_counter()
            (res, ) = tracker.update(frame, box)
            sync()
            if i >= args.warmup:
                times[name].append(time.perf_counter() - start)
            assert res.track_id == 0 and res.track_frame == i
    fps = {k: 1. / statistics.median(v) for k, v in times.items()}
    ratio = fps['plain'] / fps['stable']
    print(f'device {args.device}, torch threads {torch.get_num_threads()}, '
          f'{args.frames} frames, batch 1, flip_test={args.flip}, '
          f'output_raw={args.output_raw}')
    print(f'plain  (TopdownPoseEstimator+HeatmapHead+MSRAHeatmap): '
          f'{fps["plain"]:8.2f} fps')
    print(f'stable (+ConvLSTMRefineHead+PDCCodec):                 '
          f'{fps["stable"]:8.2f} fps')
    print(f'time ratio stable / plain: {ratio:.3f}')
    return dict(fps=fps, ratio=ratio)


if __name__ == '__main__':
    main()
