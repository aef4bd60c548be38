"""A webcam-like clip of a held-out real face, with its exact landmarks:
for trying ``tools/demo_video.py`` (and testing it) on real texture with
ground truth.

:func:`write_face_clip` animates one labelled photo of a split (default
``test``: identities no model was trained on) with a synthetic motion preset
into a W x H video (default 640 x 360, 25 fps, mp4v) and writes beside it
``<name>.json``: ``{"frames": [{"frame_id", "keypoints" (68 x [x, y])}],
"identity", "photo", "preset", "licence"}``, image pixels, 0-based.
"""
import json
import os
import os.path as osp
from typing import Tuple

import cv2

from ..synthetic.generator import FaceVideoGenerator, video_key
from .animate import animate_photo
from .teachers import LICENCE, load_faces
from .writer import face_schedule


def write_face_clip(out_path: str,
                    faces_root: str = 'data/registry_faces',
                    split: str = 'test',
                    index: int = 0,
                    preset: str = 'talking',
                    num_frames: int = 72,
                    frame_size: Tuple[int, int] = (640, 360),
                    fps: float = 25.,
                    seed: int = 0) -> dict:
    """Write the clip and its landmark JSON; returns the JSON's content
    plus ``video`` and ``json`` paths."""
    if not out_path.endswith('.mp4'):
        raise ValueError(f'out_path: expected a .mp4 path, found {out_path}')
    w, h = frame_size
    side = min(w, h)
    gen = FaceVideoGenerator.from_preset(
        preset, image_size=side, face_size=(0.3 * side, 0.42 * side))
    faces = load_faces(faces_root, split)
    face = face_schedule(faces, index + 1, seed, split)[index]
    video = animate_photo(cv2.imread(face['image'], cv2.IMREAD_COLOR),
                          face['label'], gen, video_key(seed, split, index),
                          num_frames, frame_size=(w, h))
    os.makedirs(osp.dirname(osp.abspath(out_path)), exist_ok=True)
    writer = cv2.VideoWriter(out_path, cv2.VideoWriter_fourcc(*'mp4v'), fps,
                             (w, h))
    if not writer.isOpened():
        raise OSError(f'{out_path}: OpenCV cannot write mp4v video here')
    for frame in video.frames:
        writer.write(frame)
    writer.release()
    meta = dict(identity=face['identity'], photo=face['image'],
                preset=preset, split=split, fps=fps, width=w, height=h,
                licence=LICENCE,
                frames=[dict(frame_id=t, keypoints=[[round(float(x), 3),
                                                     round(float(y), 3)]
                                                    for x, y in k])
                        for t, k in enumerate(video.keypoints)])
    json_path = osp.splitext(out_path)[0] + '.json'
    with open(json_path, 'w') as f:
        json.dump(meta, f)
    return dict(meta, video=out_path, json=json_path)
