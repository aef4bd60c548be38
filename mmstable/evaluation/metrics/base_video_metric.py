"""Shared machinery of mmstable's per-video metrics."""
import warnings
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.structures import BaseDataElement

from ..filters import build_filter
from ..functional import VideoTrack, group_tracks

__all__ = ['BaseVideoMetric']


def _to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


class BaseVideoMetric(BaseMetric):
    """Group test predictions by video, order them by frame, evaluate per
    video, average over videos.

    ``process`` accepts the data samples an MMEngine test loop hands to
    metrics: dicts (``PoseDataSample.to_dict()``; a ``BaseDataElement`` is
    converted too) with top-level metainfo ``video_id`` and ``frame_id``
    (docs/conventions.md §1; optional ``track_id``, ``scenario``),
    ``pred_instances.keypoints`` (1, K, 2) and, for metrics that need it,
    ``gt_instances.keypoints`` (1, K, 2) and ``keypoints_visible``, numpy
    arrays or tensors, image-space pixels. Frames may arrive in any order and
    batches may mix videos.

    Result keys are ``[scenario/][source/][filter/]NAME``: the main
    prediction with no filter gives the bare name (``MAV``); ``filters``
    add ``OneEuro/MAV``…; ``extra_pred_keys`` add other predictions of the
    same run (``Raw/MAV``, ``Raw/OneEuro/MAV``); a scenario adds ``S1/MAV``.
    One test run thus reports raw vs filtered vs refined side by side.

    Bad input, never a crash: a track with fewer than ``min_frames`` usable
    frames is skipped with a warning. Frames whose prediction has a non-finite
    coordinate are handled by ``nan_policy``: ``'drop_frames'`` (default)
    drops those frames and warns — the remaining frames are then treated as
    consecutive, so a frame difference may span the gap; ``'skip_video'``
    drops the whole track for that prediction source and warns.

    Args:
        filters (list, optional): Test-time filters applied to every track
            (each prediction source) before the metric: preset names
            (:data:`mmstable.evaluation.filters.FILTER_PRESETS`), config
            dicts (``dict(type='OneEuroFilter', name='OE', ...)``; ``name``
            sets the key prefix) or filter instances.
        extra_pred_keys (dict, optional): source name -> key in
            ``pred_instances`` of another prediction to evaluate too, e.g.
            ``dict(Raw='raw_keypoints')`` for the frozen model's output.
        scenario_key (str): Metainfo key holding the scenario (300VW: 1, 2,
            3 -> ``S1``...). Ignored where ``video_scenarios`` has the video.
        video_scenarios (dict, optional): ``video_id`` -> scenario.
        nan_policy (str): ``'drop_frames'`` or ``'skip_video'``.
        collect_device (str): See :class:`mmengine.evaluator.BaseMetric`.
        prefix (str, optional): See :class:`mmengine.evaluator.BaseMetric`.

    After ``evaluate``, ``self.video_results[variant][video]`` holds each
    track's own values (``variant`` is the key prefix, ``''`` for the main
    prediction) for reports and plots, and ``self.scenarios`` the scenario
    labels (key prefixes) that occurred.
    """
    #: Tracks with fewer usable frames are skipped with a warning.
    min_frames = 2
    #: Whether ``gt_instances`` must be present.
    requires_gt = False

    def __init__(self,
                 filters: Optional[Sequence[Union[str, dict]]] = None,
                 extra_pred_keys: Optional[Dict[str, str]] = None,
                 scenario_key: str = 'scenario',
                 video_scenarios: Optional[dict] = None,
                 nan_policy: str = 'drop_frames',
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if nan_policy not in ('drop_frames', 'skip_video'):
            raise ValueError(f'{type(self).__name__}.nan_policy must be '
                             f"'drop_frames' or 'skip_video', got "
                             f'{nan_policy!r}')
        self.filters = [build_filter(f) for f in (filters or [])]
        names = [n for n, _ in self.filters]
        if len(set(names)) != len(names):
            raise ValueError(f'{type(self).__name__}: filter names {names} '
                             'repeat; give each filter config a distinct '
                             "'name'")
        self.extra_pred_keys = dict(extra_pred_keys or {})
        if '' in self.extra_pred_keys:
            raise ValueError('extra_pred_keys names must be non-empty')
        self.scenario_key = scenario_key
        self.video_scenarios = dict(video_scenarios or {})
        self.nan_policy = nan_policy
        self.video_results: Dict[str, Dict[str, dict]] = {}
        self.scenarios: List[str] = []
        self._variant = ''

    # ------------------------------------------------------------ process
    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Store one record per data sample (see the class docstring)."""
        for sample in data_samples:
            if isinstance(sample, BaseDataElement):
                sample = sample.to_dict()
            self.results.append(self._parse_sample(sample))

    def _parse_sample(self, sample: dict) -> dict:
        for key in ('video_id', 'frame_id'):
            if key not in sample:
                raise KeyError(
                    f'{type(self).__name__} needs metainfo {key!r} in every '
                    f'data sample (docs/conventions.md §1), found keys '
                    f'{sorted(sample)}. Add it to the dataset and to '
                    "PackPoseInputs' meta_keys in the test pipeline.")
        pred = sample['pred_instances']
        preds = {'': self._keypoints(pred['keypoints'], 'pred_instances')}
        for name, key in self.extra_pred_keys.items():
            if key not in pred:
                raise KeyError(f'extra_pred_keys[{name!r}]: pred_instances '
                               f'has no {key!r} (has {sorted(pred)})')
            preds[name] = self._keypoints(pred[key], f'pred_instances.{key}')
        video_id = sample['video_id']
        record = dict(
            video_id=video_id,
            frame_id=int(sample['frame_id']),
            track_id=sample.get('track_id', 0),
            scenario=self.video_scenarios.get(
                video_id, sample.get(self.scenario_key)),
            preds=preds,
            gt=None,
            mask=None)
        gt = sample.get('gt_instances')
        if gt is not None and 'keypoints' in gt:
            record['gt'] = self._keypoints(gt['keypoints'], 'gt_instances')
            vis = gt.get('keypoints_visible')
            if vis is None:
                record['mask'] = np.ones(record['gt'].shape[0], dtype=bool)
            else:
                record['mask'] = _to_numpy(vis).reshape(-1) > 0
        elif self.requires_gt:
            raise KeyError(f'{type(self).__name__} needs '
                           'gt_instances.keypoints in every data sample')
        extras = self._parse_extras(sample)
        if extras:
            record['extras'] = extras
        return record

    def _parse_extras(self, sample: dict) -> dict:
        """Hook: other per-frame values a subclass needs (name -> array)."""
        return {}

    @staticmethod
    def _keypoints(x: Any, where: str) -> np.ndarray:
        x = _to_numpy(x).astype(np.float64)
        if x.ndim == 3:
            if x.shape[0] != 1:
                raise ValueError(
                    f'{where}.keypoints: expected one instance per data '
                    f'sample (top-down, shape (1, K, 2)), got {x.shape}; '
                    "give each face its own sample and a 'track_id'")
            x = x[0]
        if x.ndim != 2 or x.shape[-1] < 2:
            raise ValueError(f'{where}.keypoints: expected (1, K, 2) or '
                             f'(K, 2), got {x.shape}')
        return x[:, :2]

    # ------------------------------------------------------------ compute
    def compute_video(self, series: np.ndarray, track: VideoTrack) -> dict:
        """One track's values.

        Args:
            series (np.ndarray): (T, K, 2) prediction (filtered if a filter
                is active), T >= ``min_frames``, all finite.
            track (VideoTrack): The same frames' ``frame_ids``, ``gt``,
                ``mask``, ``extras``.

        Returns:
            dict: per-track values for :meth:`aggregate`.
        """
        raise NotImplementedError

    def aggregate(self, per_video: List[dict]) -> Dict[str, float]:
        """Combine the tracks' values into metrics (keys without prefix)."""
        raise NotImplementedError

    def compute_metrics(self, results: list) -> Dict[str, float]:
        tracks = group_tracks(results)
        scenarios = sorted({t.scenario for t in tracks} - {None})
        self.scenarios = scenarios
        sources = [''] + list(self.extra_pred_keys)
        filters = [('', None)] + self.filters
        metrics = OrderedDict()
        self.video_results = {}
        for source in sources:
            usable = []
            for track in tracks:
                track = self._usable(track, source)
                if track is not None:
                    usable.append(track)
            for fname, filt in filters:
                variant = '/'.join(p for p in (source, fname) if p)
                self._variant = variant
                per_video = OrderedDict()
                for track in usable:
                    series = track.preds[source]
                    if filt is not None:
                        series = filt(series, track.frame_ids)
                    per_video[track.name] = (track.scenario,
                                             self.compute_video(
                                                 series, track))
                self.video_results[variant] = OrderedDict(
                    (k, v) for k, (_, v) in per_video.items())
                groups = [(None, list(per_video.values()))]
                groups += [(s, [v for v in per_video.values() if v[0] == s])
                           for s in scenarios]
                for scenario, members in groups:
                    agg = self.aggregate([v for _, v in members])
                    for name, value in agg.items():
                        key = '/'.join(
                            p for p in (scenario, variant, name) if p)
                        metrics[key] = value
        self._variant = ''
        return metrics

    def _usable(self, track: VideoTrack,
                source: str) -> Optional[VideoTrack]:
        """Apply ``nan_policy`` and ``min_frames``; ``None`` = skip."""
        who = f'{type(self).__name__}: video {track.name!r}' + (
            f' (prediction {source!r})' if source else '')
        if self.requires_gt and track.gt is None:
            warnings.warn(f'{who} has no ground truth; skipped')
            return None
        pred = track.preds[source]
        finite = np.isfinite(pred).all(axis=(1, 2))
        if not finite.all():
            bad = track.frame_ids[~finite]
            if self.nan_policy == 'skip_video':
                warnings.warn(f'{who}: non-finite predictions in '
                              f'{bad.size} frame(s) (frame_id {bad[:5]}...); '
                              "video skipped (nan_policy='skip_video')")
                return None
            warnings.warn(f'{who}: dropped {bad.size} of {finite.size} '
                          f'frame(s) with non-finite predictions (frame_id '
                          f"{bad[:5]}...; nan_policy='drop_frames')")
            track = track.subset(finite)
        if track.frame_ids.size < self.min_frames:
            warnings.warn(f'{who}: {track.frame_ids.size} usable frame(s), '
                          f'{type(self).__name__} needs >= {self.min_frames};'
                          ' video skipped')
            return None
        return track

    def _warn(self, track: VideoTrack, msg: str) -> None:
        variant = f' [{self._variant}]' if self._variant else ''
        warnings.warn(f'{type(self).__name__}{variant}: video '
                      f'{track.name!r}: {msg}')

    @staticmethod
    def _mean(values) -> float:
        values = [v for v in values if v is not None and np.isfinite(v)]
        return float(np.mean(values)) if values else float('nan')
