"""Per-video NME / 300VW NRMSE with AUC and failure rate."""
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmpose.evaluation.metrics import NME
from mmpose.registry import METRICS

from ..functional import ced_auc_fr, frame_nme, interocular_distance
from .base_video_metric import BaseVideoMetric, _to_numpy


def nme_keypoint_indices(keypoint_indices: Optional[Sequence[int]],
                         dataset_meta: Optional[dict],
                         who: str = 'VideoNME') -> Sequence[int]:
    """The landmark pair that normalises NME: ``keypoint_indices`` if given,
    else :attr:`VideoNME.DEFAULT_KEYPOINT_INDICES` of
    ``dataset_meta['dataset_name']``."""
    if keypoint_indices is not None:
        return keypoint_indices
    name = (dataset_meta or {}).get('dataset_name')
    if name not in VideoNME.DEFAULT_KEYPOINT_INDICES:
        raise KeyError(
            f'{who}: no default keypoint_indices for dataset_name {name!r} '
            f'(known: {sorted(VideoNME.DEFAULT_KEYPOINT_INDICES)}); set '
            f'{who}.keypoint_indices in the evaluator config '
            '(keypoint_indices=(36, 45) for 68-point 300VW)')
    return VideoNME.DEFAULT_KEYPOINT_INDICES[name]


@METRICS.register_module()
class VideoNME(BaseVideoMetric):
    """Normalised mean error of video predictions (300VW's NRMSE), AUC, FR.

    Per frame, NME_t = mean over visible landmarks of ‖p − g‖ / d_t
    (MMPose's :func:`~mmpose.evaluation.functional.keypoint_nme`), a fraction
    as MMPose's ``NME`` reports it. d_t is, with
    ``norm_mode='keypoint_distance'``, the ground-truth distance between
    ``keypoint_indices`` — for 300VW (68 points) the outer eye corners
    ``(36, 45)``, 0-based, which MMPose's ``NME`` has no '300vw' default for
    (:attr:`DEFAULT_KEYPOINT_INDICES` adds it) — or, with
    ``norm_mode='use_norm_item'``, a ground-truth item as in MMPose's
    ``NME`` (``'bbox_size'``: the longer side of ``gt_instances.bboxes``).

    Keys: ``NME``; ``AUC@{thr}`` and ``FR@{thr}`` from the cumulative error
    distribution of the per-frame NMEs up to ``failure_threshold``
    (:func:`mmstable.evaluation.functional.ced_auc_fr`); with a scenario
    (``scenario`` metainfo or ``video_scenarios``) also ``S1/NME``… and
    the filter / source variants of :class:`BaseVideoMetric`.

    Args:
        norm_mode (str): ``'keypoint_distance'`` or ``'use_norm_item'``.
        norm_item (str, optional): For ``'use_norm_item'``.
        keypoint_indices (Sequence[int], optional): Pair of landmark indices;
            default by ``dataset_meta['dataset_name']``.
        failure_threshold (float): NME threshold of AUC and FR. Default 0.08
            (300VW's usual CED range).
        average (str): ``'frame'`` (default): NME is the mean over all frames
            of all videos, as 300VW results are reported; ``'video'``: mean
            of the per-video means, like MCV / MAV. AUC / FR always pool
            frames.
        **kwargs: :class:`BaseVideoMetric` arguments.
    """
    DEFAULT_KEYPOINT_INDICES = {
        **NME.DEFAULT_KEYPOINT_INDICES, '300vw': [36, 45]
    }
    min_frames = 1
    requires_gt = True

    def __init__(self,
                 norm_mode: str = 'keypoint_distance',
                 norm_item: Optional[str] = None,
                 keypoint_indices: Optional[Sequence[int]] = None,
                 failure_threshold: float = 0.08,
                 average: str = 'frame',
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if norm_mode not in ('keypoint_distance', 'use_norm_item'):
            raise ValueError("VideoNME.norm_mode must be 'keypoint_distance' "
                             f"or 'use_norm_item', got {norm_mode!r}")
        if norm_mode == 'use_norm_item' and not norm_item:
            raise ValueError("VideoNME: norm_mode='use_norm_item' needs "
                             'norm_item')
        if keypoint_indices is not None and len(keypoint_indices) != 2:
            raise ValueError('VideoNME.keypoint_indices must be a pair, got '
                             f'{keypoint_indices}')
        if average not in ('frame', 'video'):
            raise ValueError("VideoNME.average must be 'frame' or 'video', "
                             f'got {average!r}')
        self.norm_mode = norm_mode
        self.norm_item = norm_item
        self.keypoint_indices = keypoint_indices
        self.failure_threshold = float(failure_threshold)
        self.average = average

    def _parse_extras(self, sample: dict) -> dict:
        if self.norm_mode != 'use_norm_item':
            return {}
        gt = sample['gt_instances']
        if self.norm_item == 'bbox_size':
            bbox = _to_numpy(gt['bboxes']).reshape(-1)[:4]
            size = float(np.max(bbox[2:] - bbox[:2]))
        else:
            if self.norm_item not in gt:
                raise KeyError(f'VideoNME.norm_item={self.norm_item!r} is not'
                               f' in gt_instances (has {sorted(gt)})')
            size = float(_to_numpy(gt[self.norm_item]).reshape(-1)[0])
        return dict(norm=size)

    def _indices(self) -> Sequence[int]:
        return nme_keypoint_indices(self.keypoint_indices, self.dataset_meta,
                                    type(self).__name__)

    def compute_video(self, series, track) -> dict:
        if self.norm_mode == 'use_norm_item':
            norm = track.extras['norm'].astype(np.float64)
        else:
            norm = interocular_distance(track.gt, self._indices())
        nmes = frame_nme(series, track.gt, track.mask, norm)
        if np.isnan(nmes).any():
            self._warn(track, f'{int(np.isnan(nmes).sum())} frame(s) without'
                       ' visible landmarks or with zero normalisation; left '
                       'out of NME')
        return dict(nmes=nmes)

    def aggregate(self, per_video: List[dict]) -> Dict[str, float]:
        thr = f'{self.failure_threshold:g}'
        if not per_video:
            nan = float('nan')
            return {'NME': nan, f'AUC@{thr}': nan, f'FR@{thr}': nan}
        frames = np.concatenate([v['nmes'] for v in per_video])
        if self.average == 'frame':
            nme = float(np.nanmean(frames)) if np.isfinite(
                frames).any() else float('nan')
        else:
            nme = self._mean(
                np.nanmean(v['nmes']) if np.isfinite(v['nmes']).any() else
                None for v in per_video)
        auc, fr = ced_auc_fr(frames, self.failure_threshold)
        return {'NME': nme, f'AUC@{thr}': auc, f'FR@{thr}': fr}
