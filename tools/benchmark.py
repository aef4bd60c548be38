"""Cost of mmstable's refiner relative to the MMPose image model it wraps.

Measured in one run on this machine (CPU), MMPose's WFLW HRNetV2-W18 at
256x256 (random weights: timing does not depend on them), median of repeats,
A and B interleaved so that load from other processes hits both sides:

- P2: per-frame streaming latency, batch 1, ``model.predict`` of
  (frozen model + ConvLSTM step + PDC decode) / (MMPose model + MSRAHeatmap
  decode). The step includes carrying the state into the frame's crop
  (raw-keypoint decode, similarity fit, warp). Flip test off on both sides
  (``--flip`` turns it on). Target <= 1.05.
- P1: training step (loss, backward, Adam step) of the fine-tuning model
  (frozen image model, loss on the refiner) / the full MMPose model (all
  trainable, KeypointMSELoss), same batch of ``--clips`` x ``--frames``.
  Target <= 0.35.
- P3: ``PDCCodec.batch_decode`` / ``MSRAHeatmap.decode`` per sample on
  (32, 98, 64, 64).

Usage::

    python tools/benchmark.py [--repeats 20] [--train-repeats 5] [--threads N]
"""
import argparse
import copy
import os
import statistics
import sys
import tempfile
import time
import warnings

import numpy as np
import torch

MMPOSE_CONFIG = ('mmpose::face_2d_keypoint/topdown_heatmap/wflw/'
                 'td-hm_hrnetv2-w18_8xb64-60e_wflw-256x256.py')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--repeats', type=int, default=20,
                        help='repeats of the latency measurements (P2, P3)')
    parser.add_argument('--train-repeats', type=int, default=4,
                        help='repeats of the training steps (P1)')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch threads (default: all cores; on a '
                        'machine shared with other jobs use 1: OpenMP '
                        'threads competing for cores slow down ~10x)')
    parser.add_argument('--clips', type=int, default=2)
    parser.add_argument('--frames', type=int, default=4)
    parser.add_argument('--flip', action='store_true',
                        help='flip test on both sides of P2')
    parser.add_argument('--refiner', default='{}',
                        help='extra ConvLSTMRefineHead options as a Python '
                        'dict, e.g. "dict(hidden_channels=32)"')
    parser.add_argument('--config', default=None,
                        help='a mmstable config (StableTopdownPoseEstimator '
                        '+ ConvLSTMRefineHead) to measure instead of the '
                        'WFLW HRNetV2 one, e.g. configs/demo/'
                        'synthetic_jitter.py; its plain model is the same '
                        'config with the base head')
    parser.add_argument('--skip', nargs='*', default=[],
                        choices=['P1', 'P2', 'P3'])
    return parser.parse_args()


def build_models_from_config(path, refiner_opts):
    """(plain, stable, codec) from a mmstable config: the plain MMPose model
    is its ``model`` with ``TopdownPoseEstimator`` and the base head."""
    from mmengine import Config
    from mmpose.registry import MODELS
    cfg = Config.fromfile(path)
    stable_cfg = copy.deepcopy(cfg.model)
    stable_cfg.backbone.init_cfg = None
    stable_cfg.head.update(refiner_opts)
    plain_cfg = copy.deepcopy(stable_cfg)
    plain_cfg.type = 'TopdownPoseEstimator'
    plain_cfg.pop('frozen_modules', None)
    plain_cfg.head = plain_cfg.head.base_head
    plain_cfg.test_cfg.pop('output_raw', None)
    plain = MODELS.build(plain_cfg)
    stable = MODELS.build(stable_cfg)
    stable.load_state_dict(plain.state_dict(), strict=False)
    return plain, stable, plain_cfg.head.decoder


def build_models(refiner_opts):
    from mmengine import Config
    from mmpose.registry import MODELS
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'cfg.py')
        with open(path, 'w') as f:
            f.write(f"_base_ = '{MMPOSE_CONFIG}'\n")
        cfg = Config.fromfile(path)
    plain_cfg = copy.deepcopy(cfg.model)
    plain_cfg.backbone.init_cfg = None
    codec = plain_cfg.head.decoder
    stable_cfg = copy.deepcopy(plain_cfg)
    stable_cfg.type = 'StableTopdownPoseEstimator'
    stable_cfg.head = dict(
        type='ConvLSTMRefineHead',
        base_head=plain_cfg.head,
        loss=dict(type='JitterLoss'),
        decoder=dict(codec, type='PDCCodec'),
        **refiner_opts)
    plain = MODELS.build(plain_cfg)
    stable = MODELS.build(stable_cfg)
    stable.load_state_dict(plain.state_dict(), strict=False)
    return plain, stable, codec


def make_samples(clips, frames, num_keypoints=98, video_id='v',
                 input_size=256, heatmap_size=64):
    from mmengine.structures import InstanceData, PixelData
    from mmpose.structures import PoseDataSample
    samples = []
    rng = np.random.default_rng(0)
    for b in range(clips):
        for t in range(frames):
            ds = PoseDataSample(
                metainfo=dict(
                    video_id=f'{video_id}{b}', frame_id=t, clip_len=frames,
                    input_size=(input_size, input_size),
                    input_center=np.array([input_size / 2] * 2),
                    input_scale=np.array([float(input_size)] * 2),
                    flip_indices=list(range(num_keypoints))))
            kpts = rng.uniform(.1, .9, (1, num_keypoints, 2)) * input_size
            ds.gt_instances = InstanceData(
                transformed_keypoints=kpts, bboxes=np.zeros((1, 4)),
                bbox_scores=np.ones(1))
            ds.gt_instance_labels = InstanceData(
                keypoint_weights=torch.ones(1, num_keypoints))
            ds.gt_fields = PixelData(
                heatmaps=torch.rand(num_keypoints, heatmap_size,
                                    heatmap_size))
            samples.append(ds)
    return samples


def interleaved(fn_a, fn_b, repeats, warmup=1):
    for _ in range(warmup):
        fn_a()
        fn_b()
    ta, tb = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        fn_a()
        ta.append(time.perf_counter() - t)
        t = time.perf_counter()
        fn_b()
        tb.append(time.perf_counter() - t)
    return statistics.median(ta), statistics.median(tb)


def bench_p2(plain, stable, repeats, flip):
    for model in (plain, stable):
        model.eval()
        model.test_cfg['flip_test'] = flip
        model.head.test_cfg = model.test_cfg.copy()
    x = torch.randn(1, 3, 256, 256)
    frame = [0]

    def step(model):
        # one video, consecutive frames: the refiner carries its state
        samples = make_samples(1, 1)
        samples[0].set_metainfo(dict(frame_id=frame[0]))
        frame[0] += 1
        with torch.no_grad():
            model.predict(x, samples)

    t_stable, t_plain = interleaved(lambda: step(stable),
                                    lambda: step(plain), repeats, warmup=2)

    # the parts that differ: one refiner step, PDC vs MSRAHeatmap decode
    heatmaps = torch.rand(1, 1, 98, 64, 64)
    from mmstable.models import DecoupledRecurrentRefineHead
    with torch.no_grad():
        if isinstance(stable.head, DecoupledRecurrentRefineHead):
            t_step = float('nan')  # steps on features: only the total counts
        else:
            _, state = stable.head.refine(heatmaps)
            t_step, _ = interleaved(
                lambda: stable.head.refine(heatmaps, state), lambda: None,
                repeats)
        t_pdc, t_msra = interleaved(
            lambda: stable.head.decode(heatmaps[0]),
            lambda: plain.head.decode(heatmaps[0]), repeats)
    return t_stable, t_plain, t_step, t_pdc, t_msra


def bench_p1(plain, stable, repeats, clips, frames, codec):
    (w, _), (hw, _) = codec['input_size'], codec['heatmap_size']
    inputs = torch.randn(clips * frames, 3, w, w)
    samples = make_samples(clips, frames, stable.head.out_channels,
                           input_size=w, heatmap_size=hw)

    def make_step(model):
        model.train()
        params = [p for p in model.parameters() if p.requires_grad]
        optim = torch.optim.Adam(params, lr=1e-5)

        def step():
            losses = model.loss(inputs, samples)
            loss = sum(v for k, v in losses.items() if 'loss' in k)
            optim.zero_grad()
            loss.backward()
            optim.step()

        return step, sum(p.numel() for p in params)

    step_stable, n_stable = make_step(stable)
    step_plain, n_plain = make_step(plain)
    t_stable, t_plain = interleaved(step_stable, step_plain, repeats)
    return t_stable, t_plain, n_stable, n_plain


def bench_p3(codec_cfg, repeats):
    from mmpose.registry import KEYPOINT_CODECS
    msra = KEYPOINT_CODECS.build(codec_cfg)
    pdc = KEYPOINT_CODECS.build(dict(codec_cfg, type='PDCCodec'))
    heatmaps, source = torch.rand(32, 98, 64, 64), 'uniform noise'
    pdc_tool = os.path.join(os.path.dirname(__file__), 'benchmark_pdc.py')
    if os.path.isfile(pdc_tool):  # the PDC benchmark's realistic heatmaps
        import importlib.util
        spec = importlib.util.spec_from_file_location('benchmark_pdc',
                                                      pdc_tool)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        heatmaps = module.make_batch(32, 98, 64, sigma=2., noise=0.02, seed=0)
        source = 'tools/benchmark_pdc.make_batch'
    heatmaps_np = heatmaps.numpy()

    def msra_decode():
        for hm in heatmaps_np:
            msra.decode(hm)

    return interleaved(lambda: pdc.batch_decode(heatmaps), msra_decode,
                       repeats) + (source, )


def main():
    args = parse_args()
    warnings.filterwarnings('ignore')
    sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))
    import mmstable  # noqa: F401
    from mmengine.registry import init_default_scope
    init_default_scope('mmpose')
    threads = args.threads or os.cpu_count()
    torch.set_num_threads(threads)
    from mmstable.utils import parse_dict_option
    refiner_opts = parse_dict_option(args.refiner, '--refiner')
    if args.config:
        plain, stable, codec = build_models_from_config(
            args.config, refiner_opts)
    else:
        plain, stable, codec = build_models(refiner_opts)
    head = stable.head
    nonrigid = getattr(head, 'nonrigid_prediction', 0.)
    if getattr(head, 'nonrigid_gain', None) is not None:
        nonrigid = f'{nonrigid} (learnt gain)'
    print(f'mmstable benchmark: {args.config or MMPOSE_CONFIG}\n  CPU, '
          f'torch {torch.__version__}, {threads} threads; refiner: '
          f'{type(head.cell).__name__}({head.cell.extra_repr()}), '
          f'share_across_keypoints={head.share_across_keypoints}, '
          f'state_stride={head.state_stride}, warp_state={head.warp_state} '
          f'({head.motion_compensation}), nonrigid_prediction={nonrigid}, '
          f'decoder '
          f'{type(head.decoder).__name__}')

    if 'P2' not in args.skip:
        t_s, t_p, t_step, t_pdc, t_msra = bench_p2(plain, stable,
                                                   args.repeats, args.flip)
        print(f'P2 streaming latency, batch 1 (flip_test={args.flip}), '
              f'median of {args.repeats}: refined+PDC {t_s * 1e3:.1f} ms / '
              f'MMPose+MSRA {t_p * 1e3:.1f} ms = {t_s / t_p:.3f} '
              '(target <= 1.05)\n'
              f'   parts: refiner step {t_step * 1e3:.2f} ms, PDC decode '
              f'{t_pdc * 1e3:.2f} ms, MSRAHeatmap decode {t_msra * 1e3:.2f} '
              f'ms; (MMPose + step + PDC - MSRA) / MMPose = '
              f'{(t_p + t_step + t_pdc - t_msra) / t_p:.3f}')
    if 'P1' not in args.skip:
        t_s, t_p, n_s, n_p = bench_p1(plain, stable, args.train_repeats,
                                      args.clips, args.frames, codec)
        print(f'P1 training step, {args.clips} clips x {args.frames} frames, '
              f'median of {args.train_repeats}: fine-tune ({n_s} trainable '
              f'params) {t_s:.3f} s / full model ({n_p}) {t_p:.3f} s = '
              f'{t_s / t_p:.3f} (target <= 0.35)')
    if 'P3' not in args.skip:
        t_pdc, t_msra, source = bench_p3(codec, args.repeats)
        print(f'P3 decode (32, 98, 64, 64) of {source}, median of '
              f'{args.repeats}: PDC '
              f'batch_decode {t_pdc * 1e3:.1f} ms / MSRAHeatmap per-sample '
              f'{t_msra * 1e3:.1f} ms = {t_pdc / t_msra:.3f}')


if __name__ == '__main__':
    main()
