import importlib.util
import json
import os.path as osp

import cv2
import numpy as np
import pytest

from mmpose.registry import DATASETS
from mmstable.datasets import SCENARIO_VIDEOS, VideoClipDataset

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CODEC = dict(type='MSRAHeatmap',
             input_size=(256, 256),
             heatmap_size=(64, 64),
             sigma=2)
TRAIN_PIPELINE = [
    # one flip / bbox jitter for the whole clip
    dict(type='ApplyToFrames',
         shared_random=True,
         transforms=[
             dict(type='LoadImage'),
             dict(type='GetBBoxCenterScale'),
             dict(type='RandomFlip', direction='horizontal'),
             dict(type='RandomBBoxTransform', shift_prob=0, rotate_factor=30),
             dict(type='TopdownAffine', input_size=CODEC['input_size']),
         ]),
    dict(type='ApplyToFrames',
         transforms=[
             dict(type='VideoDegradation'),
             dict(type='GenerateTarget', encoder=CODEC)
         ]),
    dict(type='PackClipInputs'),
]
TEST_PIPELINE = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='TopdownAffine', input_size=CODEC['input_size']),
    dict(type='PackClipInputs'),
]


def load_converter():
    path = osp.join(REPO, 'tools', 'dataset_converters', '300vw_to_coco.py')
    spec = importlib.util.spec_from_file_location('vw_to_coco', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def broken_json(mmpose_testdata, tmp_path):
    """MMPose's pickled 300VW broken_frames.npy converted to JSON (read
    without unpickling)."""
    from mmstable.datasets.broken_frames import convert_broken_frames
    out = str(tmp_path / 'broken_frames.json')
    convert_broken_frames(
        osp.join(mmpose_testdata, '300vw', 'broken_frames.npy'), out)
    return out


def vw_cfg(root, **kwargs):
    cfg = dict(type='VideoClipDataset',
               data_root=root,
               ann_file='anno_300vw.json',
               data_prefix=dict(img=''),
               pipeline=TRAIN_PIPELINE)
    cfg.update(kwargs)
    return cfg


def with_frame_731(root, tmp_path, file_name='401/imgs/000731.jpg'):
    """The 300VW sample's annotations plus frame 731 of video 401 (broken in
    300VW), as a new ann_file."""
    with open(osp.join(root, 'anno_300vw.json')) as f:
        ann = json.load(f)
    img = dict(ann['images'][2], id=99, file_name=file_name)
    ann['images'].append(img)
    ann['annotations'].append(dict(ann['annotations'][2], id=99, image_id=99))
    path = tmp_path / 'with_731.json'
    path.write_text(json.dumps(ann))
    return str(path)


def test_scenarios():
    assert len(SCENARIO_VIDEOS['train']) == 50
    assert len(SCENARIO_VIDEOS['test']) == 64
    assert [len(SCENARIO_VIDEOS[s]) for s in (1, 2, 3)] == [31, 19, 14]
    assert not set(SCENARIO_VIDEOS['train']) & set(SCENARIO_VIDEOS['test'])


def test_test_mode_whole_videos_in_frame_order(mmpose_testdata):
    root = osp.join(mmpose_testdata, '300vw')
    dataset = DATASETS.build(
        vw_cfg(root, test_mode=True, pipeline=TEST_PIPELINE))
    assert len(dataset) == 3
    keys = [(dataset[i]['data_samples'].video_id,
             dataset[i]['data_samples'].frame_id) for i in range(3)]
    # 1-based frame files 000006, 000009, 000732 -> 0-based frame_id
    assert keys == [('001', 5), ('001', 8), ('401', 731)]
    assert dataset.video_ids == ['001', '001', '401']
    item = dataset[0]
    assert item['inputs'].shape == (3, 256, 256)
    assert item['data_samples'].clip_len == 1
    assert dataset.metainfo['dataset_name'] == '300vw'


def test_train_clips(mmpose_testdata):
    root = osp.join(mmpose_testdata, '300vw')
    dataset = DATASETS.build(vw_cfg(root, clip_len=2))
    assert len(dataset) == 1  # 401 has one frame: dropped (tail='drop')
    item = dataset[0]
    assert item['inputs'].shape == (2, 3, 256, 256)
    samples = item['data_samples']
    assert [s.video_id for s in samples] == ['001', '001']
    assert [s.frame_id for s in samples] == [5, 8]
    assert [s.clip_len for s in samples] == [2, 2]
    assert samples[0].flip == samples[1].flip  # one flip per clip
    assert samples[0].gt_instances.transformed_keypoints.shape == (1, 68, 2)
    assert samples[0].gt_fields.heatmaps.shape == (68, 64, 64)


def test_tail_policy_and_frame_gap(mmpose_testdata):
    root = osp.join(mmpose_testdata, '300vw')
    padded = DATASETS.build(vw_cfg(root, clip_len=2, tail='pad'))
    assert len(padded) == 2
    assert [s.frame_id for s in padded[1]['data_samples']] == [731, 731]
    # frames 5 and 8 of video 001 are not consecutive
    strict = DATASETS.build(
        vw_cfg(root, clip_len=2, tail='pad', max_frame_gap=1))
    assert [[s.frame_id for s in strict[i]['data_samples']]
            for i in range(len(strict))] == [[5, 5], [8, 8], [731, 731]]
    ranged = DATASETS.build(vw_cfg(root, clip_len=(1, 2), stride=1))
    assert len(ranged) == 1
    lengths = {len(ranged[0]['data_samples']) for _ in range(20)}
    assert lengths <= {1, 2}
    with pytest.raises(ValueError, match='tail'):
        DATASETS.build(vw_cfg(root, tail='wrap'))


def test_scenario_selection(mmpose_testdata):
    root = osp.join(mmpose_testdata, '300vw')
    s1 = DATASETS.build(
        vw_cfg(root, scenario=1, test_mode=True, pipeline=TEST_PIPELINE))
    assert set(s1.video_ids) == {'401'}
    train = DATASETS.build(
        vw_cfg(root, scenario='train', test_mode=True, pipeline=TEST_PIPELINE))
    assert set(train.video_ids) == {'001'}
    with pytest.raises(ValueError, match='scenario 3'):
        DATASETS.build(vw_cfg(root, scenario=3, test_mode=True))
    with pytest.raises(ValueError, match='scenario'):
        DATASETS.build(vw_cfg(root, scenario=4))


def test_broken_frames_are_skipped(mmpose_testdata, tmp_path, broken_json):
    root = osp.join(mmpose_testdata, '300vw')
    ann_file = with_frame_731(root, tmp_path)
    kept = DATASETS.build(
        vw_cfg(root, ann_file=ann_file, test_mode=True,
               pipeline=TEST_PIPELINE))
    assert len(kept) == 4 and kept.video_ids == ['001', '001', '401', '401']
    skipped = DATASETS.build(
        vw_cfg(root,
               ann_file=ann_file,
               test_mode=True,
               pipeline=TEST_PIPELINE,
               broken_frames=broken_json))
    assert len(skipped) == 3
    assert [skipped.get_data_info(i)['frame_id'] for i in range(3)] == \
        [5, 8, 731]


def test_missing_frame_image(mmpose_testdata, tmp_path):
    root = osp.join(mmpose_testdata, '300vw')
    ann_file = with_frame_731(root, tmp_path, '401/imgs/000999.jpg')
    with pytest.raises(FileNotFoundError, match='000999.jpg'):
        DATASETS.build(vw_cfg(root, ann_file=ann_file))
    # listed as broken: skipped, no error (frame 999 -> file 000999)
    dataset = DATASETS.build(
        vw_cfg(root,
               ann_file=ann_file,
               broken_frames={'401': [999]},
               test_mode=True,
               pipeline=TEST_PIPELINE))
    assert len(dataset) == 3


def write_pts(path, points, n_points=None):
    n_points = len(points) if n_points is None else n_points
    lines = ['version: 1', f'n_points: {n_points}', '{']
    lines += [f'{x:.3f} {y:.3f}' for x, y in points]
    lines += ['}']
    path.write_text('\n'.join(lines) + '\n')


def test_read_pts_errors(tmp_path):
    conv = load_converter()
    pts = np.random.RandomState(0).uniform(10, 50, (68, 2))
    good = tmp_path / 'good.pts'
    write_pts(good, pts)
    np.testing.assert_allclose(conv.read_pts(str(good)), pts, atol=1e-3)
    short = tmp_path / 'short.pts'
    write_pts(short, pts[:67])
    with pytest.raises(ValueError,
                       match=r'short\.pts:71: expected 68 '
                       r'points, found 67'):
        conv.read_pts(str(short))
    header = tmp_path / 'header.pts'
    write_pts(header, pts[:67], n_points=68)
    with pytest.raises(ValueError,
                       match=r'header\.pts:71: header says '
                       r'n_points: 68 but 67'):
        conv.read_pts(str(header))
    garbage = tmp_path / 'garbage.pts'
    write_pts(garbage, pts)
    lines = garbage.read_text().splitlines()
    lines[9] = '12.0 abc'
    garbage.write_text('\n'.join(lines))
    with pytest.raises(ValueError,
                       match=r"garbage\.pts:10: expected two "
                       r"numbers \"x y\", found '12.0 abc'"):
        conv.read_pts(str(garbage))
    unclosed = tmp_path / 'unclosed.pts'
    unclosed.write_text('version: 1\nn_points: 68\n{\n1 2\n')
    with pytest.raises(ValueError, match=r'unclosed\.pts: no "}"'):
        conv.read_pts(str(unclosed))


def test_convert_fixture_matches_mmpose(mmpose_testdata, tmp_path,
                                       broken_json):
    """Converting the raw 300VW sample (frames already extracted) gives
    MMPose's annotations, without the broken frame 731 of video 401."""
    conv = load_converter()
    root = osp.join(mmpose_testdata, '300vw')
    out = tmp_path / 'converted.json'
    data = conv.convert(root,
                        str(out),
                        broken_frames=broken_json,
                        extract=False)
    with open(osp.join(root, 'anno_300vw.json')) as f:
        ref = json.load(f)
    assert [i['file_name'] for i in data['images']] == \
        [i['file_name'] for i in ref['images']]
    assert [(i['video_id'], i['frame_id']) for i in data['images']] == \
        [('001', 5), ('001', 8), ('401', 731)]
    for a, b in zip(data['annotations'], ref['annotations']):
        np.testing.assert_allclose(a['keypoints'], b['keypoints'], atol=1e-3)
        np.testing.assert_allclose(a['center'], b['center'], atol=1e-3)
        assert a['scale'] == pytest.approx(b['scale'])
    dataset = DATASETS.build(vw_cfg(root, ann_file=str(out), clip_len=2))
    assert [s.frame_id for s in dataset[0]['data_samples']] == [5, 8]


def test_convert_extracts_video(tmp_path):
    """Raw folder with vid.avi: frames are extracted with OpenCV (1-based
    names), broken frames skipped, video_id/frame_id written."""
    conv = load_converter()
    video_dir = tmp_path / '300vw' / '002'
    (video_dir / 'annot').mkdir(parents=True)
    writer = cv2.VideoWriter(str(video_dir / 'vid.avi'),
                             cv2.VideoWriter_fourcc(*'MJPG'), 25, (64, 48))
    assert writer.isOpened()
    rng = np.random.RandomState(0)
    for n in range(1, 5):
        writer.write(np.full((48, 64, 3), 40 * n, np.uint8))
        write_pts(video_dir / 'annot' / f'{n:06d}.pts',
                  rng.uniform(10, 40, (68, 2)))
    writer.release()
    out = tmp_path / 'ann.json'
    conv.main([
        str(tmp_path / '300vw'),
        str(out), '--videos', '002', '--broken-frames',
        str(_write_json(tmp_path / 'broken.json', {'002': [2]}))
    ])
    data = json.loads(out.read_text())
    assert [(i['file_name'], i['frame_id'])
            for i in data['images']] == [('002/imgs/000001.png', 0),
                                         ('002/imgs/000003.png', 2),
                                         ('002/imgs/000004.png', 3)]
    assert (data['images'][0]['height'], data['images'][0]['width']) == (48,
                                                                         64)
    dataset = VideoClipDataset(ann_file=str(out),
                               data_prefix=dict(img=str(tmp_path / '300vw') +
                                                '/'),
                               pipeline=TEST_PIPELINE,
                               test_mode=True)
    assert [dataset.get_data_info(i)['frame_id'] for i in range(3)] == \
        [0, 2, 3]
    item = dataset[1]
    assert item['data_samples'].video_id == '002'


def _write_json(path, obj):
    path.write_text(json.dumps(obj))
    return path


def test_read_pts_binary_file(tmp_path):
    """A binary or garbled .pts names the file and the line."""
    conv = load_converter()
    binary = tmp_path / 'bin.pts'
    binary.write_bytes(b'version: 1\nn_points: 68\n{\n\xff\xd8\xff\xe0 JFIF')
    with pytest.raises(ValueError,
                       match=r"bin\.pts:4: not a text \.pts file \(byte "
                       r"b'\\xff' at offset 26\)"):
        conv.read_pts(str(binary))
    nul = tmp_path / 'nul.pts'
    nul.write_bytes(b'version: 1\n\x00\x00\x00\x00')
    with pytest.raises(ValueError, match=r'nul\.pts:2: not a text \.pts '
                       r'file \(NUL byte\)'):
        conv.read_pts(str(nul))


def write_video(path, num_frames, size=(32, 24)):
    """An MJPG .avi whose frame n (1-based) is uniformly 40 * n grey."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), 25,
                             size)
    assert writer.isOpened()
    for n in range(1, num_frames + 1):
        writer.write(np.full((size[1], size[0], 3), 40 * n, np.uint8))
    writer.release()
    return str(path)


def test_extract_frames_after_an_interrupted_extraction(tmp_path):
    """imgs/ left with 2 of 5 frames (an interrupted run) is re-extracted,
    and the log says so; a complete imgs/ is kept untouched."""
    conv = load_converter()
    video = write_video(tmp_path / 'vid.avi', 5)
    imgs = tmp_path / 'imgs'
    imgs.mkdir()
    for n in (1, 2):  # stale, wrong content
        cv2.imwrite(str(imgs / f'{n:06d}.png'), np.zeros((24, 32, 3),
                                                         np.uint8))
    log = []
    assert conv.extract_frames(video, str(imgs), log=log.append) == 5
    assert log[0] == (f'{imgs} holds 2 frames but OpenCV reports 5 for '
                      f'{video} (an interrupted extraction?): extracting '
                      'again')
    assert log[-1] == f'{video}: extracted 5 frames to {imgs}'
    assert sorted(p.name for p in imgs.iterdir()) == \
        [f'{n:06d}.png' for n in range(1, 6)]
    first = cv2.imread(str(imgs / '000001.png'))
    assert abs(float(first.mean()) - 40) < 3  # the video's frame, not zeros
    assert not (tmp_path / 'imgs.partial').exists()
    stamp = (imgs / '000003.png').stat().st_mtime_ns
    log.clear()
    assert conv.extract_frames(video, str(imgs), log=log.append) == 5
    assert log == [f'{imgs}: all 5 frames of {video} already extracted, kept']
    assert (imgs / '000003.png').stat().st_mtime_ns == stamp


def test_extract_frames_killed_midway_leaves_no_partial_imgs(tmp_path,
                                                             monkeypatch):
    conv = load_converter()
    video = write_video(tmp_path / 'vid.avi', 5)
    imgs = tmp_path / 'imgs'
    real_imwrite, calls = conv.cv2.imwrite, []

    def dying_imwrite(path, img):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the user's Ctrl-C / a kill
        return real_imwrite(path, img)

    monkeypatch.setattr(conv.cv2, 'imwrite', dying_imwrite)
    with pytest.raises(KeyboardInterrupt):
        conv.extract_frames(video, str(imgs), log=lambda msg: None)
    monkeypatch.setattr(conv.cv2, 'imwrite', real_imwrite)
    assert not imgs.exists()  # the 2 written frames are in imgs.partial
    assert conv.extract_frames(video, str(imgs), log=lambda msg: None) == 5
    assert len(list(imgs.iterdir())) == 5
    assert not (tmp_path / 'imgs.partial').exists()


def test_convert_reextracts_and_reports_short_video(tmp_path, capsys):
    """Through the CLI: a partial imgs/ is completed; annotations beyond the
    video's last frame fail with one line (exit 1) saying how many frames
    the video has."""
    conv = load_converter()
    video_dir = tmp_path / '300vw' / '003'
    (video_dir / 'annot').mkdir(parents=True)
    video = write_video(video_dir / 'vid.avi', 4)
    (video_dir / 'imgs').mkdir()
    cv2.imwrite(str(video_dir / 'imgs' / '000001.png'),
                np.zeros((24, 32, 3), np.uint8))
    rng = np.random.RandomState(0)
    for n in range(1, 5):
        write_pts(video_dir / 'annot' / f'{n:06d}.pts',
                  rng.uniform(5, 20, (68, 2)))
    out = tmp_path / 'ann.json'
    assert conv.main([str(tmp_path / '300vw'), str(out)]) == 0
    stdout = capsys.readouterr().out
    assert 'holds 1 frames but OpenCV reports 4' in stdout
    assert [i['frame_id'] for i in json.loads(out.read_text())['images']] \
        == [0, 1, 2, 3]
    write_pts(video_dir / 'annot' / '000005.pts', rng.uniform(5, 20, (68, 2)))
    assert conv.main([str(tmp_path / '300vw'), str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and err.startswith('300vw_to_coco.py: error:')
    assert '000005.pts has no frame image' in err
    assert f'{video} has only 4 frames' in err
