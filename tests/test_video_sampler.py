import os.path as osp

import pytest
from mmengine.registry import DATA_SAMPLERS

from mmstable.datasets.samplers import VideoSampler
from mmstable.datasets.samplers import video_sampler as vs_module


class _Frames:
    """Whole-video test set: one item per frame."""

    def __init__(self, sizes):
        self.video_ids = [v for v, n in sizes.items() for _ in range(n)]

    def __len__(self):
        return len(self.video_ids)


class _NoVideoIds:

    def __init__(self, ids):
        self.ids = ids

    def __len__(self):
        return len(self.ids)

    def get_data_info(self, i):
        return dict(video_id=self.ids[i])


def _ranks(dataset, world_size, monkeypatch, **kwargs):
    out = []
    for rank in range(world_size):
        monkeypatch.setattr(vs_module,
                            'get_dist_info',
                            lambda r=rank: (r, world_size))
        out.append(list(VideoSampler(dataset, seed=0, **kwargs)))
    return out


def test_single_rank_keeps_dataset_order():
    dataset = _Frames({'a': 3, 'b': 2, 'c': 4})
    sampler = DATA_SAMPLERS.build(dict(type='VideoSampler'),
                                  default_args=dict(dataset=dataset, seed=0))
    assert list(sampler) == list(range(9)) and len(sampler) == 9


@pytest.mark.parametrize('world_size', [2, 3])
def test_whole_videos_per_rank_balanced(world_size, monkeypatch):
    sizes = {'a': 7, 'b': 2, 'c': 5, 'd': 5, 'e': 1, 'f': 3}
    dataset = _Frames(sizes)
    parts = _ranks(dataset, world_size, monkeypatch)
    assert sorted(i for p in parts for i in p) == list(range(len(dataset)))
    owners = {}
    for rank, part in enumerate(parts):
        assert part == sorted(part) or len(
            {dataset.video_ids[i]
             for i in part}) > 1
        for vid in {dataset.video_ids[i] for i in part}:
            owners.setdefault(vid, set()).add(rank)
            frames = [i for i in part if dataset.video_ids[i] == vid]
            assert frames == sorted(frames)  # frame order kept
            assert len(frames) == sizes[vid]  # never split
    assert all(len(r) == 1 for r in owners.values())
    loads = sorted(len(p) for p in parts)
    # greedy largest-first: 23 frames -> 12/11 on 2 ranks, 8/8/7 on 3
    assert loads == ([11, 12] if world_size == 2 else [7, 8, 8])


def test_shuffle_moves_videos_not_frames(monkeypatch):
    dataset = _Frames({str(i): 3 for i in range(8)})
    sampler = VideoSampler(dataset, shuffle=True, seed=1)
    order = list(sampler)
    assert order != list(range(24))
    for k in range(0, 24, 3):
        assert order[k:k + 3] == list(range(order[k], order[k] + 3))
    sampler.set_epoch(1)
    assert list(sampler) != order


def test_falls_back_to_get_data_info():
    sampler = VideoSampler(_NoVideoIds(['x', 'x', 'y']), seed=0)
    assert list(sampler) == [0, 1, 2]


def test_with_300vw_test_set(mmpose_testdata, monkeypatch):
    from mmpose.registry import DATASETS
    root = osp.join(mmpose_testdata, '300vw')
    dataset = DATASETS.build(
        dict(type='VideoClipDataset',
             data_root=root,
             ann_file='anno_300vw.json',
             data_prefix=dict(img=''),
             test_mode=True,
             pipeline=[]))
    parts = _ranks(dataset, 2, monkeypatch)
    assert parts == [[0, 1], [2]]
    assert [dataset.get_data_info(i)['frame_id'] for i in parts[0]] == [5, 8]
