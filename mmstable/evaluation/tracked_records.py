"""Test videos cropped by the streaming tracker's own box rule.

The test loop crops every frame with a box the dataset gives beforehand
(``SyntheticFaceVideoDataset`` box modes ``exact`` / ``jittered``). A
deployed model crops each frame with the box of its own landmarks in the
previous frame (:class:`mmstable.apis.StableFaceTracker`,
``track_by='landmarks'``, as MediaPipe's face landmarker): a closed loop that
no precomputed box can stand for. :func:`tracked_video_records` runs that
loop over the test videos and returns records in the layout of
:class:`~mmstable.evaluation.metrics.BaseVideoMetric`, so any video metric
(or :class:`~mmstable.evaluation.metrics.ParetoSweep`) scores them.
"""
from collections import OrderedDict
from typing import Dict, List, Optional

import cv2
import numpy as np

__all__ = ['tracked_video_records']


def tracked_video_records(model,
                          dataset,
                          mode: str = 'tracker',
                          raw_source: str = 'Raw',
                          max_videos: Optional[int] = None) -> List[dict]:
    """Run ``StableFaceTracker(track_by='landmarks')`` over every video.

    Each video's frames come from ``dataset`` (its ``exact`` box-mode
    entries when it has box modes): the first frame is cropped with its
    exact (ground-truth) box, every later one with the landmark box of the
    previous frame's prediction; the exact box of each frame is handed to
    the tracker as the "detection" that confirms the face. The tracker and
    the refiner start afresh per video.

    Args:
        model (nn.Module): from :func:`mmstable.apis.init_model` (an mmstable
            model: refined and raw landmarks).
        dataset: a built test dataset whose data infos have ``img_path``,
            ``bbox``, ``keypoints``, ``keypoints_visible``, ``video_id``,
            ``frame_id`` and optionally ``scenario``
            (``SyntheticFaceVideoDataset``, ``VideoClipDataset``).
        mode (str): scenario suffix and ``video_id`` suffix of the records
            (``'still_tracker'``, ``'test_still_000_tracker'``).
        raw_source (str): name of the raw prediction in ``preds``.
        max_videos (int, optional): evaluate only the first videos.

    Returns:
        list[dict]: one record per frame: ``video_id``, ``frame_id``,
        ``track_id`` (0), ``scenario``, ``preds`` ({'': refined,
        raw_source: raw}, (K, 2)), ``gt`` (K, 2), ``mask`` (K,) and
        ``bbox`` (4,), the crop box ``x1, y1, x2, y2`` the tracker used.
    """
    from mmstable.apis import StableFaceTracker  # apis imports evaluation

    videos: Dict[str, list] = OrderedDict()
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        scenario = info.get('scenario')
        base, video = str(info['video_id']), str(info['video_id'])
        if scenario is not None and str(scenario).endswith('_jittered'):
            continue
        if base.endswith('_exact'):
            base = base[:-len('_exact')]
        if scenario is not None and str(scenario).endswith('_exact'):
            scenario = str(scenario)[:-len('_exact')]
        videos.setdefault(base, []).append((info, scenario, video))
    if max_videos is not None:
        videos = OrderedDict(list(videos.items())[:max_videos])

    tracker = StableFaceTracker(model, track_by='landmarks', output_raw=True)
    records = []
    for base, frames in videos.items():
        frames.sort(key=lambda f: int(f[0]['frame_id']))
        tracker.reset()
        for info, scenario, _ in frames:
            img = cv2.imread(info['img_path'])
            if img is None:
                raise FileNotFoundError(
                    f'tracked_video_records: cannot read {info["img_path"]} '
                    f'(video {base!r}); regenerate the test split')
            box = np.asarray(info['bbox'], np.float32).reshape(-1, 4)[:1]
            results = tracker.update(img, box)
            if not results:
                raise RuntimeError(
                    f'tracked_video_records: the tracker lost video {base!r}'
                    f' at frame {info["frame_id"]}')
            res = results[0]
            raw = res.raw_keypoints if res.raw_keypoints is not None \
                else res.keypoints
            records.append(dict(
                video_id=f'{base}_{mode}',
                frame_id=int(info['frame_id']),
                track_id=0,
                scenario=f'{scenario}_{mode}' if scenario else mode,
                preds={'': np.asarray(res.keypoints, np.float64),
                       raw_source: np.asarray(raw, np.float64)},
                gt=np.asarray(info['keypoints'], np.float64).reshape(-1, 2),
                mask=np.asarray(info['keypoints_visible']).reshape(-1) > 0,
                bbox=np.asarray(res.bbox, np.float64)))
    tracker.reset()
    return records
