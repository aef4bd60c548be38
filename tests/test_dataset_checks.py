"""Bad annotation records fail with an error naming the file, the video or
image and the key to fix (issue 12, items 7 and 10)."""
import json
import math
import os.path as osp

import pytest

from mmpose.registry import DATASETS
from mmstable.datasets import ImageSequenceDataset
from mmstable.utils.data_checks import check_keypoints

TEST_PIPELINE = [dict(type='LoadImage'), dict(type='PackClipInputs')]
CLIP_PIPELINE = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='MakeShiftedClip', max_shift=2.0),
    dict(type='ApplyToFrames',
         transforms=[
             dict(type='ShiftedTopdownAffine', input_size=(64, 64))
         ]),
    dict(type='PackClipInputs')
]


def load_json(path):
    with open(path) as f:
        return json.load(f)


def vw_dataset(root, ann_file, **kwargs):
    return DATASETS.build(
        dict(type='VideoClipDataset',
             data_root=root,
             ann_file=str(ann_file),
             data_prefix=dict(img=''),
             pipeline=TEST_PIPELINE,
             **kwargs))


def vw_ann(mmpose_testdata, tmp_path, edit, name='edited.json'):
    """MMPose's 300VW sample (frames 5, 8 of video 001 and 731 of 401)
    edited by ``edit(ann)``, written as a new ann_file."""
    root = osp.join(mmpose_testdata, '300vw')
    ann = load_json(osp.join(root, 'anno_300vw.json'))
    edit(ann)
    path = tmp_path / name
    path.write_text(json.dumps(ann))  # NaN is written as JSON's NaN
    return root, str(path)


def test_all_videos_shorter_than_clip_len(mmpose_testdata):
    root = osp.join(mmpose_testdata, '300vw')
    # 001 has 2 frames, 401 has 1: no window of 3 with tail='drop'
    with pytest.raises(ValueError) as info:
        vw_dataset(root, 'anno_300vw.json', clip_len=3)
    msg = str(info.value)
    assert 'no training clip' in msg and 'clip_len=3' in msg
    assert "{'001': 2, '401': 1}" in msg and "tail='pad'" in msg
    assert 'anno_300vw.json' in msg
    # one video long enough: no error, one clip
    assert len(vw_dataset(root, 'anno_300vw.json', clip_len=2)) == 1
    # test mode has no windows: every frame is an item
    assert len(vw_dataset(root, 'anno_300vw.json', clip_len=3,
                          test_mode=True)) == 3


def test_duplicate_frame_id(mmpose_testdata, tmp_path):

    def duplicate(ann):
        img = dict(ann['images'][1], id=7, file_name='001/imgs/000006.jpg')
        ann['images'].append(img)
        ann['annotations'].append(dict(ann['annotations'][1], id=7,
                                       image_id=7))

    root, path = vw_ann(mmpose_testdata, tmp_path, duplicate)
    with pytest.raises(ValueError,
                       match=r"video '001' has frame_id 5 twice in .*"
                       r"edited\.json .*000006\.jpg"):
        vw_dataset(root, path, test_mode=True)


def test_duplicate_frame_id_from_fields(mmpose_testdata, tmp_path):
    """video_id / frame_id fields (300vw_to_coco.py) are checked too."""

    def fields(ann):
        for img, frame in zip(ann['images'], (5, 5, 731)):
            img.update(video_id=img['file_name'][:3], frame_id=frame)

    root, path = vw_ann(mmpose_testdata, tmp_path, fields)
    with pytest.raises(ValueError, match="video '001' has frame_id 5 twice"):
        vw_dataset(root, path, clip_len=2)


def test_98_points_in_the_68_point_300vw_set(mmpose_testdata, tmp_path):

    def to_98(ann):
        a = ann['annotations'][2]
        a['keypoints'] += a['keypoints'][:30 * 3]
        a['num_keypoints'] = 98

    root, path = vw_ann(mmpose_testdata, tmp_path, to_98)
    with pytest.raises(ValueError,
                       match=r"edited\.json: image '.*401/imgs/000732\.jpg' "
                       r'\(id 2\) has 98 keypoints, but the VideoClipDataset '
                       r'metainfo has num_keypoints=68'):
        vw_dataset(root, path, test_mode=True)


def test_nan_keypoints_in_300vw(mmpose_testdata, tmp_path):

    def nan(ann):
        ann['annotations'][1]['keypoints'][3 * 30 + 1] = math.nan
        ann['annotations'][1]['keypoints'][3 * 45] = math.inf

    root, path = vw_ann(mmpose_testdata, tmp_path, nan)
    with pytest.raises(ValueError,
                       match=r"image '.*001/imgs/000009\.jpg' \(id 1\) has "
                       r'NaN/inf keypoints \(landmark indices \[30, 45\]\)'):
        vw_dataset(root, path, clip_len=2)


def test_malformed_annotation_json_300vw(mmpose_testdata, tmp_path):
    root = osp.join(mmpose_testdata, '300vw')
    text = open(osp.join(root, 'anno_300vw.json')).read()
    cut = tmp_path / 'cut.json'
    cut.write_text(text[:len(text) // 2])  # an interrupted download
    with pytest.raises(ValueError,
                       match=r'cut\.json:\d+:\d+: the annotation file is not '
                       r'valid JSON'):
        vw_dataset(root, cut, test_mode=True)
    binary = tmp_path / 'binary.json'
    binary.write_bytes(b'\x89PNG\r\n\x1a\n\xff\xfe\x00')
    with pytest.raises(ValueError,
                       match=r'binary\.json: the annotation file is not '
                       r'UTF-8 text'):
        vw_dataset(root, binary, test_mode=True)


def sequence_of(ds_type, root, ann_file, **kwargs):
    return ImageSequenceDataset(dataset=dict(type=ds_type,
                                             ann_file=str(ann_file),
                                             data_prefix=dict(img=root + '/')),
                                pipeline=CLIP_PIPELINE,
                                clip_len=2,
                                **kwargs)


def test_98_point_wflw_file_read_as_300w(mmpose_testdata):
    root = osp.join(mmpose_testdata, 'wflw')
    dataset = sequence_of('Face300WDataset', root,
                          osp.join(root, 'test_wflw.json'))
    with pytest.raises(ValueError,
                       match=r"test_wflw\.json: image '.*\.jpg' \(id \d+\) "
                       r'has 98 keypoints, but the Face300WDataset metainfo '
                       r'has num_keypoints=68'):
        dataset[0]
    # the right dataset type reads the same file
    wflw = sequence_of('WFLWDataset', root, osp.join(root, 'test_wflw.json'))
    assert len(wflw[0]['data_samples']) == 2


@pytest.mark.parametrize('test_mode', [False, True])
def test_nan_keypoints_in_wrapped_dataset(mmpose_testdata, tmp_path,
                                          test_mode):
    root = osp.join(mmpose_testdata, '300w')
    ann = load_json(osp.join(root, 'test_300w.json'))
    ann['annotations'][0]['keypoints'][3 * 7] = math.nan
    path = tmp_path / 'nan_300w.json'
    path.write_text(json.dumps(ann))
    dataset = sequence_of('Face300WDataset', root, path, test_mode=test_mode)
    with pytest.raises(ValueError,
                       match=r'nan_300w\.json: image .* has NaN/inf '
                       r'keypoints \(landmark indices \[7\]\)'):
        dataset[0]
    assert len(dataset[1]['data_samples']) == 2  # the other image is fine


def test_malformed_annotation_json_wrapped(mmpose_testdata, tmp_path):
    root = osp.join(mmpose_testdata, '300w')
    bad = tmp_path / 'bad.json'
    bad.write_text('{"images": [\n  {"id": 1,}\n]}')
    with pytest.raises(ValueError,
                       match=r'bad\.json:2:12: the annotation file is not '
                       r'valid JSON'):
        sequence_of('Face300WDataset', root, bad)


def test_check_keypoints_values():
    """Hand-made records: shape (N, K, 2), K from the metainfo."""
    ok = dict(keypoints=[[[1., 2.], [3., 4.]]], img_path='a.jpg', id=3)
    check_keypoints(ok, 2, 'f.json')
    check_keypoints(dict(img_path='a.jpg'), 2, 'f.json')  # no keypoints
    with pytest.raises(ValueError, match=r"f\.json: image 'a\.jpg' \(id 3\) "
                       r'has 2 keypoints, but the X metainfo has '
                       r'num_keypoints=3'):
        check_keypoints(ok, 3, 'f.json', 'X')
    with pytest.raises(ValueError, match=r'must be \(N, K, 2\), found shape '
                       r'\(1, 2, 3\)'):
        check_keypoints(dict(ok, keypoints=[[[1., 2., 3.]] * 2]), 2, 'f.json')
    with pytest.raises(ValueError, match=r'landmark indices \[1\]'):
        check_keypoints(dict(ok, keypoints=[[[1., 2.], [-math.inf, 4.]]]), 2,
                        'f.json')


@pytest.mark.parametrize('bad', ['98_points', 'nan'])
def test_synthetic_dataset_checks_records(tmp_path, bad):
    from mmstable.datasets.synthetic import write_split
    from mmstable.datasets.synthetic_face_dataset import \
        SyntheticFaceVideoDataset
    write_split(str(tmp_path), 'val', 1, 2,
                generator=dict(image_size=64, face_size=(30., 40.)))
    ann_file = osp.join(tmp_path, 'annotations',
                        'face_landmarks_synthetic_val.json')
    ann = load_json(ann_file)
    kpts = ann['annotations'][1]['keypoints']
    if bad == '98_points':
        kpts += kpts[:30 * 3]
        match = 'has 98 keypoints, but the SyntheticFaceVideoDataset ' \
            'metainfo has num_keypoints=68'
    else:
        kpts[3 * 12] = math.nan
        match = r'has NaN/inf keypoints \(landmark indices \[12\]\)'
    edited = osp.join(tmp_path, 'annotations', 'edited.json')
    with open(edited, 'w') as f:
        json.dump(ann, f)
    with pytest.raises(ValueError, match=r'edited\.json: image .*' + match):
        SyntheticFaceVideoDataset(data_root=str(tmp_path), split='val',
                                  ann_file='annotations/edited.json',
                                  generate=False)
    assert len(SyntheticFaceVideoDataset(data_root=str(tmp_path), split='val',
                                         generate=False)) == 2


def test_annotation_file_without_frames(mmpose_testdata, tmp_path):
    root = osp.join(mmpose_testdata, '300vw')
    empty = tmp_path / 'empty.json'
    empty.write_text('{}')
    with pytest.raises(ValueError, match=r'empty\.json holds no annotated '
                       'frame'):
        vw_dataset(root, empty, test_mode=True)
    as_list = tmp_path / 'list.json'
    as_list.write_text('[]')
    with pytest.raises(ValueError, match=r'list\.json: annotation file format'
                       r" <class 'list'> not supported \(expected a "
                       'COCO-style dict'):
        vw_dataset(root, as_list, test_mode=True)
    with pytest.raises(ValueError, match='every frame of .*anno_300vw.json '
                       'is listed in broken_frames'):
        vw_dataset(root, 'anno_300vw.json', test_mode=True,
                   broken_frames={'001': [6, 9], '401': [732]})
