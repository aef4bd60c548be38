"""Streaming fps and latency of a face model: torch vs ONNX Runtime, with
and without mmstable's refiner (issue 13).

Models (random weights unless ``--demo-checkpoint``: timing does not depend
on them; backbone ``init_cfg=None``, flip test off):

- ``hrnet``: MMPose's WFLW HRNetV2-W18 at 256x256, plain
  (``TopdownPoseEstimator`` + ``HeatmapHead``) and stable
  (``StableTopdownPoseEstimator`` + ``ConvLSTMRefineHead`` with its default
  keypoint stage) — both decoded with ``PDCCodec``, the exported graph's
  decoder;
- ``real``: the default real-face model (configs/demo/real_image_model.py
  and configs/demo/real_jitter.py, the checkpoint ``make demo`` builds when
  it exists, ``--real-checkpoint`` otherwise): its map stage is kept at the
  identity, so its refiner is the keypoint stage (the step skips the map
  stage, :meth:`mmstable.models.ConvLSTMRefineHead.map_stage_is_identity`;
  printed);
- ``demo``: the demo's small model (configs/demo/synthetic_image_model.py)
  and its refiner config (configs/demo/synthetic_jitter.py), a trained map
  stage (``--demo-checkpoint``: its weights).

An untrained ``demo`` / ``hrnet`` refiner's map stage is the identity (its
output layer starts at 0) and would be skipped: the benchmark moves that
layer's bias off 0 so that it times the map stage a trained refiner has
(timing does not depend on the values).

Each is driven through :class:`mmstable.apis.StableFaceTracker` exactly as a
video would drive it: one frame per ``update``, one face (batch 1), a fixed
box, the refiner carrying its state. Per (model, threads) the four
trackers -- with and without refiner, torch and ONNX Runtime
(``tools/deploy/export_onnx.py``'s graph, via ``init_model('x.onnx')``) --
are interleaved frame by frame so that load from other processes hits all
of them (P2 and ORT/torch are ratios measured in one run); fps = 1 / median
per-frame time (test pipeline, model, decode, tracking), latency = median
and p95 of the per-frame time. ``--e2e`` adds the end-to-end loop on a 640x480 video
(:class:`mmstable.deploy.RealtimeFaceLoop`: crop from the landmarks, the
detector only on the first frame) for ``--e2e-model`` + refiner.

``--profile`` adds ONNX Runtime's profile of each graph, per part of the
step and per op type (:func:`mmstable.deploy.profile.profile_onnx`).

Usage::

    python tools/benchmark_streaming.py [--models real demo hrnet]
        [--threads 1 2] [--backends torch ort] [--frames 30] [--e2e] [--e2e-model real|demo]
        [--real-checkpoint CKPT] [--demo-checkpoint CKPT] [--profile]
"""
import argparse
import copy
import os.path as osp
import statistics
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

MMPOSE_CONFIG = ('mmpose::face_2d_keypoint/topdown_heatmap/wflw/'
                 'td-hm_hrnetv2-w18_8xb64-60e_wflw-256x256.py')
ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO_IMAGE = osp.join(ROOT, 'configs/demo/synthetic_image_model.py')
DEMO_STABLE = osp.join(ROOT, 'configs/demo/synthetic_jitter.py')
REAL_IMAGE = osp.join(ROOT, 'configs/demo/real_image_model.py')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--models', nargs='+', default=['real', 'hrnet'],
                        choices=['real', 'demo', 'hrnet'])
    parser.add_argument('--threads', type=int, nargs='+', default=[1, 2],
                        help='CPU threads of torch and ONNX Runtime')
    parser.add_argument('--backends', nargs='+', default=['torch', 'ort'],
                        choices=['torch', 'ort'],
                        help='timed side by side (torch at 2 threads keeps '
                        'its second thread busy between frames: ORT-only '
                        'runs give the calmer 2-thread figures)')
    parser.add_argument('--frames', type=int, default=30,
                        help='timed frames per model')
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--e2e', action='store_true',
                        help='also the end-to-end 640x480 loop (--e2e-model '
                        '+ refiner, ONNX Runtime and torch)')
    parser.add_argument('--e2e-model', default='real',
                        choices=['real', 'demo'])
    parser.add_argument('--e2e-frames', type=int, default=150)
    parser.add_argument('--demo-checkpoint', default=None,
                        help='weights of the demo image model (default: '
                        'random)')
    parser.add_argument('--real-checkpoint', default=None,
                        help='weights of the real-face refiner (default: '
                        'the one `make demo` built, random if none)')
    parser.add_argument('--profile', action='store_true',
                        help='also ONNX Runtime\'s profile of each graph (1 '
                        'thread): ms per step by part and by op type '
                        '(mmstable.deploy.profile)')
    return parser.parse_args(argv)


def build_configs(model: str):
    """``{(refiner: bool): Config}`` of a benchmark model."""
    from mmengine.config import Config
    if model == 'hrnet':
        cfg = Config.fromstring(f"_base_ = '{MMPOSE_CONFIG}'\n", '.py')
        cfg.model.backbone.init_cfg = None
        head = cfg.model.head
        head.decoder = dict(head.decoder, type='PDCCodec')
        plain = copy.deepcopy(cfg)
        stable = copy.deepcopy(cfg)
        stable.model.type = 'StableTopdownPoseEstimator'
        stable.model.head = dict(
            type='ConvLSTMRefineHead', base_head=copy.deepcopy(head),
            decoder=head.decoder)
    else:
        from mmstable.apis.default_model import DEFAULT_FACE_CONFIG
        plain = Config.fromfile(DEMO_IMAGE if model == 'demo' else REAL_IMAGE)
        plain.model.head.decoder = dict(plain.model.head.decoder,
                                        type='PDCCodec')
        stable = Config.fromfile(DEMO_STABLE if model == 'demo' else osp.join(
            ROOT, DEFAULT_FACE_CONFIG))
    for cfg in (plain, stable):
        cfg.model.test_cfg.flip_test = False
    return {False: plain, True: stable}


def build_model(name: str, refiner: bool, args):
    """A benchmark model (see the module docstring) and whether its step
    skips the map stage (an identity one)."""
    from mmstable.apis import init_model
    from mmstable.apis.default_model import default_face_model
    ckpt = None
    if name == 'demo':
        ckpt = args.demo_checkpoint
    elif name == 'real' and refiner:
        ckpt = args.real_checkpoint
        if ckpt is None:
            try:
                ckpt = default_face_model()[1]
            except FileNotFoundError:
                print('real: no default real-face model built (make demo): '
                      'random weights')
    model = init_model(build_configs(name)[refiner], ckpt, device='cpu')
    head = model.head
    if not refiner:
        return model, False
    if name != 'real' and head.map_stage_is_identity():
        with torch.no_grad():  # a trained map stage (module docstring)
            head.out_proj.bias.add_(1e-3)
    return model, head.map_stage_is_identity()


def _stats(times):
    return dict(
        fps=1. / statistics.median(times),
        median_ms=1e3 * statistics.median(times),
        p95_ms=1e3 * float(np.quantile(times, 0.95)))


def time_trackers(trackers: dict, frames, box, warmup: int) -> dict:
    """Per-frame times of several trackers, interleaved frame by frame."""
    times = {name: [] for name in trackers}
    for i, frame in enumerate(frames):
        for name, tracker in trackers.items():
            start = time.perf_counter()
            (res, ) = tracker.update(frame, box)
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
            assert res.track_frame == i
    return {name: _stats(t) for name, t in times.items()}


def e2e_video(num_frames: int):
    """A 640x480 synthetic face video (480x480 rendered, padded) and its
    per-frame landmark boxes (the 'detector')."""
    from mmstable.datasets.synthetic import FaceVideoGenerator
    video = FaceVideoGenerator(image_size=480).generate(7, num_frames)
    frames = np.zeros((num_frames, 480, 640, 3), np.uint8)
    frames[:, :, 80:560] = video.frames
    kpts = video.keypoints + np.array([80., 0.], np.float32)
    boxes = np.concatenate([kpts.min(1), kpts.max(1)], 1)[:, None]
    return frames, boxes


def run_e2e(model, frames, boxes) -> 'LoopStats':  # noqa: F821
    from mmstable.apis import StableFaceTracker
    from mmstable.deploy import RealtimeFaceLoop
    index = {'i': 0}
    loop = RealtimeFaceLoop(
        StableFaceTracker(model, track_by='landmarks'),
        detector=lambda frame: boxes[index['i']])

    def source():
        for i, frame in enumerate(frames):
            index['i'] = i
            yield i, frame

    return loop.run(source())


def main(argv=None) -> dict:
    args = parse_args(argv)
    from mmstable.apis import StableFaceTracker, init_model
    from mmstable.datasets.synthetic import FaceVideoGenerator
    from mmstable.deploy import export_onnx
    from mmstable.deploy.profile import profile_onnx

    rows, tmp, profiles = [], tempfile.TemporaryDirectory(), {}
    exported = {}  # (name, refiner): (torch model, onnx file)

    def export(name: str, refiner: bool, keep_source: bool = False):
        if (name, refiner) not in exported:
            torch_model, skipped = build_model(name, refiner, args)
            if refiner:
                print(f'{name}: map stage '
                      f'{"identity, skipped" if skipped else "in the step"}')
            path = osp.join(tmp.name, f'{name}_{refiner}.onnx')
            export_onnx(torch_model, path, keep_source=keep_source)
            exported[(name, refiner)] = (torch_model, path)
        return exported[(name, refiner)]

    num = args.warmup + args.frames
    for name in args.models:
        size = 256
        video = FaceVideoGenerator(image_size=size).generate(0, num)
        box = np.array([[32., 32., 224., 224.]], np.float32)
        models = {}
        for refiner in (False, True):
            models[refiner] = export(name, refiner, args.profile)
            if args.profile:
                profiles[(name, refiner)] = profile_onnx(
                    models[refiner][1], runs=args.frames,
                    warmup=args.warmup)
        for threads in args.threads:
            # the four trackers (with / without refiner, torch / ORT)
            # interleaved frame by frame: P2 and ORT/torch from one run
            torch.set_num_threads(threads)
            trackers = {}
            for refiner, (torch_model, path) in models.items():
                if 'torch' in args.backends:
                    trackers[(refiner, 'torch')] = StableFaceTracker(
                        torch_model)
                if 'ort' in args.backends:
                    trackers[(refiner, 'ort')] = StableFaceTracker(
                        init_model(path, onnx_threads=threads))
            res = time_trackers(trackers, video.frames, box, args.warmup)
            for (refiner, backend), r in sorted(res.items(),
                                                key=lambda x: x[0][0]):
                rows.append(dict(model=name, refiner=refiner,
                                 threads=threads, backend=backend, **r))
    print(f'{args.frames} frames, batch 1, flip test off, per frame: test '
          'pipeline + model + PDC + tracking (torch threads = ORT '
          'intra-op threads)')
    print(f'{"model":6} {"refiner":8} {"thr":>3} {"backend":8} {"fps":>7} '
          f'{"median ms":>9} {"p95 ms":>7} {"ORT/torch fps":>13}')
    for r in rows:
        ratio = ''
        ref = [
            x for x in rows if x['backend'] == 'torch' and all(
                x[k] == r[k] for k in ('model', 'refiner', 'threads'))
        ]
        if r['backend'] == 'ort' and ref:
            ratio = f'{r["fps"] / ref[0]["fps"]:.2f}'
        print(f'{r["model"]:6} {"yes" if r["refiner"] else "no":8} '
              f'{r["threads"]:>3} {r["backend"]:8} {r["fps"]:7.1f} '
              f'{r["median_ms"]:9.1f} {r["p95_ms"]:7.1f} {ratio:>13}')
    for name in args.models:
        for threads in args.threads:
            for backend in ('torch', 'ort'):
                sel = {
                    r['refiner']: r['median_ms']
                    for r in rows if r['model'] == name
                    and r['threads'] == threads and r['backend'] == backend
                }
                if len(sel) == 2:
                    print(f'P2 (time with / without refiner) {name} '
                          f'{backend} {threads} thr: '
                          f'{sel[True] / sel[False]:.3f}')
    for (name, refiner), prof in profiles.items():
        print(f'ONNX Runtime profile, {name}, refiner '
              f'{"yes" if refiner else "no"}, 1 thr: step '
              f'{prof["median_ms"]:.2f} ms (profiler off), kernels '
              f'{prof["kernel_ms"]:.2f} ms in {prof["nodes"]} (profiler on; '
              f'shape ops {prof["shape_ops_ms"]:.2f} ms in '
              f'{prof["shape_ops_nodes"]})')
        print('  by part: ' + ', '.join(
            f'{k} {v:.2f}' for k, v in prof['by_part'].items()))
        print('  by op:   ' + ', '.join(
            f'{k} {v:.2f}' for k, v in list(prof['by_op'].items())[:12]))
    result = dict(rows=rows, profiles=profiles)
    if args.e2e:
        frames, boxes = e2e_video(args.e2e_frames)
        # the benchmark's own export when --models had it
        torch_model, path = export(args.e2e_model, True)
        result['e2e'] = {}
        for threads in args.threads:
            torch.set_num_threads(threads)
            for backend in args.backends:
                model = torch_model if backend == 'torch' else init_model(
                    path, onnx_threads=threads)
                stats = run_e2e(model, frames, boxes)
                result['e2e'][(backend, threads)] = stats
                print(f'end to end 640x480, {args.e2e_model} model + '
                      f'refiner, {backend}, '
                      f'{threads} thr: {stats.summary()}')
    tmp.cleanup()
    return result


if __name__ == '__main__':
    main()
