# Copyright (c) mmstable authors. All rights reserved.
from collections import OrderedDict
from typing import Iterator, List, Optional

import numpy as np
from mmengine.dist import get_dist_info, sync_random_seed
from mmengine.registry import DATA_SAMPLERS
from torch.utils.data import Sampler


@DATA_SAMPLERS.register_module()
class VideoSampler(Sampler):
    """Whole-video sampler: every video goes to exactly one rank, and its
    items keep the dataset order (frame order for :class:`VideoClipDataset`
    in test mode), as the recurrent state rule of docs/conventions.md §1
    requires.

    Videos are assigned to ranks greedily, largest first, to the rank with
    the fewest items so far (balanced by frame count for whole-video test
    sets, where one item is one frame). Nothing is padded or repeated, so
    ranks may hold different numbers of items; MMEngine's
    ``collect_results`` gathers unequal parts (``zip_longest``) and loses
    nothing, but the gathered order interleaves ranks — metrics must group
    by ``video_id`` and sort by ``frame_id`` (docs/conventions.md §4).

    The video of item i is ``dataset.video_ids[i]`` when the dataset has that
    attribute (:class:`VideoClipDataset`), else
    ``dataset.get_data_info(i)['video_id']``.

    Args:
        dataset (Dataset): The dataset.
        shuffle (bool): Shuffle the order of videos (never the frames within
            a video) every epoch, with ``seed + epoch``. Defaults to ``False``.
        seed (int, optional): Random seed, synchronised across ranks.
    """

    def __init__(self,
                 dataset,
                 shuffle: bool = False,
                 seed: Optional[int] = None) -> None:
        rank, world_size = get_dist_info()
        self.rank, self.world_size = rank, world_size
        self.dataset = dataset
        self.shuffle = shuffle
        self.seed = sync_random_seed() if seed is None else seed
        self.epoch = 0
        self.videos = self._group_by_video(dataset)
        self._assign()

    @staticmethod
    def _group_by_video(dataset) -> 'OrderedDict[object, List[int]]':
        video_ids = getattr(dataset, 'video_ids', None)
        if video_ids is None:
            video_ids = [
                dataset.get_data_info(i)['video_id']
                for i in range(len(dataset))
            ]
        if len(video_ids) != len(dataset):
            raise ValueError(
                f'VideoSampler: dataset.video_ids has {len(video_ids)} '
                f'entries for {len(dataset)} items.')
        videos: 'OrderedDict[object, List[int]]' = OrderedDict()
        for i, vid in enumerate(video_ids):
            videos.setdefault(vid, []).append(i)
        return videos

    def _assign(self) -> None:
        names = list(self.videos)
        if self.shuffle:
            rng = np.random.default_rng(self.seed + self.epoch)
            names = [names[i] for i in rng.permutation(len(names))]
        loads = [0] * self.world_size
        owner = {}
        # Largest first; stable sort keeps dataset order among equal sizes.
        for name in sorted(names, key=lambda n: -len(self.videos[n])):
            r = int(np.argmin(loads))
            owner[name] = r
            loads[r] += len(self.videos[name])
        self.rank_videos = [[n for n in names if owner[n] == r]
                            for r in range(self.world_size)]
        self.num_samples = loads[self.rank]

    def __iter__(self) -> Iterator[int]:
        for name in self.rank_videos[self.rank]:
            yield from self.videos[name]

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle the video order (only with ``shuffle=True``)."""
        self.epoch = epoch
        if self.shuffle:
            self._assign()
