"""Face detectors for :class:`~mmstable.apis.StableFaceTracker`.

A detector is any callable ``frame (H, W, 3) uint8 BGR -> (N, 4) or (N, 5)``
array of boxes ``x1, y1, x2, y2[, score]`` in image pixels. Two are provided:
:class:`HaarFaceDetector` (OpenCV's bundled Haar cascade: works offline, no
weights to download) and :class:`MMDetFaceDetector` (any MMDetection model);
both accept the images of :func:`mmstable.apis.image_input.check_image`.
"""
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

from .image_input import check_image

__all__ = ['HaarFaceDetector', 'MMDetFaceDetector', 'HAAR_BOX_ON_LANDMARK_BOX']

#: Where OpenCV's default Haar box sits on a face's 68-landmark box:
#: ``(dx, dy, scale)`` = (Haar centre - landmark box centre) / s and Haar side
#: / s, s = the landmark box's longer side; the mean over the 431 registry
#: faces that both teachers labelled (``label_registry_faces.py``'s
#: ``teacher_report.json``, ``haar_box_on_landmark_box``; std 0.06, 0.03,
#: 0.08): the Haar box is 18 % of the face higher and 18 % larger.
HAAR_BOX_ON_LANDMARK_BOX = (-0.003, -0.181, 1.18)


class HaarFaceDetector:
    """OpenCV's frontal-face Haar cascade (Viola-Jones).

    Ships with ``opencv-python`` (``cv2.data.haarcascades``), so it needs no
    download. It misses profile and strongly rotated faces; its box covers
    brows to chin, roughly a landmark box (what face-alignment models are
    trained on) shifted up and enlarged: by default that offset is undone,
    so the boxes are the square landmark boxes a face-alignment model is
    trained on (MMPose's 300W / WFLW boxes; the test pipeline pads them by
    1.25). All boxes get score 1 (the cascade has none).

    Args:
        cascade_file (str, optional): cascade XML; default
            ``haarcascade_frontalface_default.xml``.
        scale_factor (float), min_neighbors (int), min_size (tuple): as
            :meth:`cv2.CascadeClassifier.detectMultiScale`.
        box_on_landmark_box (tuple, optional): ``(dx, dy, scale)``, where
            the cascade's box sits on the landmark box (in units of its
            side; default :data:`HAAR_BOX_ON_LANDMARK_BOX`, measured on the
            registry faces): each box becomes the square landmark box
            (side / scale, centre - (dx, dy) * side / scale). ``None``: the
            cascade's own boxes (what dlib's shape predictor expects).
    """

    def __init__(self,
                 cascade_file: Optional[str] = None,
                 scale_factor: float = 1.1,
                 min_neighbors: int = 5,
                 min_size: Tuple[int, int] = (24, 24),
                 box_on_landmark_box: Optional[Tuple[float, float, float]] = (
                     HAAR_BOX_ON_LANDMARK_BOX)):
        if box_on_landmark_box is not None:
            values = np.asarray(box_on_landmark_box, np.float64)
            if values.shape != (3, ) or not np.isfinite(values).all() or \
                    values[2] <= 0:
                raise ValueError(
                    'HaarFaceDetector.box_on_landmark_box: expected (dx, dy, '
                    f'scale) with scale > 0, found {box_on_landmark_box!r}')
            box_on_landmark_box = tuple(float(v) for v in values)
        self.box_on_landmark_box = box_on_landmark_box
        if cascade_file is None:
            cascade_file = (cv2.data.haarcascades +
                            'haarcascade_frontalface_default.xml')
        self.cascade = cv2.CascadeClassifier(cascade_file)
        if self.cascade.empty():
            raise FileNotFoundError(
                f'HaarFaceDetector: could not load the cascade {cascade_file}')
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_size = tuple(min_size)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        frame = check_image(frame, 'HaarFaceDetector')
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        boxes = self.cascade.detectMultiScale(
            gray, scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors, minSize=self.min_size)
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        if self.box_on_landmark_box is not None and len(boxes):
            dx, dy, scale = self.box_on_landmark_box
            side = boxes[:, 2:].max(1, keepdims=True) / scale
            centre = boxes[:, :2] + boxes[:, 2:] / 2 - np.array(
                [dx, dy], np.float32) * side
            boxes = np.concatenate([centre - side / 2, side.repeat(2, 1)], 1)
        boxes[:, 2:] += boxes[:, :2]  # xywh -> xyxy
        return np.concatenate([boxes, np.ones((len(boxes), 1), np.float32)],
                              axis=1)


class MMDetFaceDetector:
    """An MMDetection detector (``init_detector`` / ``inference_detector``).

    Args:
        config (str): MMDet config of a face (or person) detector.
        checkpoint (str, optional): its weights (loaded through mmstable's
            safe loader, like every MMEngine checkpoint).
        device (str): e.g. ``'cpu'``, ``'cuda:0'``.
        score_thr (float): keep boxes scoring above it.
        cat_ids (Sequence[int]): labels that count as faces.
    """

    def __init__(self,
                 config: str,
                 checkpoint: Optional[str] = None,
                 device: str = 'cpu',
                 score_thr: float = 0.5,
                 cat_ids: Sequence[int] = (0, )):
        try:
            from mmdet.apis import init_detector
        except ImportError as e:
            raise ImportError(
                'MMDetFaceDetector needs MMDetection (mmdet); it is not '
                'importable here. Use HaarFaceDetector (the default) or '
                'install mmdet.') from e
        import mmstable  # noqa: F401  safe checkpoint loading first
        self.model = init_detector(config, checkpoint, device=device)
        self.score_thr = score_thr
        self.cat_ids = tuple(cat_ids)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        from mmdet.apis import inference_detector
        frame = check_image(frame, 'MMDetFaceDetector')
        pred = inference_detector(self.model, frame).pred_instances
        pred = pred.cpu().numpy()
        keep = (pred.scores > self.score_thr) & np.isin(
            pred.labels, self.cat_ids)
        return np.concatenate(
            [pred.bboxes[keep], pred.scores[keep, None]],
            axis=1).astype(np.float32)
