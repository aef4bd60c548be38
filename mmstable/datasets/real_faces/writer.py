"""Write real-textured face videos (:mod:`.animate`) of one identity split
in the layout of the synthetic videos (:func:`~mmstable.datasets.synthetic.
write_split`), so :class:`~mmstable.datasets.RealFaceVideoDataset` reads them
exactly as :class:`~mmstable.datasets.SyntheticFaceVideoDataset` reads its
own::

    <out>/images/<video_prefix>_<index>/<frame:06d>.jpg
    <out>/annotations/face_landmarks_synthetic_<split>[_<preset>].json

Video ``v`` of split ``s`` animates a labelled face of an identity of split
``s`` only (``teacher_labels_<s>.json``): identities are taken round-robin in
a seeded order (so each identity gets its share of videos, however many
photos it has -- ORL's 40 people have 10 each), photos of an identity in
turn; its trajectory is the synthetic video ``video_key(seed, s, v)``.
"""
import json
import os
import os.path as osp
import time
import zlib
from typing import Dict, List, Optional, Union

import cv2
import numpy as np

from ..synthetic.generator import (_IMWRITE_PARAMS, DEFAULT_SPLIT_SIZES,
                                   FORMAT_VERSION, FaceVideoGenerator,
                                   _annotation, _check_frames, check_split,
                                   default_ann_file, video_key,
                                   write_coco_split)
from .animate import animate_photo
from .fetch import sha256_file
from .teachers import LICENCE, label_file, load_faces


#: version of the real-textured layout (1: per-image ``identity_index``)
REAL_FORMAT_VERSION = 1


def face_schedule(faces: List[dict], num_videos: int, seed: int,
                  split: str) -> List[dict]:
    """The face animated by each video: identities round-robin in a seeded
    order, each identity's photos in turn."""
    if not faces:
        raise ValueError(f'split {split!r} has no labelled faces (teacher '
                         'labels); relabel with a higher '
                         '--agreement-threshold or another --seed')
    by_id: Dict[str, List[dict]] = {}
    for f in faces:
        by_id.setdefault(f['identity'], []).append(f)
    ids = sorted(by_id,
                 key=lambda s: (zlib.crc32(f'{seed}/{split}/{s}'.encode()),
                                s))
    return [
        by_id[ids[v % len(ids)]][(v // len(ids)) % len(by_id[ids[v % len(
            ids)]])] for v in range(num_videos)
    ]


def write_real_split(out_dir: str,
                     split: str,
                     num_videos: Optional[int] = None,
                     num_frames: Optional[int] = None,
                     seed: int = 0,
                     generator: Optional[Union[FaceVideoGenerator,
                                               dict]] = None,
                     ann_file: Optional[str] = None,
                     img_prefix: str = 'images/',
                     img_ext: str = '.jpg',
                     video_prefix: Optional[str] = None,
                     faces_root: str = 'data/registry_faces') -> Dict:
    """Animate ``num_videos`` faces of ``split`` into ``out_dir``; the
    arguments and the returned ``info`` are those of
    :func:`~mmstable.datasets.synthetic.write_split`, plus ``faces_root``
    (the fetched and labelled registry faces)."""
    check_split(split)
    if img_ext not in _IMWRITE_PARAMS:
        raise ValueError(f'img_ext must be one of {tuple(_IMWRITE_PARAMS)}, '
                         f'got {img_ext!r}')
    dv, df = DEFAULT_SPLIT_SIZES[split]
    num_videos = dv if num_videos is None else int(num_videos)
    num_frames = _check_frames(df if num_frames is None else num_frames)
    if num_videos < 1:
        raise ValueError(f'num_videos must be >= 1, got {num_videos}')
    if generator is None:
        generator = FaceVideoGenerator()
    elif isinstance(generator, dict):
        generator = FaceVideoGenerator(**generator)
    ann_file = ann_file or default_ann_file(split)
    t0 = time.perf_counter()
    schedule = face_schedule(load_faces(faces_root, split), num_videos, seed,
                             split)
    # the person's index among the split's identities (the identity label
    # of DecoupledRecurrentRefineHead)
    people = {p: i for i, p in enumerate(sorted({f['identity']
                                                 for f in schedule}))}
    images, annotations, photos = [], [], {}
    size = generator.image_size
    for v, face in enumerate(schedule):
        video_id = f'{video_prefix or split}_{v:03d}'
        if face['image'] not in photos:
            photos = {face['image']: cv2.imread(face['image'],
                                                cv2.IMREAD_COLOR)}
        video = animate_photo(photos[face['image']], face['label'],
                              generator, video_key(seed, split, v),
                              num_frames)
        os.makedirs(osp.join(out_dir, img_prefix, video_id), exist_ok=True)
        for t in range(num_frames):
            file_name = f'{video_id}/{t:06d}{img_ext}'
            path = osp.join(out_dir, img_prefix, file_name)
            if not cv2.imwrite(path, video.frames[t],
                               _IMWRITE_PARAMS[img_ext]):
                raise OSError(f'could not write {path}')
            img_id = len(images)
            images.append(dict(
                id=img_id, file_name=file_name, height=size, width=size,
                video_id=video_id, frame_id=t, identity=face['identity'],
                identity_index=people[face['identity']],
                source_face=int(face['id'])))
            annotations.append(_annotation(video.keypoints[t], img_id))
    info = dict(
        description='mmstable real-textured face videos: registry photos '
        'labelled by two teachers, animated by the synthetic trajectories',
        version=FORMAT_VERSION, split=split, seed=int(seed),
        num_videos=num_videos, num_frames=num_frames, img_ext=img_ext,
        generator=generator.config(), faces_root=faces_root,
        labels_sha256=sha256_file(label_file(faces_root, split)),
        identities=sorted(people), real_format=REAL_FORMAT_VERSION,
        licence=LICENCE)
    return write_coco_split(out_dir, ann_file, info, images, annotations,
                            t0)


def frame_landmarks(ann_path: str) -> np.ndarray:
    """(N, 68, 2) landmarks of a written split, in image order."""
    with open(ann_path) as f:
        data = json.load(f)
    return np.asarray([a['keypoints'] for a in data['annotations']],
                      np.float64).reshape(len(data['annotations']), -1,
                                          3)[..., :2]
