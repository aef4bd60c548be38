# Copyright (c) mmstable authors. All rights reserved.
import copy
import os.path as osp
from typing import Callable, List, Sequence, Tuple, Union

import numpy as np
from mmengine.dataset import BaseDataset, Compose
from torch.utils.data import Dataset

from mmpose.registry import DATASETS
from ..utils.data_checks import annotation_file_errors, check_keypoints


def parse_clip_len(clip_len: Union[int, Sequence[int]],
                   owner: str) -> Tuple[int, int]:
    """``clip_len`` (an int T, or ``(low, high)`` for T uniform in
    [low, high]) as ``(low, high)``."""
    if isinstance(clip_len, int):
        low = high = clip_len
    elif (isinstance(clip_len, (tuple, list)) and len(clip_len) == 2
          and all(isinstance(c, int) for c in clip_len)):
        low, high = clip_len
    else:
        raise TypeError(f'{owner}.clip_len must be an int or a pair of ints '
                        f'(low, high), got {clip_len!r}')
    if not 1 <= low <= high:
        raise ValueError(
            f'{owner}.clip_len needs 1 <= low <= high, got {clip_len!r}')
    return low, high


@DATASETS.register_module()
class ImageSequenceDataset(Dataset):
    """Pseudo video clips made from the images of any MMPose face dataset
    (paper §4.2: each image, shifted by a few pixels per frame, becomes a
    sequence of 5-8 frames).

    Item i is the i-th instance of the wrapped dataset turned into a clip of
    T frames by ``pipeline`` (clip layout of docs/conventions.md §1). A
    typical pipeline::

        [dict(type='LoadImage'),                   # once per clip
         dict(type='GetBBoxCenterScale'),
         dict(type='RandomFlip', direction='horizontal'),
         dict(type='RandomBBoxTransform', ...),
         dict(type='MakeShiftedClip', max_shift=4.0),   # -> T frames
         dict(type='ApplyToFrames', transforms=[     # per frame
             dict(type='ShiftedTopdownAffine', input_size=(256, 256)),
             dict(type='VideoDegradation'),
             dict(type='GenerateTarget', encoder=codec)]),
         dict(type='PackClipInputs')]

    Before the pipeline each item gets ``clip_len`` (T), ``video_id``
    (``'<WrappedDatasetType>:<idx>'``, unique per clip) and, in test mode,
    ``clip_seed`` so that T and the shifts are reproducible.

    Args:
        dataset (dict | BaseDataset): The wrapped dataset or its config, e.g.
            the ``train_dataloader.dataset`` of an MMPose face config. Its own
            ``pipeline`` is replaced by ``[]``: this wrapper's pipeline does
            all the work.
        pipeline (list): The clip pipeline (see above).
        clip_len (int | tuple[int, int]): T, or ``(low, high)`` for T drawn
            uniformly in [low, high] per item. Defaults to ``(5, 8)``
            (paper §4.2).
        test_mode (bool): Deterministic T and shifts per item (seeded by
            ``seed`` and the index) and no refetching. Also the wrapped
            dataset's ``test_mode`` unless its config sets it.
            Defaults to ``False``.
        seed (int): Seed of the test-mode draws. Defaults to 0.
        max_refetch (int): Training only: how many other items to try when
            the pipeline returns ``None``. Defaults to 1000.
    """

    def __init__(self,
                 dataset: Union[dict, BaseDataset],
                 pipeline: List[Union[dict, Callable]],
                 clip_len: Union[int, Tuple[int, int]] = (5, 8),
                 test_mode: bool = False,
                 seed: int = 0,
                 max_refetch: int = 1000) -> None:
        if isinstance(dataset, dict):
            cfg = copy.deepcopy(dataset)
            cfg['pipeline'] = []
            cfg.setdefault('test_mode', test_mode)
            with annotation_file_errors(self._ann_file(cfg)):
                self.dataset = DATASETS.build(cfg)
        else:
            self.dataset = dataset
        # K of the wrapped dataset: every record must have it (a 98-point
        # file read as a 68-point set would train 98-channel targets)
        self._num_keypoints = self.dataset.metainfo.get('num_keypoints')
        self.clip_len = parse_clip_len(clip_len, type(self).__name__)
        self.pipeline = Compose(pipeline)
        self.test_mode = test_mode
        self.seed = seed
        self.max_refetch = max_refetch

    @property
    def metainfo(self) -> dict:
        """The wrapped dataset's metainfo (``flip_indices``, ...)."""
        return copy.deepcopy(self.dataset.metainfo)

    @staticmethod
    def _ann_file(cfg: dict) -> str:
        ann_file = str(cfg.get('ann_file', '')) or f'{cfg.get("type")} data'
        root = cfg.get('data_root')
        return osp.join(root, ann_file) if root else ann_file

    def full_init(self) -> None:
        with annotation_file_errors(
                str(getattr(self.dataset, 'ann_file', ''))):
            self.dataset.full_init()

    def __len__(self) -> int:
        return len(self.dataset)

    def get_data_info(self, idx: int) -> dict:
        """The wrapped dataset's item ``idx`` plus ``clip_len``, ``video_id``
        and (test mode) ``clip_seed``."""
        data_info = self.dataset.get_data_info(idx)
        check_keypoints(data_info, self._num_keypoints,
                        str(getattr(self.dataset, 'ann_file', '')),
                        type(self.dataset).__name__)
        low, high = self.clip_len
        if self.test_mode:
            rng = np.random.default_rng([self.seed, idx])
            clip_len = int(rng.integers(low, high + 1))
            data_info['clip_seed'] = int(rng.integers(2**31))
        else:
            clip_len = int(np.random.randint(low, high + 1))
        data_info['clip_len'] = clip_len
        data_info['video_id'] = f'{type(self.dataset).__name__}:{idx}'
        return data_info

    def prepare_data(self, idx: int):
        return self.pipeline(self.get_data_info(idx))

    def __getitem__(self, idx: int) -> dict:
        if self.test_mode:
            data = self.prepare_data(idx)
            if data is None:
                raise RuntimeError(
                    f'{type(self).__name__}: the test pipeline returned None '
                    f'for item {idx}.')
            return data
        for _ in range(self.max_refetch + 1):
            data = self.prepare_data(idx)
            if data is not None:
                return data
            idx = np.random.randint(0, len(self))
        raise RuntimeError(
            f'{type(self).__name__}: the pipeline returned None for '
            f'{self.max_refetch + 1} items in a row; check the pipeline.')
