"""Score a tracked video against known landmarks (``demo_video.py
--gt-file``).

The ground truth is a landmark JSON as
``tools/dataset_converters/make_real_face_clip.py`` writes it:
``{"frames": [{"frame_id": t, "keypoints": [[x, y], ...]}, ...]}`` (image
pixels, one face per frame). The tracked video is ``demo_video.py``'s
per-frame records (``frames`` of its output JSON). In each frame with ground
truth, the face whose landmarks are nearest to it (mean point distance) is
the one scored; a frame with no face counts as a miss.
"""
import json
from typing import Dict, List, Sequence

import numpy as np

from .functional import frame_nme, interocular_distance, nmf

__all__ = ['load_ground_truth_track', 'score_against_ground_truth']


def load_ground_truth_track(path: str) -> Dict[int, np.ndarray]:
    """Frame index -> (K, 2) landmarks; every error names ``path``."""
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError(f'{path}: cannot read the landmark JSON ({e})') from e
    frames = data.get('frames') if isinstance(data, dict) else None
    if not isinstance(frames, list) or not frames:
        raise ValueError(f'{path}: found no "frames" list; expected '
                         '{"frames": [{"frame_id", "keypoints"}, ...]} '
                         "(make_real_face_clip.py's JSON)")
    out, shape = {}, None
    for i, entry in enumerate(frames):
        try:
            t = int(entry['frame_id'])
            kpts = np.asarray(entry['keypoints'], np.float64)
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f'{path}: frames[{i}]: expected "frame_id" and '
                             f'"keypoints" [[x, y], ...] ({e})') from e
        if kpts.ndim != 2 or kpts.shape[1] != 2 or not len(kpts) or \
                not np.isfinite(kpts).all():
            raise ValueError(f'{path}: frames[{i}]: keypoints must be finite '
                             f'(K, 2), found shape {kpts.shape}')
        if shape is not None and kpts.shape != shape:
            raise ValueError(f'{path}: frames[{i}]: {kpts.shape[0]} '
                             f'landmarks, earlier frames {shape[0]}')
        if t < 0 or t in out:
            raise ValueError(f'{path}: frames[{i}]: frame_id {t} is negative '
                             'or repeated')
        shape, out[t] = kpts.shape, kpts
    return out


def score_against_ground_truth(records: List[dict],
                               gt: Dict[int, np.ndarray],
                               eye_corners: Sequence[int] = (36, 45)) -> dict:
    """NME and NMF of the stabilised and the raw landmarks.

    Args:
        records (list[dict]): ``demo_video.py``'s frames: ``frame_id`` and
            ``faces`` (each with ``keypoints`` and ``raw_keypoints``, the
            latter possibly ``None``).
        gt (dict): frame index -> (K, 2), :func:`load_ground_truth_track`.
        eye_corners (tuple): NME's normalising pair (0-based; 300W's outer
            eye corners).

    Returns:
        dict: ``frames`` (with ground truth), ``missed`` (no face),
        ``NME`` (% of the eye-corner distance, mean over the scored frames)
        and ``NMF`` (LDEQ's, over the video; missed frames break the
        differences), each as ``{'stabilised': v, 'raw': v}`` (``raw``
        only when every scored face has raw landmarks).
    """
    if not gt:
        raise ValueError('no frame of the video has ground truth landmarks '
                         '(the frame_id values of the landmark JSON are not '
                         'among the frames read)')
    faces = {int(r['frame_id']): r['faces'] for r in records}
    ids = sorted(gt)
    k = gt[ids[0]].shape[0]
    target = np.stack([gt[t] for t in ids])
    series = {s: np.zeros_like(target) for s in ('stabilised', 'raw')}
    found = np.zeros(len(ids), bool)
    has_raw = True
    for i, t in enumerate(ids):
        candidates = faces.get(t) or []
        if not candidates:
            continue
        dist = [np.linalg.norm(np.asarray(f['keypoints']) - gt[t], axis=1)
                .mean() if np.shape(f['keypoints']) == (k, 2) else np.inf
                for f in candidates]
        if not np.isfinite(min(dist)):
            raise ValueError(f'frame {t}: the faces have '
                             f'{np.shape(candidates[0]["keypoints"])[0]} '
                             f'landmarks, the ground truth {k}')
        face = candidates[int(np.argmin(dist))]
        found[i] = True
        series['stabilised'][i] = face['keypoints']
        if face.get('raw_keypoints') is None:
            has_raw = False
        else:
            series['raw'][i] = face['raw_keypoints']
    if not has_raw:
        del series['raw']
    norm = interocular_distance(target, eye_corners)
    mask = np.repeat(found[:, None], k, axis=1)
    out = dict(frames=len(ids), missed=int((~found).sum()), NME={}, NMF={})
    for name, pred in series.items():
        per_frame = frame_nme(pred, target, mask, norm)
        out['NME'][name] = float(100 * np.nanmean(per_frame)) \
            if found.any() else float('nan')
        out['NMF'][name] = nmf(pred, target, mask)
    return out
