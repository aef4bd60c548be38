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

__all__ = ['HaarFaceDetector', 'MMDetFaceDetector']


class HaarFaceDetector:
    """OpenCV's frontal-face Haar cascade (Viola-Jones).

    Ships with ``opencv-python`` (``cv2.data.haarcascades``), so it needs no
    download. It misses profile and strongly rotated faces; its box covers
    brows to chin, roughly a landmark box (what face-alignment models are
    trained on) shifted up. All boxes get score 1 (the cascade has none).

    Args:
        cascade_file (str, optional): cascade XML; default
            ``haarcascade_frontalface_default.xml``.
        scale_factor (float), min_neighbors (int), min_size (tuple): as
            :meth:`cv2.CascadeClassifier.detectMultiScale`.
    """

    def __init__(self,
                 cascade_file: Optional[str] = None,
                 scale_factor: float = 1.1,
                 min_neighbors: int = 5,
                 min_size: Tuple[int, int] = (24, 24)):
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
