import os.path as osp
import re
from typing import Optional, Sequence

import numpy as np
from mmengine.hooks import Hook
from mmengine.utils import mkdir_or_exist

from mmpose.registry import HOOKS
from mmstable.evaluation.filters import build_filter
from mmstable.evaluation.functional import group_tracks
from mmstable.visualization import plot_allan, plot_trajectories


@HOOKS.register_module()
class TrajectoryPlotHook(Hook):
    """Write stability plots of a video test run (``tools/test.py --plots``).

    During the test loop it records each frame's landmarks (image space):
    the refined ``pred_instances.keypoints``, the frozen model's
    ``raw_keypoints`` when the head emits them (``test_cfg.output_raw``) and
    the ground truth. After the loop it writes, into ``out_dir``:

    - ``trajectories_<video>.png`` for the first ``max_videos`` videos: a few
      landmarks' x / y against frame for GT, raw, ``filter`` applied to raw,
      and refined (:func:`mmstable.visualization.plot_trajectories`);
    - ``allan_deviation.png``: the Allan-deviation curves that ``MAV``
      reported (keys ``[source/][filter/]ADEV@τ``; configure
      ``MAV(allan_taus=True)``).

    In a distributed test each rank records its own videos (``VideoSampler``
    keeps a video on one rank) and rank 0 draws the trajectories of its own;
    the Allan curves come from the merged metrics.

    Args:
        out_dir (str): Output folder.
        max_videos (int): Videos to draw trajectories of.
        filter (str | dict, optional): Filter preset / config applied to the
            raw landmarks for the plot (default MediaPipe's One Euro).
    """
    priority = 'LOW'

    def __init__(self,
                 out_dir: str,
                 max_videos: int = 2,
                 filter: Optional[object] = 'mediapipe_face'):
        self.out_dir = out_dir
        self.max_videos = max_videos
        self.filter = build_filter(filter) if filter else None
        self.records = []

    def before_test(self, runner) -> None:
        self.records = []

    def after_test_iter(self, runner, batch_idx: int, data_batch=None,
                        outputs: Optional[Sequence] = None) -> None:
        for ds in outputs or []:
            meta = ds.metainfo
            if 'video_id' not in meta or 'frame_id' not in meta:
                continue
            pred = ds.pred_instances
            preds = {'refined': np.asarray(pred.keypoints)[0, :, :2]}
            if 'raw_keypoints' in pred:
                preds['raw'] = np.asarray(pred.raw_keypoints)[0, :, :2]
            gt = ds.gt_instances.get('keypoints', None) if hasattr(
                ds, 'gt_instances') else None
            mask = None
            if gt is not None:
                gt = np.asarray(gt)[0, :, :2]
                visible = ds.gt_instances.get('keypoints_visible', None)
                mask = (np.ones(len(gt), bool) if visible is None else
                        np.asarray(visible).reshape(-1)[:len(gt)] > 0)
            self.records.append(
                dict(video_id=meta['video_id'], frame_id=meta['frame_id'],
                     preds=preds, gt=gt, mask=mask))

    def after_test_epoch(self, runner, metrics: Optional[dict] = None):
        if runner.rank != 0:
            return
        mkdir_or_exist(self.out_dir)
        written = []
        for track in group_tracks(self.records)[:self.max_videos]:
            series = {}
            if track.gt is not None:
                series['GT'] = track.gt
            if 'raw' in track.preds:
                series['raw'] = track.preds['raw']
                if self.filter is not None:
                    name, filt = self.filter
                    series[name] = filt(track.preds['raw'], track.frame_ids)
            series['refined'] = track.preds['refined']
            name = re.sub(r'[^\w.-]+', '_', str(track.video_id))
            written.append(plot_trajectories(
                series, osp.join(self.out_dir, f'trajectories_{name}.png'),
                frame_ids=track.frame_ids, title=str(track.video_id)))
        curves = self._allan_curves(metrics or {})
        if curves:
            written.append(plot_allan(
                curves, osp.join(self.out_dir, 'allan_deviation.png'),
                title='Allan deviation (px)'))
        runner.logger.info(f'TrajectoryPlotHook wrote {written}')
        self.records = []

    @staticmethod
    def _allan_curves(metrics: dict) -> dict:
        curves = {}
        for key, value in metrics.items():
            m = re.fullmatch(r'(?:(.*)/)?ADEV@(\d+)', key)
            if m is None or m.group(1) and re.fullmatch(
                    r'S\d+', m.group(1).split('/')[0]):  # scenario keys
                continue
            name = m.group(1) or 'refined'
            curves.setdefault(name, []).append((int(m.group(2)), value))
        return {
            name: tuple(np.array(v) for v in zip(*sorted(points)))
            for name, points in curves.items()
        }
