"""One test run, many filters: the points of the accuracy-vs-flicker plot."""
import json
import os
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmpose.registry import METRICS

from ..filters import build_filter
from ..functional import group_tracks
from ..pareto import DEFAULT_GRIDS, NME_TOLERANCE, scenario_summary
from .base_video_metric import BaseVideoMetric
from .mav import MAV
from .nmf import NMF
from .video_nme import VideoNME

#: The columns of every point and report row.
COLUMNS = ('NME', 'NMF', 'MAV', 'MAV_err')


@METRICS.register_module()
class ParetoSweep(BaseVideoMetric):
    """Raw, refined, and the raw landmarks through grids of filters, scored
    with NME / NMF / MAV / MAV_err per scenario — the Pareto analysis of
    ``tools/analysis/pareto.py`` and the demo report, from the same single
    pass over the test videos as the other metrics.

    The main prediction (``pred_instances.keypoints``) is the refined one,
    ``raw_source`` (default ``'Raw'``) names the raw one among
    ``extra_pred_keys`` (``dict(Raw='raw_keypoints')``; the model must run
    with ``test_cfg.output_raw=True``). Every filter of ``grids`` is run on
    the raw track of each video (image pixels, frames in order), and each
    variant is scored by :class:`VideoNME`, :class:`NMF` and
    :class:`MAV` (``error_signal``) — their own per-video code and
    averaging, not a copy.

    After ``evaluate``, ``self.points[scenario]`` lists the points
    (``label``, ``family``, ``causal``, ``params``, NME, NMF, MAV, MAV_err;
    ``scenario`` ``'all'`` pools every video) and ``self.summaries[scenario]``
    the report rows (:func:`mmstable.evaluation.pareto.scenario_summary`:
    raw, best One Euro / Kalman / EMA, refined, and the refiner against the
    causal front). ``out_file`` also writes both as JSON.

    Keys (``prefix`` default ``'pareto'``): ``pareto/[scenario/]ROW/COLUMN``
    for the report rows (``pareto/moving_jittered/best_Kalman/NMF``) and
    ``pareto/[scenario/]refined_vs_causal_front`` (the NMF gain, 0.2 = 20 %
    below the best causal filter at the same NME; ``nan`` where no causal
    filter reaches the refiner's NME) — no clash with the other metrics'
    keys in the same evaluator.

    Args:
        grids (dict, optional): family -> list of filter configs; default
            :data:`mmstable.evaluation.pareto.DEFAULT_GRIDS`. A family
            named like a filter (``'OneEuro'``) may be given as ``[]`` to
            skip it.
        raw_source (str): key of ``extra_pred_keys`` holding the raw
            prediction.
        keypoint_indices (Sequence[int], optional): NME's normalising pair;
            default by ``dataset_meta['dataset_name']`` (:class:`VideoNME`).
        tolerance (float): relative NME tolerance of the report rules.
        out_file (str, optional): JSON file for ``points`` and ``summaries``.
        **kwargs: :class:`BaseVideoMetric` arguments (``extra_pred_keys``,
            ``scenario_key``...; ``filters`` is not used here).
    """
    default_prefix = 'pareto'
    min_frames = 2
    requires_gt = True

    def __init__(self,
                 grids: Optional[Dict[str, Sequence[dict]]] = None,
                 raw_source: str = 'Raw',
                 keypoint_indices: Optional[Sequence[int]] = None,
                 tolerance: float = NME_TOLERANCE,
                 out_file: Optional[str] = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if raw_source not in self.extra_pred_keys:
            raise ValueError(
                f'ParetoSweep.raw_source={raw_source!r} must be a key of '
                f'extra_pred_keys (got {sorted(self.extra_pred_keys)}); set '
                "extra_pred_keys=dict(Raw='raw_keypoints') and the model's "
                'test_cfg.output_raw=True in the config')
        grids = DEFAULT_GRIDS if grids is None else grids
        self.grids = OrderedDict()
        for family, cfgs in grids.items():
            built = []
            for cfg in cfgs:
                _, filt = build_filter(cfg)
                built.append((_params(cfg), filt))
            self.grids[family] = built
        self.raw_source = raw_source
        self.keypoint_indices = keypoint_indices
        self.tolerance = float(tolerance)
        self.out_file = out_file
        self.points: Dict[str, List[dict]] = {}
        self.summaries: Dict[str, dict] = {}

    def _scorers(self) -> list:
        scorers = [
            VideoNME(keypoint_indices=self.keypoint_indices),
            NMF(),
            MAV(error_signal=True)
        ]
        for m in scorers:
            m.dataset_meta = self.dataset_meta
        return scorers

    @staticmethod
    def _aggregate(scorers, per_video: list, members: List[int]) -> dict:
        """COLUMNS of one variant over the tracks ``members``."""
        out = {}
        for m, values in zip(scorers, per_video):
            agg = m.aggregate([values[i] for i in members])
            out.update({k: agg[k] for k in COLUMNS if k in agg})
        return out

    def compute_metrics(self, results: list) -> Dict[str, float]:
        tracks = []
        for track in group_tracks(results):
            for source in ('', self.raw_source):
                if track is not None:
                    track = self._usable(track, source)
            if track is not None:
                tracks.append(track)
        scorers = self._scorers()
        # filter every raw track once per config, score it per scenario
        variants = [('raw', 'raw', True, {}, None),
                    ('refined', 'refined', True, {}, None)]
        for family, filters in self.grids.items():
            for params, filt in filters:
                label = f'{family} ' + ' '.join(
                    f'{k}={v:g}' for k, v in params.items())
                variants.append((label, family, filt.online, params, filt))
        self.scenarios = sorted({t.scenario for t in tracks} - {None})
        scenarios = ['all'] + self.scenarios
        self.points = {s: [] for s in scenarios}
        members = {
            s: [i for i, t in enumerate(tracks)
                if s == 'all' or t.scenario == s]
            for s in scenarios
        }
        for label, family, causal, params, filt in variants:
            # each track filtered and scored once, aggregated per scenario
            per_video = [[] for _ in scorers]
            for track in tracks:
                series = track.preds['' if family == 'refined' else
                                     self.raw_source]
                if filt is not None:
                    series = filt(series, track.frame_ids)
                for values, m in zip(per_video, scorers):
                    values.append(m.compute_video(series, track))
            for scenario in scenarios:
                values = self._aggregate(scorers, per_video,
                                         members[scenario])
                self.points[scenario].append(
                    dict(label=label, family=family, causal=bool(causal),
                         params=params, **values))
        self.summaries = {
            s: scenario_summary(p, self.tolerance)
            for s, p in self.points.items()
        }
        if self.out_file:
            self._dump()
        return self._flat()

    def extend(self, records: List[dict]) -> Dict[str, float]:
        """Score more records after ``evaluate`` and add their scenarios
        (e.g. the tracker-cropped videos of
        :func:`mmstable.evaluation.tracked_video_records`); the ``'all'``
        pool keeps the test run's videos only. Rewrites ``out_file``.
        Returns the new scenarios' keys (without ``prefix``)."""
        points, summaries = self.points, self.summaries
        out_file, self.out_file = self.out_file, None
        try:
            self.compute_metrics(records)
        finally:
            self.out_file = out_file
        new = {s: p for s, p in self.points.items() if s != 'all'}
        new_summaries = {s: self.summaries[s] for s in new}
        self.points = {**points, **new}
        self.summaries = {**summaries, **new_summaries}
        if self.out_file:
            self._dump()
        flat, self.summaries = self.summaries, new_summaries
        try:
            return self._flat()
        finally:
            self.summaries = flat

    def _flat(self) -> Dict[str, float]:
        metrics = OrderedDict()
        for scenario, summary in self.summaries.items():
            head = '' if scenario == 'all' else f'{scenario}/'
            for row, point in summary['rows'].items():
                for col in COLUMNS:
                    if col in point:
                        metrics[f'{head}{row.replace(" ", "_")}/{col}'] = \
                            point[col]
            standing = summary['standing']
            if standing is not None:
                metrics[f'{head}refined_vs_causal_front'] = standing['gain']
        return metrics

    def _dump(self) -> None:
        if osp.dirname(self.out_file):
            os.makedirs(osp.dirname(self.out_file), exist_ok=True)
        with open(self.out_file, 'w') as f:
            json.dump(dict(points=self.points, summaries=self.summaries), f,
                      indent=1, default=_jsonable)


def _params(cfg: dict) -> dict:
    """The swept numbers of a filter config (its label)."""
    keys = dict(OneEuroFilter=('min_cutoff', 'beta'),
                KalmanFilter=('process_noise', ),
                EMAFilter=('alpha', ),
                SavitzkyGolayFilter=('window_size', ),
                GaussianFilter=('sigma', ))
    if isinstance(cfg, dict):
        names = keys.get(cfg.get('type'), ())
        return {k: cfg[k] for k in names if k in cfg}
    return {}


def _jsonable(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)
