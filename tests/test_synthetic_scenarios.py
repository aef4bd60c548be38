"""Test scenarios of the synthetic videos: motion presets and crop boxes."""
import zlib

import numpy as np
import pytest
from mmpose.registry import DATASETS

from mmstable.datasets.synthetic import (PRESETS, FaceVideoGenerator,
                                         default_ann_file, preset_settings)
from mmstable.datasets.synthetic_face_dataset import SyntheticFaceVideoDataset


def _speed(gen, videos=4, frames=60):
    """Mean landmark displacement per frame, % of the face box's side."""
    out = []
    for v in range(videos):
        kpts = gen.sample_trajectory((0, 2, v), frames)[3].astype(float)
        side = (kpts.max(1) - kpts.min(1)).max(-1)
        step = np.linalg.norm(np.diff(kpts, axis=0), axis=-1).mean(-1)
        out.append((step / side[1:]).mean() * 100)
    return float(np.mean(out))


def test_presets_are_ordered_by_speed_and_moving_is_realistic():
    speeds = {p: _speed(FaceVideoGenerator.from_preset(p)) for p in PRESETS}
    assert speeds['still'] < speeds['talking'] < speeds['moving'] < \
        speeds['fast']
    # everyday head motion at 25-30 fps: 0.5-3 % of the face per frame
    assert 0.5 <= speeds['moving'] <= 3.
    assert speeds['fast'] >= 2 * speeds['moving']
    # 'still' is the demo's original test set, unchanged
    assert preset_settings('still') == dict(motion=0.1, expression=0.5,
                                            noise=3.)


def test_speed_scales_time_of_the_head_motion():
    # no expression: the landmarks depend on the head pose only; speed 2
    # at frame t is speed 1 at frame 2t (frequencies double, same draws)
    slow = FaceVideoGenerator(expression=0., motion=0.5)
    fast = FaceVideoGenerator(expression=0., motion=0.5, speed=2.)
    k1 = slow.sample_trajectory((3, 2, 1), 40)[3]
    k2 = fast.sample_trajectory((3, 2, 1), 20)[3]
    np.testing.assert_allclose(k2, k1[::2], atol=1e-3)
    # speed 1 keeps the cached settings' format (data made before it)
    assert 'speed' not in slow.config()
    assert fast.config()['speed'] == 2.
    with pytest.raises(ValueError, match='speed must be > 0'):
        FaceVideoGenerator(speed=0.)


@pytest.fixture(scope='module')
def scenario_dataset(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('syn'))
    cfg = dict(type='SyntheticFaceVideoDataset', data_root=root, split='test',
               num_videos=2, num_frames=5, presets=['still', 'moving'],
               box_modes=['exact', 'jittered'],
               box_jitter=dict(center=5., size=4.), test_mode=True)
    return root, cfg, DATASETS.build(cfg)


def test_every_preset_and_box_mode_is_a_scenario(scenario_dataset):
    root, _, ds = scenario_dataset
    assert len(ds) == 2 * 2 * 2 * 5  # presets x modes x videos x frames
    infos = [ds.get_data_info(i) for i in range(len(ds))]
    assert sorted({i['scenario'] for i in infos}) == [
        'moving_exact', 'moving_jittered', 'still_exact', 'still_jittered']
    assert len({i['video_id'] for i in infos}) == 8
    assert {i['video_id'] for i in infos if i['scenario'] == 'still_jittered'
            } == {'test_still_000_jittered', 'test_still_001_jittered'}
    for preset in ('still', 'moving'):
        assert (tmp := f'{root}/{default_ann_file("test", preset)}') and \
            open(tmp).read(1) == '{'
    # the still preset renders the demo's original test videos: same seeds
    still = FaceVideoGenerator.from_preset('still').sample_trajectory(
        (0, 2, 1), 5)[3]
    got = [i for i in infos if i['video_id'] == 'test_still_001_exact']
    np.testing.assert_allclose(
        np.stack([g['keypoints'][0] for g in got]), still, atol=1e-3)


def test_exact_box_is_the_square_around_the_landmarks(scenario_dataset):
    _, _, ds = scenario_dataset
    info = ds.get_data_info(0)
    k = info['keypoints'][0]
    side = np.ceil((k.max(0) - k.min(0)).max())
    np.testing.assert_allclose(info['bbox_center'][0],
                               (k.min(0) + k.max(0)) / 2, atol=1e-3)
    np.testing.assert_allclose(info['bbox_scale'][0], [side, side])


def test_jittered_box_is_seeded_per_video_and_frame(scenario_dataset):
    _, cfg, ds = scenario_dataset
    infos = [ds.get_data_info(i) for i in range(len(ds))]
    exact = {(i['video_id'][:-len('_exact')], i['frame_id']): i
             for i in infos if i['scenario'].endswith('_exact')}
    shifts = []
    for info in infos:
        if not info['scenario'].endswith('_jittered'):
            continue
        ref = exact[(info['video_id'][:-len('_jittered')], info['frame_id'])]
        side = ref['bbox_scale'][0, 0]
        # documented seed: (box_seed, crc32(video_id), frame_id); the centre
        # moves by side · σ_c · N(0, 1), the side scales by 1 + σ_s · N(0, 1)
        rng = np.random.default_rng(
            (0, zlib.crc32(info['video_id'].encode()), info['frame_id']))
        z = rng.standard_normal(3)
        np.testing.assert_allclose(info['bbox_center'][0],
                                   ref['bbox_center'][0] + side * .05 * z[:2],
                                   rtol=1e-5)
        np.testing.assert_allclose(info['bbox_scale'][0, 0],
                                   side * (1 + .04 * z[2]), rtol=1e-5)
        x0, y0, x1, y1 = info['bbox'][0]
        assert x1 - x0 == pytest.approx(info['bbox_scale'][0, 0], rel=1e-5)
        shifts.append(info['bbox_center'][0] - ref['bbox_center'][0])
    assert np.abs(shifts).max() > 0  # the boxes do move
    # built again (another worker, another run): the same boxes
    again = DATASETS.build(cfg)
    np.testing.assert_array_equal(again.get_data_info(7)['bbox'],
                                  ds.get_data_info(7)['bbox'])


def test_test_pipeline_packs_the_scenario(scenario_dataset):
    root, cfg, _ = scenario_dataset
    ds = DATASETS.build(dict(cfg, pipeline=[
        dict(type='LoadImage'), dict(type='GetBBoxCenterScale', padding=1.25),
        dict(type='TopdownAffine', input_size=(64, 64)),
        dict(type='PackClipInputs')]))
    sample = ds[len(ds) - 1]['data_samples']
    assert sample.metainfo['scenario'] == 'moving_jittered'
    assert sample.metainfo['video_id'] == 'test_moving_001_jittered'


def test_presets_without_box_modes_and_box_modes_without_presets(tmp_path):
    base = dict(data_root=str(tmp_path), split='test', num_videos=1,
                num_frames=2, test_mode=True)
    ds = SyntheticFaceVideoDataset(presets=['talking'], **base)
    assert [ds.get_data_info(i)['scenario'] for i in range(2)] == \
        ['talking'] * 2
    ds = SyntheticFaceVideoDataset(box_modes=['jittered'], **base)
    assert ds.get_data_info(1)['scenario'] == 'jittered'
    assert ds.get_data_info(1)['video_id'] == 'test_000_jittered'


@pytest.mark.parametrize('kwargs, match', [
    (dict(presets=['windy']), "Unknown synthetic video preset 'windy'"),
    (dict(presets='still'), 'presets: expected a list'),
    (dict(presets=['still', 'still']), 'presets: expected a list'),
    (dict(box_modes=['tracker']), "box_modes: expected names"),
    (dict(box_jitter=dict(centre=2.)), 'box_jitter: expected'),
    (dict(box_jitter=dict(center=-1.)), 'box_jitter: expected'),
    (dict(presets=['still'], ann_file='a.json'), 'drop ann_file'),
    (dict(presets=['still'], as_images=True), 'as_images=False'),
])
def test_bad_scenario_arguments(tmp_path, kwargs, match):
    with pytest.raises((ValueError, KeyError), match=match):
        SyntheticFaceVideoDataset(data_root=str(tmp_path), split='test',
                                  num_videos=1, num_frames=2, **kwargs)


def test_generator_overrides_the_preset_and_is_cached(tmp_path):
    import json
    base = dict(data_root=str(tmp_path), split='test', num_videos=1,
                num_frames=2, presets=['fast'], test_mode=True)
    SyntheticFaceVideoDataset(generator=dict(noise=0.), **base)
    with open(tmp_path / default_ann_file('test', 'fast')) as f:
        info = json.load(f)['info']
    assert info['generator']['noise'] == 0.
    assert info['generator']['speed'] == preset_settings('fast')['speed']
    assert info['generator']['blur'] == preset_settings('fast')['blur']
    # other settings regenerate the preset's file, the same ones reuse it
    mtime = (tmp_path / default_ann_file('test', 'fast')).stat().st_mtime_ns
    SyntheticFaceVideoDataset(generator=dict(noise=0.), **base)
    assert (tmp_path / default_ann_file('test', 'fast')).stat(
    ).st_mtime_ns == mtime
    SyntheticFaceVideoDataset(**base)
    with open(tmp_path / default_ann_file('test', 'fast')) as f:
        assert json.load(f)['info']['generator']['noise'] == 3.
