"""Real-textured face videos (issue 11, step 3): the piecewise-affine warp
puts the photo's pixels where the warped landmarks say, deterministically;
splits animate only their own identities; the dataset reads like the
synthetic one (scenario keys ``<preset>_<box_mode>``)."""
import json
import os.path as osp

import cv2
import numpy as np
import pytest

from mmstable.datasets.real_faces.animate import (animate_photo,
                                                  border_points,
                                                  face_trajectory,
                                                  fit_similarity,
                                                  piecewise_affine_warp)
from mmstable.datasets.real_faces.labels import coco_annotation, write_coco
from mmstable.datasets.real_faces.writer import (face_schedule,
                                                 frame_landmarks,
                                                 write_real_split)
from mmstable.datasets.synthetic import (FaceExpression, FaceVideoGenerator,
                                         HeadPose, face_landmarks_3d,
                                         project, sample_identity)

SMALL = dict(image_size=128, face_size=(50., 60.))


def _photo_and_label(size=160, seed=3):
    """A checkerboard 'photo' (8 px squares) and a plausible 68-point face
    shape on it (a synthetic identity, frontal, face width ~80 px)."""
    idn = sample_identity(np.random.default_rng(seed))
    label = project(face_landmarks_3d(idn, FaceExpression()),
                    HeadPose(size / 2, size / 2, 40. / idn.jaw_w))
    yy, xx = np.mgrid[0:size, 0:size]
    board = (((yy // 8) + (xx // 8)) % 2 * 160 + 40).astype(np.uint8)
    return cv2.cvtColor(board, cv2.COLOR_GRAY2BGR), label


def test_fit_similarity_recovers_a_known_similarity():
    src = np.array([[0., 0.], [1., 0.], [0., 1.], [2., 3.]])
    # scale 2, rotation +90 degrees, translation (1, 2): (x, y) -> (1 - 2y,
    # 2 + 2x)
    dst = np.stack([1. - 2. * src[:, 1], 2. + 2. * src[:, 0]], 1)
    np.testing.assert_allclose(fit_similarity(src, dst),
                               [[0., -2., 1.], [2., 0., 2.]], atol=1e-12)


def test_warp_with_translated_points_is_a_translation():
    img = np.random.default_rng(0).integers(0, 255, (40, 50, 3), np.uint8)
    dst = np.concatenate([border_points(30, 20), [[10., 7.], [20., 12.]]])
    out = piecewise_affine_warp(img, dst + (3., 5.), dst, (30, 20))
    assert out.shape == (20, 30, 3)
    # output (x, y) = image (x + 3, y + 5), integer positions: exact
    np.testing.assert_array_equal(out, img[5:25, 3:33])


def test_warp_refuses_points_that_do_not_cover_the_frame():
    img = np.zeros((10, 10, 3), np.uint8)
    pts = np.array([[0., 0.], [5., 0.], [0., 5.]])
    with pytest.raises(ValueError, match='border_points'):
        piecewise_affine_warp(img, pts, pts, (10, 10))


@pytest.mark.parametrize('k', [8, 30, 36, 48])
def test_marked_pixel_lands_on_its_warped_landmark(k):
    photo, label = _photo_and_label()
    x, y = np.round(label[k]).astype(int)
    label = label.copy()
    label[k] = (x, y)  # the mark's centre, in pixel-centre coordinates
    photo[y - 1:y + 2, x - 1:x + 2] = (0, 0, 255)  # 3x3 red mark
    gen = FaceVideoGenerator.from_preset('moving', **SMALL)
    video = animate_photo(photo, label, gen, (5, 2, 1), 6, degrade=False)
    for t in range(6):
        f = video.frames[t].astype(np.float64)
        red = np.clip(f[..., 2] - f[..., 1], 0, None)
        red[red < 60] = 0
        ys, xs = np.nonzero(red)
        c = np.array([(xs * red[ys, xs]).sum(), (ys * red[ys, xs]).sum()
                      ]) / red[ys, xs].sum()
        assert np.linalg.norm(c - video.keypoints[t, k]) < 0.5, (t, c)


def test_still_neutral_video_is_the_photo_shape_up_to_a_similarity():
    _, label = _photo_and_label()
    label = label + np.random.default_rng(1).normal(0, 1., label.shape)
    gen = FaceVideoGenerator(motion=0., expression=0., **SMALL)
    kpts, _, _ = face_trajectory(gen, (0, 0, 4), 3, label)
    for t in range(3):
        m = fit_similarity(label, kpts[t])
        fitted = label @ m[:, :2].T + m[:, 2]
        np.testing.assert_allclose(fitted, kpts[t], atol=1e-6)


def test_videos_are_deterministic_by_key():
    photo, label = _photo_and_label()
    gen = FaceVideoGenerator.from_preset('fast', **SMALL)
    a = animate_photo(photo, label, gen, (0, 2, 3), 4)
    b = animate_photo(photo, label, gen, (0, 2, 3), 4)
    c = animate_photo(photo, label, gen, (0, 2, 4), 4)
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.keypoints, b.keypoints)
    assert not np.array_equal(a.keypoints, c.keypoints)
    # degradations change pixels, never landmarks
    clean = animate_photo(photo, label, gen, (0, 2, 3), 4, degrade=False)
    np.testing.assert_array_equal(clean.keypoints, a.keypoints)
    assert not np.array_equal(clean.frames, a.frames)


def test_face_schedule_is_identity_round_robin():
    faces = [dict(identity='a', id=0), dict(identity='a', id=1),
             dict(identity='b', id=2)]
    sched = face_schedule(faces, 4, seed=0, split='train')
    ids = [f['identity'] for f in sched]
    assert sorted(ids) == ['a', 'a', 'b', 'b']
    assert ids[0] != ids[1] and ids[:2] == ids[2:]
    a_photos = [f['id'] for f in sched if f['identity'] == 'a']
    assert a_photos == [0, 1]  # photos of an identity in turn
    with pytest.raises(ValueError, match="split 'val' has no labelled"):
        face_schedule([], 2, 0, 'val')


@pytest.fixture
def faces_root(tmp_path):
    """A labelled registry root: one photo per identity; identities p0, p1
    in train, p2 in val, p3 in test."""
    root = tmp_path / 'faces'
    (root / 'files').mkdir(parents=True)
    images, anns = {}, {}
    for i, split in enumerate(['train', 'train', 'val', 'test']):
        photo, label = _photo_and_label(seed=i)
        cv2.imwrite(str(root / 'files' / f'p{i}.png'), photo)
        images.setdefault(split, []).append(
            dict(id=i, file_name=f'files/p{i}.png', height=160, width=160))
        anns.setdefault(split, []).append(
            coco_annotation(label, i, i, identity=f'p{i}', split=split))
    for split in ('train', 'val', 'test'):
        write_coco(str(root / 'annotations' /
                       f'teacher_labels_{split}.json'), images[split],
                   anns[split])
    return str(root)


def test_split_animates_only_its_identities_with_exact_labels(
        tmp_path, faces_root):
    gen = FaceVideoGenerator.from_preset('talking', **SMALL)
    info = write_real_split(str(tmp_path / 'out'), 'train', num_videos=3,
                            num_frames=4, seed=0, generator=gen,
                            faces_root=faces_root)
    assert info['identities'] == ['p0', 'p1']
    # videos 0 and 2 animate the same person: same identity label
    imgs = json.load(open(info['ann_file']))['images']
    people = [imgs[4 * v]['identity'] for v in range(3)]
    index = [imgs[4 * v]['identity_index'] for v in range(3)]
    assert people[0] == people[2] != people[1]
    assert index == [['p0', 'p1'].index(p) for p in people]
    assert info['num_images'] == 12
    kpts = frame_landmarks(info['ann_file'])
    assert kpts.shape == (12, 68, 2)
    # the written labels are the animation's (rounded to 1e-3 px)
    sched = face_schedule(
        [dict(identity=f'p{i}', id=i) for i in (0, 1)], 3, 0, 'train')
    v = 2
    photo, label = _photo_and_label(seed=sched[v]['id'])
    video = animate_photo(photo, label, gen, (0, 0, v), 4)
    np.testing.assert_allclose(kpts[8:12], video.keypoints, atol=2e-3)
    test = write_real_split(str(tmp_path / 'out'), 'test', num_videos=2,
                            num_frames=2, generator=gen,
                            faces_root=faces_root)
    assert test['identities'] == ['p3']


def test_dataset_has_the_synthetic_scenario_keys(tmp_path, faces_root):
    from mmpose.registry import DATASETS
    import mmstable  # noqa: F401
    ds = DATASETS.build(dict(
        type='RealFaceVideoDataset', data_root=str(tmp_path / 'videos'),
        faces_root=faces_root, split='test', presets=['still', 'fast'],
        box_modes=['exact', 'jittered'], num_videos=1, num_frames=3,
        generator=SMALL, test_mode=True, pipeline=[]))
    assert len(ds) == 2 * 2 * 3
    infos = [ds.get_data_info(i) for i in range(len(ds))]
    assert sorted({i['scenario'] for i in infos}) == [
        'fast_exact', 'fast_jittered', 'still_exact', 'still_jittered']
    assert {i['video_id'] for i in infos} == {
        'test_still_000_exact', 'test_still_000_jittered',
        'test_fast_000_exact', 'test_fast_000_jittered'}
    assert [i['frame_id'] for i in infos[:3]] == [0, 1, 2]
    assert {i['identity'] for i in infos} == {0}  # one person: p3
    assert infos[0]['keypoints'].shape == (1, 68, 2)
    # cached: a second build animates nothing
    ann = (tmp_path / 'videos' / 'annotations' /
           'face_landmarks_synthetic_test_fast.json')
    mtime = ann.stat().st_mtime_ns
    same = dict(
        type='RealFaceVideoDataset', data_root=str(tmp_path / 'videos'),
        faces_root=faces_root, split='test', presets=['fast'],
        num_videos=1, num_frames=3, generator=SMALL, test_mode=True,
        pipeline=[])
    DATASETS.build(same)
    assert ann.stat().st_mtime_ns == mtime
    # relabelled photos: the videos are animated again
    labels = f'{faces_root}/annotations/teacher_labels_test.json'
    data = json.load(open(labels))
    data['annotations'][0]['keypoints'][0] += 1.
    json.dump(data, open(labels, 'w'))
    ds = DATASETS.build(same)
    assert ann.stat().st_mtime_ns != mtime


def test_missing_labels_name_the_tool(tmp_path):
    from mmpose.registry import DATASETS
    import mmstable  # noqa: F401
    with pytest.raises(FileNotFoundError, match='label_registry_faces.py'):
        write_real_split(str(tmp_path), 'train', 1, 2,
                         faces_root=str(tmp_path / 'nothing'))
    with pytest.raises(FileNotFoundError, match='label_registry_faces.py'):
        DATASETS.build(dict(type='RealFaceVideoDataset',
                            data_root=str(tmp_path / 'v'),
                            faces_root=str(tmp_path / 'nothing'),
                            pipeline=[]))


def test_wider_frame_centres_the_square_and_keeps_labels_exact():
    photo, label = _photo_and_label()
    gen = FaceVideoGenerator.from_preset('talking', **SMALL)
    square = animate_photo(photo, label, gen, (1, 2, 0), 3, degrade=False)
    wide = animate_photo(photo, label, gen, (1, 2, 0), 3, degrade=False,
                         frame_size=(200, 128))
    assert wide.frames.shape == (3, 128, 200, 3)
    # (200 - 128) / 2 = 36 px to the right, same rows
    np.testing.assert_allclose(wide.keypoints, square.keypoints + (36., 0.),
                               atol=1e-4)
    # the face's pixels match (the border triangles differ: another frame)
    x0, y0 = np.floor(square.keypoints[0, 36:].min(0)).astype(int)
    x1, y1 = np.ceil(square.keypoints[0, 36:].max(0)).astype(int)
    diff = np.abs(wide.frames[0, y0:y1, 36 + x0:36 + x1].astype(int) -
                  square.frames[0, y0:y1, x0:x1])
    assert diff.max() <= 1
    with pytest.raises(ValueError, match='frame_size'):
        animate_photo(photo, label, gen, (1, 2, 0), 1, frame_size=(100, 128))


def test_webcam_clip_and_its_landmark_json(tmp_path, faces_root):
    from mmstable.datasets.real_faces.clip import write_face_clip
    out = write_face_clip(str(tmp_path / 'clip.mp4'), faces_root,
                          split='test', preset='still', num_frames=3,
                          frame_size=(200, 128))
    meta = json.load(open(out['json']))
    assert meta['identity'] == 'p3' and len(meta['frames']) == 3
    cap = cv2.VideoCapture(out['video'])
    n = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        assert frame.shape == (128, 200, 3)
        n += 1
    assert n == 3
    photo, label = _photo_and_label(seed=3)
    gen = FaceVideoGenerator.from_preset('still', image_size=128,
                                         face_size=(0.3 * 128, 0.42 * 128))
    video = animate_photo(photo, label, gen, (0, 2, 0), 3,
                          frame_size=(200, 128))
    np.testing.assert_allclose(
        np.array([f['keypoints'] for f in meta['frames']]), video.keypoints,
        atol=2e-3)


def test_make_synthetic_faces_cli_writes_real_textured_clips(
        tmp_path, faces_root, capsys):
    """``make_synthetic_faces.py --faces-root``: the real-face demo's refiner
    training videos, one file per preset, training identities only."""
    import importlib.util
    spec = importlib.util.spec_from_file_location('msf', osp.join(
        osp.dirname(osp.dirname(osp.abspath(__file__))), 'tools',
        'dataset_converters', 'make_synthetic_faces.py'))
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    out = tmp_path / 'real'
    cli.main(['--out', str(out), '--faces-root', faces_root, '--splits',
              '--clip-videos', '2', '--clip-frames', '3', '--image-size',
              '96', '--face-size', '40', '60'])
    for preset in ('still', 'talking', 'moving', 'fast'):
        data = json.load(open(
            out / f'annotations/face_landmarks_synthetic_train_{preset}.json'))
        assert data['info']['identities'] == ['p0', 'p1']
        assert data['info']['faces_root'] == faces_root
        assert [im['video_id'] for im in data['images']][::3] == [
            f'train_{preset}_000', f'train_{preset}_001']
    assert not (out / 'annotations/face_landmarks_synthetic_train.json'
                ).exists()  # --splits with no split: clips only
    with pytest.raises(SystemExit, match='teacher labels'):
        cli.main(['--out', str(out), '--faces-root', str(tmp_path / 'none'),
                  '--splits', 'val', '--val-videos', '1'])
