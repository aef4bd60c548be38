# Copyright (c) mmstable authors. All rights reserved.
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.dataset import BaseDataset

from mmpose.datasets.datasets.face import Face300VWDataset
from mmpose.registry import DATASETS
from ..utils.data_checks import annotation_file_errors, check_keypoints
from .broken_frames import load_broken_frames  # noqa: F401 (re-exported)
from .image_sequence_dataset import parse_clip_len

# 300VW splits (Shen et al., ICCVW 2015; as in MMPose's
# tools/dataset_converters/300vw2coco.py and the paper §4.4, which follows
# FAB [37]): 114 videos, 50 for training, 64 for testing in three scenarios.
VIDEOS_300VW_ALL = ('001', '002', '003', '004', '007', '009', '010', '011',
                    '013', '015', '016', '017', '018', '019', '020', '022',
                    '025', '027', '028', '029', '031', '033', '034', '035',
                    '037', '039', '041', '043', '044', '046', '047', '048',
                    '049', '053', '057', '059', '112', '113', '114', '115',
                    '119', '120', '123', '124', '125', '126', '138', '143',
                    '144', '150', '158', '160', '203', '204', '205', '208',
                    '211', '212', '213', '214', '218', '223', '224', '225',
                    '401', '402', '403', '404', '405', '406', '407', '408',
                    '409', '410', '411', '412', '505', '506', '507', '508',
                    '509', '510', '511', '514', '515', '516', '517', '518',
                    '519', '520', '521', '522', '524', '525', '526', '528',
                    '529', '530', '531', '533', '537', '538', '540', '541',
                    '546', '547', '548', '550', '551', '553', '557', '558',
                    '559', '562')
SCENARIO_VIDEOS: Dict[object, Tuple[str, ...]] = {
    # Scenario 1: laboratory and naturalistic well-lit conditions.
    1: ('114', '124', '125', '126', '150', '158', '401', '402', '505', '506',
        '507', '508', '509', '510', '511', '514', '515', '518', '519', '520',
        '521', '522', '524', '525', '537', '538', '540', '541', '546', '547',
        '548'),
    # Scenario 2: real-world human-computer interaction.
    2: ('203', '208', '211', '212', '213', '214', '218', '224', '403', '404',
        '405', '406', '407', '408', '409', '412', '550', '551', '553'),
    # Scenario 3: arbitrary conditions.
    3: ('410', '411', '516', '517', '526', '528', '529', '530', '531', '533',
        '557', '558', '559', '562'),
}
SCENARIO_VIDEOS['test'] = (SCENARIO_VIDEOS[1] + SCENARIO_VIDEOS[2] +
                           SCENARIO_VIDEOS[3])
SCENARIO_VIDEOS['train'] = tuple(v for v in VIDEOS_300VW_ALL
                                 if v not in SCENARIO_VIDEOS['test'])


_VIDEO_SCENARIO = {
    video: scenario
    for scenario, videos in SCENARIO_VIDEOS.items() if scenario in (1, 2, 3)
    for video in videos
}


@DATASETS.register_module()
class VideoClipDataset(Face300VWDataset):
    """300VW as clips of consecutive frames (training) or whole videos frame
    by frame (testing).

    Reads MMPose's 300VW COCO-style annotations (``Face300VWDataset``; made by
    MMPose's ``300vw2coco.py`` or by ``tools/dataset_converters/
    300vw_to_coco.py``, which also writes ``video_id`` / ``frame_id``). Each
    frame gets ``video_id`` (the 300VW folder name, e.g. ``'001'``) and
    ``frame_id`` (0-based: frame file ``000001`` is ``frame_id`` 0), taken
    from the image entry's ``video_id`` / ``frame_id`` when present, else
    parsed from ``file_name`` (``'<video>/imgs/<frame:06d>.<ext>'``).

    Items (docs/conventions.md §1):

    - training (``test_mode=False``): windows of T consecutive frames of one
      video, ``stride`` frames apart, as a results dict with ``frames`` (the
      per-frame data infos, each with ``video_id``, ``frame_id``,
      ``clip_len``) for a pipeline of :class:`ApplyToFrames` and
      :class:`PackClipInputs`. "Consecutive" is in the order of the
      annotated, non-broken frames; ``max_frame_gap`` splits a video where
      frames are missing.
    - testing: every frame of the selected videos as one item
      (``clip_len=1``), videos in sorted id order, frames in ``frame_id``
      order — use :class:`VideoSampler` to keep them so under distributed
      testing.

    Windows that would run past the end of a video (or of a segment) follow
    ``tail``: ``'drop'`` (default) keeps only full windows (a video shorter
    than T gives none); ``'pad'`` also keeps one last window with the
    remaining frames, padded to T by repeating its last frame (same image,
    same annotation, same ``frame_id``).

    Args:
        clip_len (int | tuple[int, int]): T, or ``(low, high)``: windows are
            cut with ``high`` frames and each item uses its first T frames,
            T drawn uniformly in [low, high]. Ignored in test mode.
            Defaults to 8.
        stride (int, optional): Frames between window starts. Defaults to
            ``high`` (non-overlapping windows).
        tail (str): ``'drop'`` or ``'pad'`` (see above). Defaults to
            ``'drop'``.
        scenario (int | str, optional): Keep only the videos of a 300VW
            split: ``'train'`` (50 videos), ``1``, ``2``, ``3`` (test
            scenarios) or ``'test'`` (all 64). ``None`` keeps every video of
            ``ann_file``. Defaults to ``None``.
        broken_frames (str | dict, optional): 300VW frames to skip,
            ``{video_id: [1-based frame numbers]}`` or a ``.json`` file
            holding it. MMPose's pickled ``broken_frames.npy`` is refused
            (unpickling can run code): convert it once with
            ``tools/dataset_converters/broken_frames_to_json.py``. Listed
            frames are dropped before the file check. Defaults to ``None``.
        max_frame_gap (int, optional): Training windows never span two frames
            whose ``frame_id`` differ by more than this (1 = strictly
            consecutive). ``None``: no limit. Defaults to ``None``.
        check_files (bool): At load time, raise ``FileNotFoundError`` for
            frame images that are missing (and not broken). Defaults to
            ``True``.
        **kwargs: Arguments of MMPose's ``Face300VWDataset`` (``ann_file``,
            ``data_root``, ``data_prefix``, ``pipeline``, ``test_mode``, ...).
    """

    tails = ('drop', 'pad')

    def __init__(self,
                 *args,
                 clip_len: Union[int, Tuple[int, int]] = 8,
                 stride: Optional[int] = None,
                 tail: str = 'drop',
                 scenario: Union[None, int, str] = None,
                 broken_frames: Union[None, str, dict] = None,
                 max_frame_gap: Optional[int] = None,
                 check_files: bool = True,
                 **kwargs) -> None:
        name = type(self).__name__
        self.clip_len = parse_clip_len(clip_len, name)
        self.stride = self.clip_len[1] if stride is None else int(stride)
        if self.stride < 1:
            raise ValueError(f'{name}.stride must be >= 1, got {stride}')
        if tail not in self.tails:
            raise ValueError(
                f'{name}.tail must be one of {self.tails}, got {tail!r}')
        self.tail = tail
        if scenario is not None and scenario not in SCENARIO_VIDEOS:
            raise ValueError(f'{name}.scenario must be None or one of '
                             f'{list(SCENARIO_VIDEOS)}, got {scenario!r}')
        self.scenario = scenario
        self.broken_frames = load_broken_frames(broken_frames)
        if max_frame_gap is not None and max_frame_gap < 1:
            raise ValueError(f'{name}.max_frame_gap must be None or >= 1, got '
                             f'{max_frame_gap}')
        self.max_frame_gap = max_frame_gap
        self.check_files = check_files
        self._items: Optional[List[List[int]]] = None
        self.video_ids: Optional[List[str]] = None
        kwargs.setdefault('data_mode', 'topdown')
        if kwargs['data_mode'] != 'topdown':
            raise ValueError(f'{name} supports data_mode="topdown" only.')
        super().__init__(*args, **kwargs)

    def parse_data_info(self, raw_data_info: dict) -> Optional[dict]:
        data_info = super().parse_data_info(raw_data_info)
        img = raw_data_info['raw_img_info']
        if 'video_id' in img and 'frame_id' in img:
            video_id, frame_id = str(img['video_id']), int(img['frame_id'])
        else:
            parts = img['file_name'].replace('\\', '/').split('/')
            stem = osp.splitext(parts[-1])[0]
            if len(parts) < 2 or not stem.isdigit():
                raise ValueError(
                    f'{self.ann_file}: image {img.get("id")} has file_name '
                    f'{img["file_name"]!r} and no video_id/frame_id; expected '
                    '"<video>/imgs/<frame:06d>.<ext>" (MMPose 300VW layout) '
                    'or video_id/frame_id fields (written by '
                    'tools/dataset_converters/300vw_to_coco.py).')
            video_id, frame_id = parts[0], int(stem) - 1
        data_info['video_id'] = video_id
        data_info['frame_id'] = frame_id
        # 300VW test scenario (1, 2, 3) of the video, packed into the frame's
        # metainfo so the metrics report S1/..., S2/..., S3/... keys
        data_info['scenario'] = _VIDEO_SCENARIO.get(video_id)
        check_keypoints(data_info, self._metainfo.get('num_keypoints'),
                        self.ann_file, type(self).__name__)
        return data_info

    def load_data_list(self) -> List[dict]:
        with annotation_file_errors(self.ann_file):
            data_list = super().load_data_list()
        if not data_list:
            raise ValueError(
                f'{type(self).__name__}: {self.ann_file} holds no annotated '
                'frame; expected COCO-style "images" and "annotations" (as '
                'tools/dataset_converters/300vw_to_coco.py writes them).')
        if self.scenario is not None:
            keep = set(SCENARIO_VIDEOS[self.scenario])
            found = sorted({d['video_id'] for d in data_list})
            data_list = [d for d in data_list if d['video_id'] in keep]
            if not data_list:
                raise ValueError(
                    f'{type(self).__name__}: no frame of scenario '
                    f'{self.scenario!r} in {self.ann_file} (it has videos '
                    f'{found[:20]}{"..." if len(found) > 20 else ""}).')
        data_list = [
            d for d in data_list if d['frame_id'] +
            1 not in self.broken_frames.get(d['video_id'], ())
        ]
        if not data_list:
            raise ValueError(
                f'{type(self).__name__}: every frame of {self.ann_file} is '
                'listed in broken_frames; check broken_frames and ann_file.')
        if self.check_files:
            missing = [
                d['img_path'] for d in data_list
                if not osp.isfile(d['img_path'])
            ]
            if missing:
                raise FileNotFoundError(
                    f'{type(self).__name__}: {len(missing)} frame image(s) '
                    f'listed in {self.ann_file} do not exist, e.g. '
                    f'{missing[:3]}. Extract the frames (tools/'
                    'dataset_converters/300vw_to_coco.py), fix data_prefix, '
                    'or list them in broken_frames.')
        data_list.sort(key=lambda d: (d['video_id'], d['frame_id']))
        # one face per frame: a repeated frame_id would make a clip hold the
        # same instant twice and a whole-video test count it twice
        for prev, cur in zip(data_list, data_list[1:]):
            if (prev['video_id'], prev['frame_id']) == (cur['video_id'],
                                                        cur['frame_id']):
                raise ValueError(
                    f'{type(self).__name__}: video {cur["video_id"]!r} has '
                    f'frame_id {cur["frame_id"]} twice in {self.ann_file} '
                    f'(images {prev["img_path"]!r} and {cur["img_path"]!r}); '
                    'each frame needs one annotation with a unique frame_id.')
        return data_list

    def full_init(self) -> None:
        if self._fully_initialized:
            return
        super().full_init()
        self._build_items()

    def _frame_keys(self) -> List[Tuple[str, int]]:
        # Only video_id/frame_id are needed: skip MMPose's metainfo copies.
        return [(info['video_id'], info['frame_id'])
                for info in (BaseDataset.get_data_info(self, i)
                             for i in range(BaseDataset.__len__(self)))]

    def _build_items(self) -> None:
        keys = self._frame_keys()
        videos: Dict[str, List[int]] = {}
        for i, (vid, _) in enumerate(keys):
            videos.setdefault(vid, []).append(i)
        items: List[List[int]] = []
        for vid in sorted(videos):
            frames = sorted(videos[vid], key=lambda i: keys[i][1])
            if self.test_mode:
                items.extend([i] for i in frames)
                continue
            segments, start = [], 0
            for j in range(1, len(frames) + 1):
                if j == len(frames) or (
                        self.max_frame_gap is not None and keys[frames[j]][1] -
                        keys[frames[j - 1]][1] > self.max_frame_gap):
                    segments.append(frames[start:j])
                    start = j
            for seg in segments:
                items.extend(self._windows(seg))
        if not items and videos and not self.test_mode:
            lengths = {vid: len(videos[vid]) for vid in sorted(videos)}
            shown = dict(list(lengths.items())[:20])
            raise ValueError(
                f'{type(self).__name__}: no training clip: every video of '
                f'{self.ann_file} is shorter than clip_len={self.clip_len[1]}'
                f' frames with tail={self.tail!r}'
                + (f' and max_frame_gap={self.max_frame_gap}'
                   if self.max_frame_gap is not None else '') +
                f'. Frames per video: {shown}'
                f'{" ..." if len(lengths) > 20 else ""}. Use a smaller '
                "clip_len, tail='pad', or longer videos.")
        self._items = items
        self.video_ids = [keys[item[0]][0] for item in items]

    def _windows(self, frames: Sequence[int]) -> List[List[int]]:
        """Windows of ``clip_len[1]`` frames over one segment, by ``tail``.
        """
        length, n = self.clip_len[1], len(frames)
        starts = list(range(0, n - length + 1, self.stride))
        windows = [list(frames[s:s + length]) for s in starts]
        if self.tail == 'pad':
            next_start = starts[-1] + self.stride if starts else 0
            if next_start < n and (not starts or starts[-1] + length < n):
                rest = list(frames[next_start:])
                windows.append(rest + [rest[-1]] * (length - len(rest)))
        return windows

    def __len__(self) -> int:
        if not self._fully_initialized:
            self.full_init()
        return len(self._items)

    def get_data_info(self, idx: int) -> dict:
        """Test mode: the frame ``idx`` with ``clip_len=1``. Training: the
        clip ``idx`` as ``dict(frames=[...], video_id, clip_len)``."""
        if not self._fully_initialized:
            self.full_init()
        item = self._items[idx]
        if self.test_mode:
            info = super().get_data_info(item[0])
            info['clip_len'] = 1
            return info
        low, high = self.clip_len
        clip_len = high if low == high else int(
            np.random.randint(low, high + 1))
        frames = [
            super(VideoClipDataset, self).get_data_info(i)
            for i in item[:clip_len]
        ]
        for frame in frames:
            frame['clip_len'] = clip_len
        return dict(frames=frames,
                    video_id=frames[0]['video_id'],
                    clip_len=clip_len)
