"""Group per-frame records into per-video tracks ordered by ``frame_id``.

The record layout is what :class:`mmstable.evaluation.metrics.BaseVideoMetric`
stores per data sample; keys ``video_id`` and ``frame_id`` are the clip
metainfo of docs/conventions.md §1.
"""
import warnings
from dataclasses import dataclass, field
from typing import Any, Dict, Hashable, List, Optional, Sequence

import numpy as np

__all__ = ['VideoTrack', 'group_tracks', 'scenario_label']


@dataclass
class VideoTrack:
    """One face track of one video, frames in ``frame_id`` order.

    Attributes:
        video_id: The video's ``video_id``.
        track_id: ``track_id`` metainfo, 0 when absent (one face per video).
        scenario: Scenario label (e.g. ``'S1'``) or ``None``.
        frame_ids (np.ndarray): (T,) int, increasing.
        preds (dict): name -> (T, K, 2) predictions, image pixels; ``''`` is
            the main prediction (``pred_instances.keypoints``).
        gt (np.ndarray | None): (T, K, 2) ground truth, image pixels.
        mask (np.ndarray | None): (T, K) bool, visible ground truth.
        extras (dict): name -> (T, ...) other per-frame values a metric
            stored (e.g. a normalisation size).
    """
    video_id: Hashable
    track_id: Hashable
    scenario: Optional[str]
    frame_ids: np.ndarray
    preds: Dict[str, np.ndarray] = field(default_factory=dict)
    gt: Optional[np.ndarray] = None
    mask: Optional[np.ndarray] = None
    extras: Dict[str, np.ndarray] = field(default_factory=dict)

    def subset(self, keep: np.ndarray) -> 'VideoTrack':
        """The same track, only the frames where ``keep`` is True."""
        return VideoTrack(
            video_id=self.video_id,
            track_id=self.track_id,
            scenario=self.scenario,
            frame_ids=self.frame_ids[keep],
            preds={n: p[keep]
                   for n, p in self.preds.items()},
            gt=None if self.gt is None else self.gt[keep],
            mask=None if self.mask is None else self.mask[keep],
            extras={n: v[keep]
                    for n, v in self.extras.items()})

    @property
    def name(self) -> str:
        """``video_id`` (and ``#track_id`` when there are several tracks)."""
        if self.track_id in (0, None):
            return str(self.video_id)
        return f'{self.video_id}#{self.track_id}'


def scenario_label(value: Any) -> Optional[str]:
    """``1`` / ``'1'`` -> ``'S1'`` (300VW Scenario 1); other strings as is."""
    if value is None:
        return None
    if isinstance(value, (int, np.integer)) or (isinstance(value, str)
                                                and value.isdigit()):
        return f'S{int(value)}'
    return str(value)


def group_tracks(records: Sequence[dict]) -> List[VideoTrack]:
    """Group per-frame records into tracks.

    Each record is a dict with ``video_id``, ``frame_id``, optional
    ``track_id`` and ``scenario``, ``preds`` (name -> (K, 2)), ``gt``
    ((K, 2) or ``None``), ``mask`` ((K,) bool or ``None``) and optional
    ``extras`` (name -> per-frame value).

    Tracks come out in the order their first frame was seen; frames are sorted
    by ``frame_id``. A repeated ``frame_id`` within a track (e.g. a sampler
    that pads the last batch with copies) keeps the first record and warns.

    Returns:
        list[VideoTrack]
    """
    buckets: Dict[tuple, list] = {}
    for rec in records:
        key = (rec['video_id'], rec.get('track_id', 0))
        buckets.setdefault(key, []).append(rec)

    tracks = []
    for (video_id, track_id), recs in buckets.items():
        recs = sorted(recs, key=lambda r: int(r['frame_id']))
        frame_ids = np.array([int(r['frame_id']) for r in recs])
        keep = np.ones(len(recs), dtype=bool)
        keep[1:] = frame_ids[1:] != frame_ids[:-1]
        if not keep.all():
            warnings.warn(
                f'video_id={video_id!r}: {int((~keep).sum())} repeated '
                'frame_id(s); kept the first record of each. Check that the '
                'test sampler does not pad videos with copies.')
            recs = [r for r, k in zip(recs, keep) if k]
            frame_ids = frame_ids[keep]
        names = list(recs[0]['preds'])
        preds = {
            n: np.stack([np.asarray(r['preds'][n], np.float64) for r in recs])
            for n in names
        }
        has_gt = all(r.get('gt') is not None for r in recs)
        gt = mask = None
        if has_gt:
            gt = np.stack([np.asarray(r['gt'], np.float64) for r in recs])
            mask = np.stack([np.asarray(r['mask'], bool) for r in recs])
            # a non-finite annotation counts as not visible
            mask &= np.isfinite(gt).all(-1)
        extras = {
            n: np.stack([np.asarray(r['extras'][n]) for r in recs])
            for n in recs[0].get('extras', {})
        }
        tracks.append(
            VideoTrack(
                video_id=video_id,
                track_id=track_id,
                scenario=scenario_label(recs[0].get('scenario')),
                frame_ids=frame_ids,
                preds=preds,
                gt=gt,
                mask=mask,
            extras=extras))
    return tracks
