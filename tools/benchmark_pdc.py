"""P3: PDC batch decode time / MSRAHeatmap decode time for one batch.

MSRAHeatmap has no ``batch_decode``, so MMPose's ``BaseHead.decode`` converts
the batch to numpy and calls ``decode`` once per sample; that is the
baseline timed here. PDCCodec is timed through ``batch_decode`` (what
``BaseHead.decode`` calls when ``support_batch_decoding``).

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python tools/benchmark_pdc.py
"""
import argparse
import statistics
import time

import numpy as np
import torch
from mmpose.codecs.utils import generate_gaussian_heatmaps
from mmpose.registry import KEYPOINT_CODECS
from mmpose.utils.tensor_utils import to_numpy

import mmstable  # noqa: F401  registers PDCCodec


def make_batch(batch: int, num_kpts: int, size: int, sigma: float,
               noise: float, seed: int) -> torch.Tensor:
    """Gaussian heatmaps at random sub-pixel positions + Gaussian noise
    (negative values included, as regressed heatmaps have)."""
    rng = np.random.default_rng(seed)
    maps = []
    for _ in range(batch):
        kpts = rng.uniform(4, size - 4, (1, num_kpts, 2))
        hm, _ = generate_gaussian_heatmaps((size, size), kpts,
                                           np.ones((1, num_kpts)), sigma)
        maps.append(hm * rng.uniform(0.6, 1.0, (num_kpts, 1, 1)))
    maps = np.stack(maps).astype(np.float32)
    maps += rng.normal(0, noise, maps.shape).astype(np.float32)
    return torch.from_numpy(maps)


def median_times(fns: dict, repeats: int, warmup: int = 2) -> dict:
    """Median wall and process-CPU seconds per function; the functions are
    interleaved in each repeat so that load from other processes hits them
    alike (CPU time is the steadier figure on a shared machine)."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    wall = {name: [] for name in fns}
    cpu = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            cpu[name].append(time.process_time() - c0)
            wall[name].append(time.perf_counter() - w0)
    return {
        name: (statistics.median(wall[name]), statistics.median(cpu[name]))
        for name in fns
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--batch', type=int, default=32)
    parser.add_argument('--keypoints', type=int, default=98)
    parser.add_argument('--size', type=int, default=64)
    parser.add_argument('--repeats', type=int, default=15)
    parser.add_argument('--noise', type=float, default=0.02)
    parser.add_argument('--unbiased', action='store_true',
                        help='compare against MSRAHeatmap with DARK decoding')
    args = parser.parse_args()

    input_size = (args.size * 4, args.size * 4)
    heatmap_size = (args.size, args.size)
    common = dict(input_size=input_size, heatmap_size=heatmap_size, sigma=2.)
    msra = KEYPOINT_CODECS.build(
        dict(type='MSRAHeatmap', unbiased=args.unbiased, **common))
    pdc = KEYPOINT_CODECS.build(dict(type='PDCCodec', **common))
    batch = make_batch(args.batch, args.keypoints, args.size, 2., args.noise,
                       seed=0)

    def msra_decode():  # as BaseHead.decode without batch decoding
        return [msra.decode(hm) for hm in to_numpy(batch, unzip=True)]

    def pdc_decode():
        return pdc.batch_decode(batch)

    times = median_times(dict(msra=msra_decode, pdc=pdc_decode),
                         args.repeats)
    (w_msra, c_msra), (w_pdc, c_pdc) = times['msra'], times['pdc']
    print(f'batch {tuple(batch.shape)}, torch threads '
          f'{torch.get_num_threads()}, median of {args.repeats}')
    print(f'MSRAHeatmap(unbiased={args.unbiased}) per-sample decode: '
          f'{w_msra * 1e3:.2f} ms wall, {c_msra * 1e3:.2f} ms CPU')
    print(f'PDCCodec.batch_decode: {w_pdc * 1e3:.2f} ms wall, '
          f'{c_pdc * 1e3:.2f} ms CPU')
    print(f'P3 = {w_pdc / w_msra:.3f} (wall), {c_pdc / c_msra:.3f} (CPU)')


if __name__ == '__main__':
    main()
