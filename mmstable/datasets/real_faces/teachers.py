"""Label the fetched registry photos with two 68-point teachers.

Faces are found by OpenCV's Haar cascade (:class:`~mmstable.apis.
HaarFaceDetector`) and dlib's HOG detector (dlib-bin); each box is labelled
by

- dlib's shape predictor, ``shape_predictor_68_face_landmarks.dat`` of PyPI
  ``face-recognition-models`` 0.3.0, and
- OpenCV's LBF facemark (``cv2.face.createFacemarkLBF``, opencv-contrib),
  model ``landmark.yaml`` of PyPI ``GoldenFace`` 1.1.

Both were trained on iBUG 300-W, whose terms are non-commercial: so are the
labels. Agreement, the label, identities and splits follow
:mod:`.labels`. Two boxes of one face keep the better-agreeing one.

Outputs (under the fetch root, beside ``manifest.json``)::

    annotations/teacher_labels_{all,train,val,test}.json  MMPose COCO, 300W
    annotations/teacher_report.json                       counts, stats

Image entries carry ``file_name`` relative to the root; annotations carry
``identity``, ``split``, ``teacher_disagreement`` (%) and ``package``.
"""
import json
import os.path as osp
import time
from typing import Callable, List, Tuple

import cv2
import numpy as np

from .fetch import manifest_files, teacher_file
from .labels import (SPLITS, box_offset, coco_annotation, dedupe_faces,
                     disagreement_stats, identity_of, merge_teachers,
                     split_group, split_identities, write_coco)

DLIB_PACKAGE = 'face-recognition-models'
LBF_PACKAGE = 'GoldenFace'
LICENCE = ('landmark labels by dlib shape_predictor_68_face_landmarks and '
           'OpenCV LBF (GoldenFace landmark.yaml), both trained on iBUG 300-W:'
           ' non-commercial research use only')


def label_file(root: str, split: str = 'all') -> str:
    """``<root>/annotations/teacher_labels_<split>.json``."""
    if split not in SPLITS + ('all', ):
        raise ValueError(f'split: expected one of {SPLITS + ("all", )}, '
                         f'found {split!r}')
    return osp.join(root, 'annotations', f'teacher_labels_{split}.json')


class Teachers:
    """Detector + the two teachers, loaded once (the LBF model: ~5 s)."""

    def __init__(self, root: str):
        try:
            import dlib
        except ImportError as e:
            raise ImportError(
                'the dlib teacher needs dlib-bin (requirements/runtime.txt); '
                'run bash tools/setup_env.sh') from e
        if not hasattr(cv2, 'face'):
            raise ImportError(
                'the LBF teacher needs cv2.face from '
                'opencv-contrib-python-headless (requirements/runtime.txt), '
                'found an OpenCV without it; uninstall opencv-python and run '
                'bash tools/setup_env.sh')
        from mmstable.apis.face_detectors import HaarFaceDetector
        self.dlib = dlib
        self.predictor = dlib.shape_predictor(teacher_file(root,
                                                           DLIB_PACKAGE))
        self.lbf = cv2.face.createFacemarkLBF()
        self.lbf.loadModel(teacher_file(root, LBF_PACKAGE))
        self.haar = HaarFaceDetector(min_size=(40, 40),
                                     box_on_landmark_box=None)
        self.hog = dlib.get_frontal_face_detector()

    def detect(self, img: np.ndarray) -> Tuple[np.ndarray, int]:
        """(N, 4) ``x1, y1, x2, y2`` boxes, Haar's then HOG's, and how many
        are Haar's."""
        boxes = [self.haar(img)[:, :4]]
        gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        rects = self.hog(gray, 1 if max(gray.shape) < 1200 else 0)
        boxes.append(np.array([[r.left(), r.top(), r.right(), r.bottom()]
                               for r in rects], np.float32).reshape(-1, 4))
        return np.concatenate(boxes), len(boxes[0])

    def landmarks(self, img: np.ndarray,
                  boxes: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """dlib's and LBF's (N, 68, 2) landmarks in the boxes."""
        if len(boxes) == 0:
            empty = np.zeros((0, 68, 2))
            return empty, empty
        gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        a = np.stack([
            np.array([[p.x, p.y] for p in self.predictor(
                gray, self.dlib.rectangle(*(int(round(v)) for v in b))
            ).parts()], np.float64) for b in boxes
        ])
        xywh = np.round(np.concatenate([boxes[:, :2], boxes[:, 2:] -
                                        boxes[:, :2]], 1)).astype(np.int32)
        ok, lbf = self.lbf.fit(img, xywh)
        if not ok or len(lbf) != len(boxes):
            raise RuntimeError('cv2.face LBF fit failed on '
                               f'{len(boxes)} boxes')
        b = np.stack([np.asarray(x, np.float64).reshape(68, 2) for x in lbf])
        return a, b


def _working_image(img: np.ndarray) -> Tuple[np.ndarray, float, int]:
    """The photo at a size the detectors handle: small photos (ORL's
    92x112) are doubled and padded (Haar misses faces that fill the frame),
    huge ones reduced to a longer side of 2000 px. Returns (image, scale,
    pad): :func:`to_original` maps its pixels back."""
    h, w = img.shape[:2]
    scale = 1.
    if max(h, w) > 2000:
        scale = 2000. / max(h, w)
    elif max(h, w) < 700:
        scale = 2.
    if scale != 1:
        img = cv2.resize(img, None, fx=scale, fy=scale,
                         interpolation=cv2.INTER_AREA if scale < 1 else
                         cv2.INTER_CUBIC)
    pad = int(0.3 * max(img.shape[:2])) if max(h, w) < 200 else 0
    if pad:
        img = cv2.copyMakeBorder(img, pad, pad, pad, pad,
                                 cv2.BORDER_REPLICATE)
    return img, scale, pad


def to_original(points: np.ndarray, scale: float, pad: int) -> np.ndarray:
    """Working-image pixels of :func:`_working_image` -> the photo's
    (pixel centres at integer coordinates: a resize by ``scale`` maps x to
    (x + 0.5) * scale - 0.5)."""
    return (np.asarray(points, np.float64) - pad + 0.5) / scale - 0.5


def label_registry_faces(root: str = 'data/registry_faces',
                         agreement_threshold: float = 5.,
                         seed: int = 0,
                         log: Callable[[str], None] = print) -> dict:
    """Detect, label, keep agreeing faces, split by identity, write the COCO
    files and the report; returns the report."""
    t0 = time.perf_counter()
    photos = manifest_files(root, 'photo')
    teachers = Teachers(root)
    t_load = time.perf_counter() - t0
    images, faces = [], []
    found, disagreements, haar_offsets = 0, [], []
    for entry in photos:
        img = cv2.imread(osp.join(root, entry['file']), cv2.IMREAD_COLOR)
        if img is None:
            raise OSError(f'{osp.join(root, entry["file"])}: not a readable '
                          'image (listed in manifest.json; run the fetch '
                          'tool with --verify)')
        work, scale, pad = _working_image(img)
        boxes, n_haar = teachers.detect(work)
        a, b = teachers.landmarks(work, boxes)
        merged = [merge_teachers(x, y, agreement_threshold)
                  for x, y in zip(a, b)]
        keep = dedupe_faces([m[1] for m in merged], [m[2] for m in merged])
        found += len(keep)
        img_id = len(images)
        n_kept = 0
        for i in keep:
            ok, label, d = merged[i]
            disagreements.append(d)
            if not ok:
                continue
            offset = box_offset(label, boxes[:n_haar])
            if offset is not None:
                haar_offsets.append(offset)
            label = to_original(label, scale, pad)
            faces.append(dict(
                img_id=img_id, label=label, disagreement=d,
                identity=identity_of(entry['package'], entry['path'],
                                     n_kept),
                package=entry['package']))
            n_kept += 1
        if n_kept:
            images.append(dict(
                id=img_id, file_name=entry['file'], height=img.shape[0],
                width=img.shape[1], package=entry['package'],
                version=entry['version'], sha256=entry['sha256']))
    groups = split_identities([split_group(f['identity']) for f in faces],
                              seed)
    splits = {f['identity']: groups[split_group(f['identity'])]
              for f in faces}
    anns = {s: [] for s in SPLITS}
    for k, f in enumerate(faces):
        split = splits[f['identity']]
        anns[split].append(coco_annotation(
            f['label'], k, f['img_id'], identity=f['identity'], split=split,
            teacher_disagreement=round(f['disagreement'], 3),
            package=f['package']))
    info = dict(description='registry faces labelled by two teachers '
                '(mmstable issue 11)', licence=LICENCE,
                agreement_threshold=agreement_threshold, seed=seed)
    for split in SPLITS + ('all', ):
        a = (sum(anns.values(), []) if split == 'all' else anns[split])
        ids = {x['image_id'] for x in a}
        write_coco(label_file(root, split),
                   [im for im in images if im['id'] in ids],
                   sorted(a, key=lambda x: x['id']), dict(info, split=split))
    kept = np.array([f['disagreement'] for f in faces])
    report = dict(
        photos=len(photos), faces_detected=found, faces_kept=len(faces),
        identities=len(splits), split_groups=len(groups),
        identities_per_split={s: sum(v == s for v in splits.values())
                              for s in SPLITS},
        faces_per_split={s: len(anns[s]) for s in SPLITS},
        agreement_threshold=agreement_threshold,
        disagreement_all=disagreement_stats(disagreements),
        disagreement_kept=disagreement_stats(kept),
        per_package={p: sum(f['package'] == p for f in faces)
                     for p in sorted({e['package'] for e in photos})},
        haar_box_on_landmark_box=_mean_offset(haar_offsets),
        seconds=round(time.perf_counter() - t0, 1),
        seconds_loading_teachers=round(t_load, 1), licence=LICENCE)
    with open(osp.join(root, 'annotations', 'teacher_report.json'),
              'w') as f:
        json.dump(report, f, indent=1)
    log(f'label_registry_faces: {len(photos)} photos, {found} faces '
        f'detected, {len(faces)} kept (teachers within '
        f'{agreement_threshold:g} % IOD), {len(splits)} identities '
        f'{report["identities_per_split"]}; disagreement median '
        f'{report["disagreement_all"].get("median")} %; '
        f'{report["seconds"]:.0f} s')
    return report


def _mean_offset(offsets) -> dict:
    """Where OpenCV's Haar box sits on the kept faces' landmark box (see
    :func:`.labels.box_offset`): a tracker that feeds Haar boxes to a model
    trained on landmark boxes can undo it (centre - (dx, dy) * s, side /
    scale)."""
    if not offsets:
        return dict(count=0)
    o = np.asarray(offsets)
    return dict(count=len(o), dx=round(float(o[:, 0].mean()), 3),
                dy=round(float(o[:, 1].mean()), 3),
                scale=round(float(o[:, 2].mean()), 3),
                std=[round(float(v), 3) for v in o.std(0)])


def labels_ready(root: str) -> bool:
    return all(osp.isfile(label_file(root, s)) for s in SPLITS + ('all', ))


def load_faces(root: str, split: str) -> List[dict]:
    """The kept faces of ``split``: dicts with ``image`` (path), ``label``
    (68, 2), ``identity``, ``id``."""
    path = label_file(root, split)
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'{path}: not found (expected the teacher labels); run python '
            f'tools/dataset_converters/label_registry_faces.py --root {root}')
    with open(path) as f:
        data = json.load(f)
    files = {im['id']: im['file_name'] for im in data['images']}
    return [dict(image=osp.join(root, files[a['image_id']]),
                 label=np.asarray(a['keypoints'], np.float64).reshape(
                     -1, 3)[:, :2], identity=a['identity'], id=a['id'])
            for a in data['annotations']]
