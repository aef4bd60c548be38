"""Synthetic face videos: generator, SyntheticFaceVideoDataset, CLI."""
import importlib.util
import json
import os
import os.path as osp
import time

import cv2
import numpy as np
import pytest

from mmstable.datasets.synthetic import (NUM_KEYPOINTS, FaceVideoGenerator,
                                         video_key, write_split)
from mmstable.datasets.synthetic_face_dataset import SyntheticFaceVideoDataset

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
FIXTURE_300W = osp.join(
    osp.dirname(REPO), 'shared', 'fixtures', 'mmpose-testdata', '300w',
    'test_300w.json')
# small frames keep the dataset tests fast
SMALL = dict(image_size=128, face_size=(50., 70.))


def _gray(img, p):
    x, y = np.round(p).astype(int)
    b, g, r = img[y, x].astype(float)
    return 0.114 * b + 0.587 * g + 0.299 * r


def _redness(img, p):
    x, y = np.round(p).astype(int)
    b, g, r = img[y, x].astype(float)
    return r / (b + g + r + 1e-6)


def test_same_seed_same_video_other_seed_other_video():
    gen = FaceVideoGenerator()
    a = gen.generate((0, 0, 0), 4)
    b = FaceVideoGenerator().generate((0, 0, 0), 4)
    c = gen.generate((1, 0, 0), 4)
    assert a.frames.shape == (4, 256, 256, 3) and a.frames.dtype == np.uint8
    assert a.keypoints.shape == (4, NUM_KEYPOINTS, 2)
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.keypoints, b.keypoints)
    assert np.abs(a.keypoints - c.keypoints).max() > 1
    assert np.abs(a.frames.astype(int) - c.frames).mean() > 10
    # splits never share a seed key, hence never a video
    keys = {video_key(0, s, i) for s in ('train', 'val', 'test')
            for i in range(5)}
    assert len(keys) == 15


def test_landmarks_lie_on_rendered_features():
    """Eyes, lash lines, brows and lips are drawn through the landmarks: the
    pixel at a landmark differs from the skin right next to the feature."""
    gen = FaceVideoGenerator(noise=0, blur=0)
    checked = 0

    def unit(v):
        return v / np.linalg.norm(v)

    for seed in range(6):
        _, _, exprs, _ = gen.sample_trajectory((seed, 9, 0), 12)
        video = gen.generate((seed, 9, 0), 12)
        for t in range(0, 12, 3):
            img, lm = video.frames[t], video.keypoints[t].astype(float)
            for eye in (lm[36:42], lm[42:48]):
                for a, b in ((0, 3), (3, 0)):  # the lash line ends at corners
                    skin = eye[a] + 4 * unit(eye[a] - eye[b])
                    assert _gray(img, eye[a]) < 0.8 * _gray(img, skin), (
                        seed, t, a)
                if exprs[t].blink < 0.3:
                    # open eye: iris or sclera along the eye's axis, not the
                    # skin under the eye
                    lid_up, lid_lo = eye[1:3].mean(0), eye[4:6].mean(0)
                    xs, ys = np.round(2 * lid_lo - lid_up).astype(int)
                    diff = max(
                        np.abs(img[y, x].astype(int) - img[ys, xs]).max()
                        for x, y in np.round([
                            (2 * eye[0] + eye[3]) / 3, eye.mean(0),
                            (eye[0] + 2 * eye[3]) / 3
                        ]).astype(int))
                    assert diff > 30, (seed, t)
            for brow, eye_lid in ((19, 37), (24, 44)):  # brows are dark
                forehead = lm[brow] + 0.6 * (lm[brow] - lm[eye_lid])
                assert _gray(img, lm[brow]) < 0.8 * _gray(img, forehead)
            # lips (between the outer and inner lip landmarks) are darker and
            # redder than the skin just above / below them
            for outer, inner in ((51, 62), (57, 66), (50, 61), (56, 65)):
                lip = (lm[outer] + lm[inner]) / 2
                skin = lm[outer] + 0.8 * (lm[outer] - lm[inner])
                assert _gray(img, lip) < _gray(img, skin), (seed, t, outer)
                assert _redness(img, lip) > _redness(img, skin), (seed, t)
            checked += 1
    assert checked == 24


def test_motion_is_smooth_and_noise_touches_pixels_not_landmarks():
    noisy = FaceVideoGenerator(noise=2., blur=1.)
    clean = FaceVideoGenerator(noise=0., blur=0.)
    a = noisy.generate((4, 0, 1), 30)
    b = clean.generate((4, 0, 1), 30)
    np.testing.assert_array_equal(a.keypoints, b.keypoints)
    assert np.abs(a.frames.astype(int) - b.frames).mean() > 2

    eyes = np.r_[36:48]  # blinks are fast: eyelids are exempt from d2
    rest = np.setdiff1d(np.arange(NUM_KEYPOINTS), eyes)
    for seed in range(20):
        *_, kpts = clean.sample_trajectory((seed, 0, 0), 60)
        assert kpts.min() >= 0 and kpts.max() < 256
        width = np.linalg.norm(kpts[:, 16] - kpts[:, 0], axis=-1)
        step = np.linalg.norm(np.diff(kpts, axis=0), axis=-1)
        assert (step / width[1:, None]).max() < 0.12, seed
        accel = np.linalg.norm(np.diff(kpts[:, rest], 2, axis=0), axis=-1)
        assert accel.max() < 5 and accel.mean() < 1, seed
    # a still, neutral head does not move at all: all jitter is in pixels
    still = FaceVideoGenerator(motion=0, expression=0)
    video = still.generate((2, 0, 0), 5)
    assert np.ptp(video.keypoints, axis=0).max() == 0
    assert np.abs(np.diff(video.frames.astype(int), axis=0)).mean() > 1


def test_generating_two_videos_of_ten_frames_is_fast(tmp_path):
    FaceVideoGenerator().generate(0, 1)  # warm up imports and caches
    t0 = time.perf_counter()
    info = write_split(str(tmp_path), 'train', num_videos=2, num_frames=10)
    assert time.perf_counter() - t0 < 2.
    assert info['num_images'] == 20


def test_written_annotations_have_mmpose_300w_fields(tmp_path):
    write_split(str(tmp_path), 'val', 2, 3, generator=SMALL)
    ann = osp.join(tmp_path, 'annotations',
                   'face_landmarks_synthetic_val.json')
    with open(ann) as f:
        data = json.load(f)
    assert len(data['images']) == len(data['annotations']) == 6
    img, a = data['images'][4], data['annotations'][4]
    assert img['file_name'] == 'val_001/000001.jpg'
    assert (img['video_id'], img['frame_id']) == ('val_001', 1)
    assert osp.isfile(osp.join(tmp_path, 'images', img['file_name']))
    if osp.isfile(FIXTURE_300W):
        with open(FIXTURE_300W) as f:
            ref = json.load(f)
        assert set(ref['images'][0]) <= set(img)
        assert set(ref['annotations'][0]) <= set(a)
    kpts = np.array(a['keypoints']).reshape(-1, 3)
    assert kpts.shape == (68, 3) and (kpts[:, 2] == 1).all()
    # 300vw2coco.py: centre of the landmarks' extent, scale = ceil(side)/200
    lo, hi = kpts[:, :2].min(0), kpts[:, :2].max(0)
    np.testing.assert_allclose(a['center'], (lo + hi) / 2, atol=1e-2)
    assert a['scale'] == np.ceil((hi - lo).max()) / 200
    x, y, w, h = a['bbox']
    np.testing.assert_allclose([x + w / 2, y + h / 2], a['center'])
    assert w == h == pytest.approx(a['scale'] * 200)


def _pipeline(input_size=(128, 128)):
    codec = dict(
        type='MSRAHeatmap', input_size=input_size,
        heatmap_size=(input_size[0] // 4, input_size[1] // 4), sigma=1.5)
    return [
        dict(type='LoadImage'),
        dict(type='GetBBoxCenterScale'),
        dict(type='RandomFlip', direction='horizontal'),
        dict(type='RandomBBoxTransform', shift_prob=0, rotate_factor=60,
             scale_factor=(0.75, 1.25)),
        dict(type='TopdownAffine', input_size=input_size),
        dict(type='GenerateTarget', encoder=codec),
        dict(type='PackPoseInputs', pack_transformed=True,
             meta_keys=('id', 'img_id', 'img_path', 'ori_shape', 'img_shape',
                        'input_size', 'input_center', 'input_scale', 'flip',
                        'flip_direction', 'flip_indices', 'video_id',
                        'frame_id')),
    ]


def test_dataset_builds_from_config_and_runs_mmpose_300w_pipeline(tmp_path):
    from mmpose.registry import DATASETS
    cfg = dict(
        type='SyntheticFaceVideoDataset', data_root=str(tmp_path),
        split='train', num_videos=2, num_frames=3, generator=SMALL,
        pipeline=_pipeline())
    dataset = DATASETS.build(cfg)
    assert isinstance(dataset, SyntheticFaceVideoDataset)
    assert len(dataset) == 6
    assert dataset.metainfo['num_keypoints'] == 68
    assert dataset.metainfo['flip_indices'][36] == 45  # 300W metainfo

    info = dataset.get_data_info(4)
    assert info['img_path'].endswith(osp.join('train_001', '000001.jpg'))
    assert (info['video_id'], info['frame_id']) == ('train_001', 1)
    assert info['keypoints'].shape == (1, 68, 2)
    assert info['keypoints_visible'].shape == (1, 68)
    assert info['bbox'].shape == (1, 4)
    assert info['bbox_center'].shape == info['bbox_scale'].shape == (1, 2)
    for key in ('id', 'img_id'):
        assert key in info

    # the pipeline's RandomBBoxTransform draws from numpy's global RNG: fix
    # it so the result does not depend on which tests ran before
    np.random.seed(0)
    item = dataset[4]
    assert tuple(item['inputs'].shape) == (3, 128, 128)
    sample = item['data_samples']
    assert tuple(sample.gt_fields.heatmaps.shape) == (68, 32, 32)
    assert sample.gt_fields.heatmaps.max() > 0.9
    assert (sample.metainfo['video_id'], sample.metainfo['frame_id']) == (
        'train_001', 1)
    kpts = sample.gt_instances.transformed_keypoints
    assert ((kpts >= 0) & (kpts < 128)).all()

    # frames of a video are in order
    ids = [(dataset.get_data_info(i)['video_id'],
            dataset.get_data_info(i)['frame_id']) for i in range(6)]
    assert ids == sorted(ids)

    # as_images: each frame a one-frame video
    images = SyntheticFaceVideoDataset(
        data_root=str(tmp_path), split='train', as_images=True)
    infos = [images.get_data_info(i) for i in range(len(images))]
    assert len({i['video_id'] for i in infos}) == 6
    assert {i['frame_id'] for i in infos} == {0}
    np.testing.assert_array_equal(infos[4]['keypoints'], info['keypoints'])


def test_dataset_caches_and_regenerates_on_other_settings(tmp_path):
    kwargs = dict(data_root=str(tmp_path), split='test', num_videos=1,
                  num_frames=2, generator=SMALL)
    SyntheticFaceVideoDataset(**kwargs)
    ann = osp.join(tmp_path, 'annotations',
                   'face_landmarks_synthetic_test.json')
    stamp = os.stat(ann).st_mtime_ns
    # same or unspecified settings: the cache is used as it is
    assert len(SyntheticFaceVideoDataset(**kwargs)) == 2
    assert len(SyntheticFaceVideoDataset(
        data_root=str(tmp_path), split='test')) == 2
    assert os.stat(ann).st_mtime_ns == stamp
    # other settings: regenerated
    assert len(SyntheticFaceVideoDataset(**dict(kwargs, num_frames=3))) == 3


def test_splits_do_not_share_videos(tmp_path):
    heads = {}
    for split in ('train', 'val', 'test'):
        ds = SyntheticFaceVideoDataset(
            data_root=str(tmp_path), split=split, num_videos=2, num_frames=1,
            generator=SMALL)
        heads[split] = np.stack(
            [ds.get_data_info(i)['keypoints'][0] for i in range(2)])
    for a, b in (('train', 'val'), ('train', 'test'), ('val', 'test')):
        for i in range(2):
            for j in range(2):
                assert np.abs(heads[a][i] - heads[b][j]).max() > 1


def test_bad_arguments_raise_clear_errors(tmp_path):
    with pytest.raises(ValueError, match='num_frames must be >= 1, got 0'):
        write_split(str(tmp_path), 'train', 1, 0)
    with pytest.raises(ValueError, match='num_frames must be >= 1'):
        FaceVideoGenerator().generate(0, 0)
    with pytest.raises(ValueError, match=r"split must be one of .*'tset'"):
        write_split(str(tmp_path), 'tset', 1, 1)
    with pytest.raises(ValueError, match=r"split must be one of .*'tset'"):
        SyntheticFaceVideoDataset(data_root=str(tmp_path), split='tset')
    with pytest.raises(ValueError, match='num_videos must be >= 1'):
        write_split(str(tmp_path), 'train', 0, 1)
    with pytest.raises(ValueError, match='face_size'):
        FaceVideoGenerator(image_size=128, face_size=(100, 120))
    with pytest.raises(ValueError, match='img_ext'):
        write_split(str(tmp_path), 'train', 1, 1, img_ext='.bmp')
    assert not osp.exists(osp.join(tmp_path, 'annotations'))


def _make_synthetic_faces_cli():
    """tools/dataset_converters/make_synthetic_faces.py as a module."""
    path = osp.join(REPO, 'tools', 'dataset_converters',
                    'make_synthetic_faces.py')
    spec = importlib.util.spec_from_file_location('make_synthetic_faces',
                                                  path)
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    return cli


def test_cli_writes_all_splits(tmp_path, capsys):
    cli = _make_synthetic_faces_cli()
    out = str(tmp_path / 'synthetic')
    cli.main([
        '--out', out, '--videos', '2', '--frames', '2', '--val-videos', '1',
        '--val-frames', '2', '--test-videos', '1', '--test-frames', '3',
        '--image-size', '128', '--face-size', '50', '70', '--seed', '3'
    ])
    printed = capsys.readouterr().out
    assert 'wrote 9 frames of 128x128' in printed
    for split, n in (('train', 4), ('val', 2), ('test', 3)):
        assert f'{split}' in printed
        with open(osp.join(out, 'annotations',
                           f'face_landmarks_synthetic_{split}.json')) as f:
            data = json.load(f)
        assert len(data['images']) == n
        assert data['info']['seed'] == 3
    frame = cv2.imread(osp.join(out, 'images', 'test_000', '000002.jpg'))
    assert frame.shape == (128, 128, 3)
    with pytest.raises(SystemExit, match='num_frames must be >= 1'):
        cli.main(['--out', out, '--frames', '0'])


def test_cli_writes_refiner_training_videos_per_preset(tmp_path, capsys):
    """--clip-videos: the four presets' training videos (new identities:
    seed + 1), read as clips by VideoClipDataset."""
    cli = _make_synthetic_faces_cli()
    out = str(tmp_path / 'synthetic')
    cli.main([
        '--out', out, '--splits', 'val', '--val-videos', '1', '--val-frames',
        '1', '--image-size', '128', '--face-size', '50', '70', '--seed', '3',
        '--clip-videos', '2', '--clip-frames', '5'
    ])
    printed = capsys.readouterr().out
    assert 'wrote 41 frames of 128x128' in printed  # 1 + 4 presets x 2 x 5
    from mmstable.datasets import VideoClipDataset
    for preset in ('still', 'talking', 'moving', 'fast'):
        ann = f'annotations/face_landmarks_synthetic_train_{preset}.json'
        with open(osp.join(out, ann)) as f:
            data = json.load(f)
        assert data['info']['seed'] == 4
        assert {im['video_id'] for im in data['images']} == {
            f'train_{preset}_000', f'train_{preset}_001'}
        clips = VideoClipDataset(ann_file=ann, data_root=out,
                                 data_prefix=dict(img='images/'),
                                 clip_len=5, pipeline=[])
        assert len(clips) == 2 and len(clips[0]['frames']) == 5
    with pytest.raises(SystemExit, match='clip-videos'):
        cli.main(['--out', out, '--splits', 'val', '--clip-videos', '1',
                  '--clip-frames', '0'])
