# Copyright (c) mmstable authors. All rights reserved.
"""Convert raw 300VW folders to MMPose's COCO-style 300VW annotations, with
``video_id`` and ``frame_id`` on every image (mmstable's VideoClipDataset).

Raw layout (https://ibug.doc.ic.ac.uk/resources/300-VW/)::

    <root>/<video>/vid.avi
    <root>/<video>/annot/000001.pts ...   (68 points, 1-based frame numbers)

Output follows MMPose's ``tools/dataset_converters/300vw2coco.py``: frames are
written to ``<root>/<video>/imgs/<frame:06d>.png`` (1-based, like the .pts
files; here with OpenCV instead of ffmpeg); each annotation has the 68
keypoints with visibility 1, ``center`` = middle of the landmarks' extent,
``scale`` = ceil(max(w, h)) / 200 (Face300VWDataset multiplies it by 200),
``area`` = w * h. mmstable adds ``video_id`` (folder name) and ``frame_id``
(0-based: frame 000001 is 0) to each image. Frames listed in
``--broken-frames`` (a JSON file ``{video: [1-based frames]}``) are skipped.
MMPose's pickled ``broken_frames.npy`` is refused (unpickling a data file can
run code); convert it once with ``broken_frames_to_json.py`` next to this
file.

Usage::

    python tools/dataset_converters/300vw_to_coco.py data/300vw \\
        data/300vw/annotations/train.json --videos train \\
        --broken-frames data/300vw/broken_frames.json
"""
import argparse
import json
import math
import os
import os.path as osp
import shutil
import sys
from typing import (Callable, Dict, Iterable, List, Optional, Sequence,
                    Union)

import cv2
import numpy as np

NUM_POINTS = 68


def read_pts(path: str, num_points: int = NUM_POINTS) -> np.ndarray:
    """Read an iBUG ``.pts`` file as a (num_points, 2) float array.

    Raises:
        ValueError: naming the file and the 1-based line for binary
            content (not UTF-8, or NUL bytes), a malformed header, a line
            that is not two numbers, missing braces, or a point count other
            than ``num_points`` (or the header's ``n_points``).
    """
    with open(path, 'rb') as f:
        raw = f.read()
    try:
        text = raw.decode('utf-8')
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b'\n') + 1
        raise ValueError(f'{path}:{line}: not a text .pts file (byte '
                         f'{raw[e.start:e.start + 1]!r} at offset {e.start})'
                         ) from None
    if '\x00' in text:
        line = text[:text.index('\x00')].count('\n') + 1
        raise ValueError(f'{path}:{line}: not a text .pts file (NUL byte)')
    lines = text.splitlines()
    header_points, start = None, None
    for no, line in enumerate(lines, 1):
        text = line.strip()
        if text.startswith('n_points'):
            try:
                header_points = int(text.split(':', 1)[1])
            except (IndexError, ValueError):
                raise ValueError(f'{path}:{no}: bad header {line!r}; '
                                 'expected "n_points: <int>"') from None
        elif text == '{':
            start = no
            break
    if start is None:
        raise ValueError(f'{path}: no "{{" line opening the point list')
    points, end = [], None
    for no, line in enumerate(lines[start:], start + 1):
        text = line.strip()
        if text == '}':
            end = no
            break
        if not text:
            continue
        fields = text.split()
        try:
            if len(fields) != 2:
                raise ValueError
            x, y = float(fields[0]), float(fields[1])
            if not (math.isfinite(x) and math.isfinite(y)):
                raise ValueError
        except ValueError:
            raise ValueError(f'{path}:{no}: expected two numbers "x y", '
                             f'found {line!r}') from None
        points.append((x, y))
    if end is None:
        raise ValueError(f'{path}: no "}}" line closing the point list')
    if header_points is not None and header_points != len(points):
        raise ValueError(f'{path}:{end}: header says n_points: '
                         f'{header_points} but {len(points)} points found')
    if len(points) != num_points:
        raise ValueError(f'{path}:{end}: expected {num_points} points, '
                         f'found {len(points)}')
    return np.asarray(points, dtype=np.float64)


def _frame_files(out_dir: str, ext: str) -> List[str]:
    """Names of the frame images (``<digits><ext>``) in ``out_dir``."""
    if not osp.isdir(out_dir):
        return []
    return sorted(f for f in os.listdir(out_dir)
                  if f.endswith(ext) and f[:-len(ext)].isdigit())


def extract_frames(video_path: str,
                   out_dir: str,
                   ext: str = '.png',
                   overwrite: bool = False,
                   log: Callable[[str], None] = print) -> int:
    """Write every frame of ``video_path`` to ``out_dir/<n:06d><ext>``
    (n 1-based, as 300VW's .pts files). Returns the number of frames.

    Frames are written to ``<out_dir>.partial`` and moved into ``out_dir``
    only after the whole video was read, so an interrupted run never leaves
    ``out_dir`` looking complete. An existing ``out_dir`` is kept when it
    holds as many frames as OpenCV reports for the video (e.g. frames
    extracted by MMPose's ffmpeg script), unless ``overwrite``; with any
    other number (an interrupted extraction) the video is extracted again.
    Each decision is reported through ``log``.
    """
    cap = cv2.VideoCapture(video_path)
    if not cap.isOpened():
        raise IOError(f'OpenCV cannot open {video_path}')
    tmp_dir = osp.normpath(out_dir) + '.partial'
    try:
        reported = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        existing = _frame_files(out_dir, ext)
        if existing and not overwrite:
            if len(existing) == reported:
                log(f'{out_dir}: all {reported} frames of {video_path} '
                    'already extracted, kept')
                return reported
            log(f'{out_dir} holds {len(existing)} frames but OpenCV reports '
                f'{reported} for {video_path} (an interrupted extraction?): '
                'extracting again')
        if osp.isdir(tmp_dir):  # left by an interrupted run
            shutil.rmtree(tmp_dir)
        os.makedirs(tmp_dir)
        n = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            n += 1
            path = osp.join(tmp_dir, f'{n:06d}{ext}')
            if not cv2.imwrite(path, frame):
                raise IOError(f'cannot write {path}')
    finally:
        cap.release()
    if n == 0:
        shutil.rmtree(tmp_dir)
        raise IOError(f'no frame could be read from {video_path}')
    if reported > 0 and n != reported:
        log(f'warning: OpenCV reports {reported} frames for {video_path} '
            f'but {n} could be read (a damaged video?)')
    # the complete set replaces whatever frames out_dir held
    os.makedirs(out_dir, exist_ok=True)
    for name in _frame_files(out_dir, ext):
        os.remove(osp.join(out_dir, name))
    for name in sorted(os.listdir(tmp_dir)):
        os.replace(osp.join(tmp_dir, name), osp.join(out_dir, name))
    os.rmdir(tmp_dir)
    log(f'{video_path}: extracted {n} frames to {out_dir}')
    return n


def landmarks_to_annotation(points: np.ndarray) -> dict:
    """MMPose's 300VW box convention: centre of the landmarks' extent and
    ``scale = ceil(max(w, h)) / 200``."""
    x0, y0 = points.min(0)
    x1, y1 = points.max(0)
    w, h = x1 - x0, y1 - y0
    keypoints = np.concatenate([points, np.ones((len(points), 1))], axis=1)
    return dict(segmentation=[],
                num_keypoints=len(points),
                iscrowd=0,
                category_id=1,
                keypoints=keypoints.reshape(-1).tolist(),
                scale=math.ceil(max(w, h)) / 200,
                area=float(w * h),
                center=[float(x0 + x1) / 2,
                        float(y0 + y1) / 2])


def _video_list(root: str, videos: Union[None, str, Sequence[str]]) -> list:
    if videos is None or videos == 'all':
        return sorted(d for d in os.listdir(root)
                      if osp.isdir(osp.join(root, d, 'annot')))
    if isinstance(videos, str):
        from mmstable.datasets.video_clip_dataset import SCENARIO_VIDEOS
        if videos in ('train', 'test', '1', '2', '3'):
            key = int(videos) if videos.isdigit() else videos
            return list(SCENARIO_VIDEOS[key])
        videos = [videos]  # one video id, e.g. '001'
    return [str(v) for v in videos]


def convert(root: str,
            out_file: Optional[str] = None,
            videos: Union[None, str, Sequence[str]] = None,
            broken_frames: Union[None, str, Dict[str, Iterable[int]]] = None,
            img_dir: str = 'imgs',
            ext: str = '.png',
            extract: bool = True) -> dict:
    """Convert 300VW videos under ``root`` to one COCO-style dict.

    Args:
        root (str): 300VW root holding ``<video>/annot/*.pts`` and
            ``<video>/vid.avi`` (or already extracted ``<video>/<img_dir>``).
        out_file (str, optional): Where to write the JSON.
        videos: ``None``/``'all'`` (every folder with ``annot/``),
            ``'train'``, ``'test'``, ``'1'``/``'2'``/``'3'`` or a list of ids.
        broken_frames: ``{video: [1-based frames]}`` or a .json file
            holding it (a pickled .npy is refused, see
            ``mmstable.datasets.broken_frames``).
        img_dir (str): Frame folder inside each video folder.
        ext (str): Frame image extension when extracting.
        extract (bool): Extract frames from ``vid.avi`` unless ``img_dir``
            already holds all of them (:func:`extract_frames`).

    Returns:
        dict: The COCO-style annotations (``images`` with ``video_id`` and
        ``frame_id``, ``annotations``, ``categories``).
    """
    from mmstable.datasets.video_clip_dataset import load_broken_frames
    broken = load_broken_frames(broken_frames)
    data = dict(images=[],
                annotations=[],
                categories=[dict(id=1, name='person')])
    for video in _video_list(root, videos):
        annot_dir = osp.join(root, video, 'annot')
        frame_dir = osp.join(root, video, img_dir)
        if not osp.isdir(annot_dir):
            raise FileNotFoundError(f'{annot_dir} not found (video {video})')
        video_path = osp.join(root, video, 'vid.avi')
        extracted = extract and osp.isfile(video_path)
        if extracted:
            extract_frames(video_path, frame_dir, ext=ext)
        frames = {}
        if osp.isdir(frame_dir):
            for f in os.listdir(frame_dir):
                stem = osp.splitext(f)[0]
                if stem.isdigit():
                    frames[int(stem)] = f
        for pts in sorted(os.listdir(annot_dir)):
            stem = osp.splitext(pts)[0]
            if not (pts.endswith('.pts') and stem.isdigit()):
                continue
            number = int(stem)
            if number in broken.get(video, ()):
                continue
            if number not in frames:
                if extracted:
                    why = (f'{video_path} has only {len(frames)} frames '
                           f'(extracted to {frame_dir})')
                elif extract:
                    why = f'{frame_dir} lacks it and {video_path} is missing'
                else:
                    why = (f'{frame_dir} lacks it (--no-extract: run without '
                           f'it to extract {video_path})')
                raise FileNotFoundError(
                    f'{osp.join(annot_dir, pts)} has no frame image '
                    f'{osp.join(frame_dir, f"{number:06d}{ext}")}: {why}. '
                    f'Or list frame {number} of video {video} in '
                    'broken_frames.')
            file_name = f'{video}/{img_dir}/{frames[number]}'
            img = cv2.imread(osp.join(root, file_name))
            if img is None:
                raise IOError(f'cannot read {osp.join(root, file_name)}')
            image_id = len(data['images'])
            data['images'].append(
                dict(file_name=file_name,
                     height=img.shape[0],
                     width=img.shape[1],
                     id=image_id,
                     video_id=video,
                     frame_id=number - 1))
            ann = landmarks_to_annotation(read_pts(osp.join(annot_dir, pts)))
            ann.update(image_id=image_id, id=image_id)
            data['annotations'].append(ann)
    if out_file is not None:
        os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
        with open(out_file, 'w') as f:
            json.dump(data, f)
    return data


def parse_args(argv: Optional[List[str]] = None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('root', help='300VW root (<video>/vid.avi, annot/)')
    parser.add_argument('out_file', help='output JSON')
    parser.add_argument('--videos',
                        nargs='+',
                        default=None,
                        help='all | train | test | 1 | 2 | 3 | video ids')
    parser.add_argument('--broken-frames',
                        default=None,
                        help='.json {video: [1-based frames]} to skip '
                        '(convert MMPose\'s pickled broken_frames.npy with '
                        'broken_frames_to_json.py)')
    parser.add_argument('--img-dir', default='imgs')
    parser.add_argument('--ext', default='.png')
    parser.add_argument('--no-extract', action='store_true')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    videos = args.videos
    if videos is not None and len(videos) == 1:
        videos = videos[0]
    try:
        data = convert(args.root, args.out_file, videos, args.broken_frames,
                       args.img_dir, args.ext, not args.no_extract)
    except (ValueError, OSError) as e:
        # expected failures (missing, malformed or refused files): one line
        print(f'300vw_to_coco.py: error: {e}', file=sys.stderr)
        return 1
    print(f'{len(data["images"])} frames of '
          f'{len({i["video_id"] for i in data["images"]})} videos written to '
          f'{args.out_file}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
