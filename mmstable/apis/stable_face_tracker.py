"""Streaming face alignment: frames in one at a time, landmarks out per track.

:class:`StableFaceTracker` is to a video what :func:`mmpose.apis.
inference_topdown` is to an image, and is built on it: per frame it takes the
face boxes (given, or from a detector), associates them with the faces of the
previous frame (tracks), runs the model on all faces of the frame in one
batch (``inference_topdown``: the config's test pipeline, ``pseudo_collate``,
``model.test_step``) and returns the landmarks per track.

A track is a video in the sense of docs/conventions.md §1: every face's data
sample carries ``video_id`` (unique per track), ``frame_id`` (the tracker's
frame index; consecutive while the track lives) and ``clip_len=1``, so
:class:`~mmstable.models.ConvLSTMRefineHead` continues each track's recurrent
state from the previous frame and starts a new track from the initial state.
A track ends on the first frame where no box matches it; a face that comes
back is a new track (new ``video_id``, reset state, fresh filter).
"""
import copy
import itertools
from typing import Callable, List, NamedTuple, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from mmpose.apis import inference_topdown
from mmpose.structures.bbox import bbox_overlaps

from ..evaluation.filters import BaseTemporalFilter, build_filter
from .image_input import check_boxes, check_image

__all__ = ['StableFaceTracker', 'TrackResult']

FilterLike = Union[str, dict, BaseTemporalFilter]

_TRACKERS = itertools.count()  # makes video_ids unique across trackers


class TrackResult(NamedTuple):
    """One face in one frame; all coordinates in image pixels.

    Attributes:
        track_id (int): the face's id, stable while it is tracked.
        keypoints (np.ndarray): (K, 2) the landmarks: the refined ones of an
            mmstable model, or a plain model's, through the tracker's
            ``filter`` when it has one.
        scores (np.ndarray): (K,) the model's keypoint scores.
        bbox (np.ndarray): (4,) ``x1, y1, x2, y2``, the box the face was
            cropped with.
        raw_keypoints (np.ndarray | None): (K, 2) the image model's own
            landmarks (frozen model of an mmstable model, which reports them
            with ``test_cfg['output_raw']``; a plain model's unfiltered
            output); ``None`` where the model does not report them.
        track_frame (int): frames of this track before this one; 0 on a
            track's first frame (initial refiner state, fresh filter).
    """
    track_id: int
    keypoints: np.ndarray
    scores: np.ndarray
    bbox: np.ndarray
    raw_keypoints: Optional[np.ndarray]
    track_frame: int


class _Track:
    __slots__ = ('track_id', 'video_id', 'bbox', 'keypoints', 'filter',
                 'length')

    def __init__(self, track_id: int, video_id: str,
                 filt: Optional[BaseTemporalFilter]):
        self.track_id = track_id
        self.video_id = video_id
        self.filter = filt
        self.bbox = None  # last crop box (4,)
        self.keypoints = None  # last model output (K, 2), before filtering
        self.length = 0


class _TrackStampedModel:
    """What :func:`inference_topdown` is given: the model, whose
    ``test_step`` first stamps each face's data sample with its track's
    ``video_id`` / ``frame_id`` / ``clip_len`` (inference_topdown builds the
    samples from the image, the box and ``dataset_meta`` only)."""

    def __init__(self, model: nn.Module, metainfos: Sequence[dict]):
        self.model = model
        self.cfg = model.cfg
        self.dataset_meta = model.dataset_meta
        self.metainfos = metainfos

    def test_step(self, data: dict) -> list:
        samples = data['data_samples']
        assert len(samples) == len(self.metainfos)
        for sample, metainfo in zip(samples, self.metainfos):
            sample.set_metainfo(metainfo)
        return self.model.test_step(data)


class StableFaceTracker:
    """Feed a video frame by frame; get landmarks per tracked face.

    Works with an mmstable model (``StableTopdownPoseEstimator`` +
    ``ConvLSTMRefineHead``: the refiner's state follows each track) and with
    a plain MMPose top-down heatmap model (no state: landmarks per frame,
    optionally smoothed by an online ``filter`` per track — the baseline to
    measure before fine-tuning). Build the model with
    :func:`mmstable.apis.init_model` (it needs ``model.cfg`` and
    ``model.dataset_meta``, like ``inference_topdown``).

    Association (``track_by``): a box continues the track whose reference box
    it overlaps most (greedy, highest IoU first, IoU > ``iou_thr``); the
    reference is

    - ``'bbox'``: the track's box in the previous frame;
    - ``'landmarks'``: the bounding box of the track's landmarks in the
      previous frame, which is then also the crop for this frame (as
      MediaPipe's face landmarker derives the next ROI from the landmarks):
      the crop follows the face smoothly instead of the detector's jitter.
      Face-alignment models are trained on landmark-derived boxes (the
      test pipeline's ``GetBBoxCenterScale`` pads them), so this also
      matches their training crops. The detector then only confirms the face
      and starts new tracks.

    Unmatched boxes start new tracks; unmatched tracks end, and their state
    (refiner, filter) is dropped. A change of frame size ends all tracks (old
    boxes do not describe the new frames).

    The refiner's state lives in the model's head, so drive one model with
    one tracker at a time; the tracker resets the head when it starts and
    when it has no track left.

    Args:
        model (nn.Module): top-down heatmap face model from
            :func:`mmstable.apis.init_model`.
        detector (callable, optional): ``frame -> (N, 4 or 5)`` boxes
            ``x1, y1, x2, y2[, score]`` (e.g.
            :class:`~mmstable.apis.HaarFaceDetector`); used when
            :meth:`update` gets no boxes.
        filter (str | dict | BaseTemporalFilter, optional): an online
            filter applied per track to ``keypoints`` (a preset name of
            :data:`mmstable.evaluation.filters.FILTER_PRESETS`, a config
            such as ``dict(type='OneEuroFilter')``, or an instance, copied
            per track).
        iou_thr (float): minimum IoU to continue a track.
        track_by (str): ``'bbox'`` or ``'landmarks'``, see above.
        max_faces (int, optional): keep at most this many boxes per frame
            (highest score, then largest).
        output_raw (bool): ask an mmstable model for the frozen model's
            landmarks too (sets ``model.test_cfg['output_raw']``).
        invalid_boxes (str): what to do with a face box (given or
            detected) that has a NaN/inf value, is inverted or has zero
            area, or lies entirely outside the frame: ``'error'`` (default:
            ``ValueError`` naming the frame and the box) or ``'skip'`` (a
            warning naming them). See :mod:`mmstable.apis.image_input`.
    """

    def __init__(self,
                 model: nn.Module,
                 detector: Optional[Callable[[np.ndarray],
                                             np.ndarray]] = None,
                 filter: Optional[FilterLike] = None,
                 iou_thr: float = 0.3,
                 track_by: str = 'bbox',
                 max_faces: Optional[int] = None,
                 output_raw: bool = True,
                 invalid_boxes: str = 'error'):
        for attr in ('cfg', 'dataset_meta'):
            if getattr(model, attr, None) is None:
                raise ValueError(
                    f'StableFaceTracker: the model has no `{attr}`; build it '
                    'with mmstable.apis.init_model(config, checkpoint).')
        try:
            model.cfg.test_dataloader.dataset.pipeline
        except AttributeError as e:
            raise ValueError(
                'StableFaceTracker: the model config has no '
                'test_dataloader.dataset.pipeline (the test pipeline the '
                f'faces are cropped with); config: {model.cfg.filename}'
            ) from e
        if track_by not in ('bbox', 'landmarks'):
            raise ValueError("StableFaceTracker.track_by must be 'bbox' or "
                             f"'landmarks', got {track_by!r}")
        if invalid_boxes not in ('error', 'skip'):
            raise ValueError("StableFaceTracker.invalid_boxes must be 'error'"
                             f" or 'skip', got {invalid_boxes!r}")
        if max_faces is not None and max_faces < 1:
            raise ValueError('StableFaceTracker.max_faces must be >= 1 or '
                             f'None, got {max_faces}')
        if not 0 <= iou_thr < 1:
            raise ValueError(
                f'StableFaceTracker.iou_thr must be in [0, 1), got {iou_thr}')
        self.model = model
        self.detector = detector
        self.iou_thr = float(iou_thr)
        self.track_by = track_by
        self.max_faces = max_faces
        self.invalid_boxes = invalid_boxes
        self.stateful = callable(getattr(model.head, 'reset_state', None))
        if output_raw and self.stateful:
            if model.test_cfg is None:
                model.test_cfg = {}
            model.test_cfg['output_raw'] = True

        self._filter_cfg = filter
        if filter is not None:
            name, filt = build_filter(filter)
            if not filt.online:
                raise ValueError(
                    f'StableFaceTracker: filter {name} ({type(filt).__name__})'
                    ' is offline (needs the whole track); streaming needs an '
                    'online filter such as OneEuroFilter.')
        self._prefix = f'tracker{next(_TRACKERS)}'
        self._next_id = 0
        self.reset()

    # --------------------------------------------------------------- state
    def reset(self) -> None:
        """End all tracks and reset the refiner (e.g. at a new video)."""
        self._tracks: List[_Track] = []
        self._frame_index = -1
        self._frame_shape = None
        self._reset_head()

    @property
    def frame_index(self) -> int:
        """Index of the last frame given to :meth:`update` (-1: none)."""
        return self._frame_index

    @property
    def track_ids(self) -> List[int]:
        """Ids of the live tracks."""
        return [t.track_id for t in self._tracks]

    def _reset_head(self) -> None:
        if self.stateful:
            self.model.head.reset_state()

    def _new_track(self) -> _Track:
        track_id = self._next_id
        self._next_id += 1
        filt = None
        if self._filter_cfg is not None:
            cfg = self._filter_cfg
            filt = copy.deepcopy(cfg) if isinstance(
                cfg, BaseTemporalFilter) else build_filter(cfg)[1]
            filt.reset()
        return _Track(track_id, f'{self._prefix}/face{track_id}', filt)

    # -------------------------------------------------------------- update
    def update(self,
               frame: np.ndarray,
               bboxes: Optional[Union[np.ndarray, Sequence]] = None
               ) -> List[TrackResult]:
        """Process the next frame.

        Args:
            frame (np.ndarray): (H, W, 3) uint8 BGR image, as OpenCV reads
                it; float in [0, 255] is rounded to uint8, (H, W) and
                (H, W, 1) grey and (H, W, 4) BGRA are converted, other dtypes
                (bool, uint16, float in [0, 1]) are refused
                (:func:`mmstable.apis.image_input.check_image`).
            bboxes (array-like, optional): (N, 4) or (N, 5) face boxes
                ``x1, y1, x2, y2[, score]`` in image pixels; an empty array
                means no face in this frame. ``None``: ask the ``detector``,
                or without one use the whole frame as one face (as
                ``inference_topdown`` does). Invalid boxes: see
                ``invalid_boxes``.

        Returns:
            list[TrackResult]: one per face, in the order of the boxes.
        """
        # the frame and its boxes are checked before any state changes: a
        # refused frame does not count
        where = f'StableFaceTracker.update (frame {self._frame_index + 1})'
        frame = check_image(frame, where)
        boxes = self._get_boxes(frame, bboxes, where)
        self._frame_index += 1
        if self._frame_shape is not None and \
                frame.shape[:2] != self._frame_shape:
            self._tracks = []
        self._frame_shape = frame.shape[:2]

        matched = self._associate(boxes)
        # unmatched tracks end here; their refiner state is dropped by the
        # head (absent video_id) or by the reset below
        tracks, crops = [], []
        for box, track in zip(boxes, matched):
            if track is None:
                track = self._new_track()
            elif self.track_by == 'landmarks':
                box = _landmark_box(track.keypoints)
            tracks.append(track)
            crops.append(np.asarray(box[:4], dtype=np.float32))
        self._tracks = tracks
        if not tracks:
            self._reset_head()
            return []

        metainfos = [
            dict(video_id=t.video_id, frame_id=self._frame_index, clip_len=1)
            for t in tracks
        ]
        samples = inference_topdown(
            _TrackStampedModel(self.model, metainfos), frame, np.stack(crops),
            bbox_format='xyxy')

        results = []
        for track, crop, sample in zip(tracks, crops, samples):
            pred = sample.pred_instances
            keypoints = _to_numpy(pred.keypoints)[0]
            scores = _to_numpy(pred.keypoint_scores)[0]
            if 'raw_keypoints' in pred:
                raw = _to_numpy(pred.raw_keypoints)[0]
            else:
                raw = None if self.stateful else keypoints
            track.bbox, track.keypoints = crop, keypoints
            out = keypoints
            if track.filter is not None:
                out = track.filter.step(keypoints, t=self._frame_index)
            results.append(
                TrackResult(track.track_id, out, scores, crop, raw,
                            track.length))
            track.length += 1
        return results

    # ------------------------------------------------------------- helpers
    def _get_boxes(self, frame: np.ndarray, bboxes, where: str) -> np.ndarray:
        if bboxes is None:
            if self.detector is not None:
                bboxes = self.detector(frame)
            else:
                h, w = frame.shape[:2]
                bboxes = [[0, 0, w, h]]
        boxes = check_boxes(bboxes, frame.shape[:2], where,
                            self.invalid_boxes)
        if self.max_faces is not None and len(boxes) > self.max_faces:
            area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
            order = np.lexsort((-area, -boxes[:, 4]))
            boxes = boxes[np.sort(order[:self.max_faces])]
        return boxes.astype(np.float32)

    def _associate(self, boxes: np.ndarray) -> List[Optional[_Track]]:
        """Greedy IoU matching; the matched track (or None) per box."""
        matched: List[Optional[_Track]] = [None] * len(boxes)
        if not len(boxes) or not self._tracks:
            return matched
        refs = np.stack([
            _landmark_box(t.keypoints) if self.track_by == 'landmarks' else
            t.bbox for t in self._tracks
        ])
        ious = bbox_overlaps(
            torch.from_numpy(boxes[:, :4]).double(),
            torch.from_numpy(refs).double()).numpy()
        used = set()
        for flat in np.argsort(-ious, axis=None, kind='stable'):
            i, j = np.unravel_index(flat, ious.shape)
            if ious[i, j] <= self.iou_thr:
                break
            if matched[i] is None and j not in used:
                matched[i] = self._tracks[j]
                used.add(j)
        return matched


def _landmark_box(keypoints: np.ndarray) -> np.ndarray:
    kpts = keypoints[np.isfinite(keypoints).all(1)]
    return np.concatenate([kpts.min(0), kpts.max(0)]).astype(np.float32)


def _to_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)
