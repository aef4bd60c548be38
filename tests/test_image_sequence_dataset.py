import copy
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.hub import get_config
from torch.utils.data import DataLoader

from mmpose.registry import DATASETS, MODELS, TRANSFORMS
from mmstable.datasets import ImageSequenceDataset, clip_collate

WFLW_CONFIG = ('mmpose::face_2d_keypoint/topdown_heatmap/wflw/'
               'td-hm_hrnetv2-w18_8xb64-60e_wflw-256x256.py')
CODEC = dict(type='MSRAHeatmap',
             input_size=(256, 256),
             heatmap_size=(64, 64),
             sigma=2)


def clip_pipeline(codec=CODEC, augment=True, degrade=False, max_shift=4.0):
    """The ImageSequenceDataset pipeline of paper §4.2 for ``codec``."""
    clip_level = [dict(type='LoadImage'), dict(type='GetBBoxCenterScale')]
    if augment:
        clip_level += [
            dict(type='RandomFlip', direction='horizontal'),
            dict(type='RandomBBoxTransform',
                 shift_prob=0,
                 rotate_factor=60,
                 scale_factor=(0.75, 1.25))
        ]
    per_frame = [
        dict(type='ShiftedTopdownAffine', input_size=codec['input_size'])
    ]
    if degrade:
        per_frame.append(dict(type='VideoDegradation'))
    per_frame.append(dict(type='GenerateTarget', encoder=codec))
    return clip_level + [
        dict(type='MakeShiftedClip', max_shift=max_shift),
        dict(type='ApplyToFrames', transforms=per_frame),
        dict(type='PackClipInputs')
    ]


def wflw_dataset_cfg(testdata_root):
    """``train_dataloader.dataset`` of MMPose's WFLW HRNetV2 config, pointed
    at the WFLW sample."""
    cfg = get_config(WFLW_CONFIG)
    ds = cfg.train_dataloader.dataset.to_dict()
    ds.update(data_root=osp.join(testdata_root, 'wflw'),
              ann_file='test_wflw.json',
              data_prefix=dict(img=''))
    return ds


def build_wflw_clip_batch(testdata_root,
                          batch_size=2,
                          clip_len=3,
                          augment=True,
                          degrade=False,
                          test_mode=False):
    """One collated batch of B WFLW pseudo clips, ready for a model:
    ``dict(inputs=list of B·T (3, 256, 256) tensors, data_samples=list of
    B·T PoseDataSample)``, clip-major (docs/conventions.md §1). Run it
    through ``model.data_preprocessor`` (or ``model.train_step``)."""
    dataset = ImageSequenceDataset(dataset=wflw_dataset_cfg(testdata_root),
                                   pipeline=clip_pipeline(augment=augment,
                                                          degrade=degrade),
                                   clip_len=clip_len,
                                   test_mode=test_mode)
    loader = DataLoader(dataset,
                        batch_size=batch_size,
                        shuffle=False,
                        collate_fn=clip_collate)
    return next(iter(loader))


def test_build_from_wflw_config(mmpose_testdata):
    ds_cfg = wflw_dataset_cfg(mmpose_testdata)
    assert ds_cfg['type'] == 'WFLWDataset'
    dataset = DATASETS.build(
        dict(type='ImageSequenceDataset',
             dataset=ds_cfg,
             pipeline=clip_pipeline(degrade=True),
             clip_len=(5, 8)))
    assert len(dataset) == len(DATASETS.build(ds_cfg))
    # metainfo of the wrapped dataset passes through
    assert dataset.metainfo['dataset_name'] == 'wflw'
    assert len(dataset.metainfo['flip_indices']) == 98
    item = dataset[0]
    T = item['inputs'].shape[0]
    assert 5 <= T <= 8
    assert item['inputs'].shape == (T, 3, 256, 256)
    assert item['inputs'].dtype == torch.uint8
    assert len(item['data_samples']) == T
    for t, sample in enumerate(item['data_samples']):
        assert sample.frame_id == t
        assert sample.clip_len == T
        assert sample.video_id == 'WFLWDataset:0'
        assert len(sample.flip_indices) == 98
        assert sample.gt_instances.transformed_keypoints.shape == (1, 98, 2)
        assert sample.gt_fields.heatmaps.shape == (98, 64, 64)
        assert sample.input_shift.shape == (2, )


def test_keypoints_follow_image_shift(mmpose_testdata):
    """Each frame's transformed_keypoints equal the unshifted crop's plus
    the frame's input_shift, to 1e-3 input pixels; the crop content moves by
    the same shift."""
    dataset = ImageSequenceDataset(dataset=wflw_dataset_cfg(mmpose_testdata),
                                   pipeline=clip_pipeline(augment=False),
                                   clip_len=8,
                                   test_mode=True)
    for idx in range(2):
        item = dataset[idx]
        info = dataset.dataset.get_data_info(idx)
        reference = TRANSFORMS.build(
            dict(type='TopdownAffine',
                 input_size=(256, 256)))(TRANSFORMS.build(
                     dict(type='GetBBoxCenterScale'))(TRANSFORMS.build(
                         dict(type='LoadImage'))(info)))
        ref_kpts = reference['transformed_keypoints'][0]
        shifts = np.stack([s.input_shift for s in item['data_samples']])
        assert np.abs(shifts).max() <= 4.0 and np.abs(shifts).max() > 0
        for t, sample in enumerate(item['data_samples']):
            kpts = sample.gt_instances.transformed_keypoints[0]
            np.testing.assert_allclose(kpts - ref_kpts,
                                       np.broadcast_to(shifts[t], kpts.shape),
                                       atol=1e-3)


def test_image_moves_with_integer_shift(mmpose_testdata):
    ds_cfg = wflw_dataset_cfg(mmpose_testdata)
    info = DATASETS.build(dict(ds_cfg, pipeline=[])).get_data_info(0)
    for t in ('LoadImage', 'GetBBoxCenterScale'):
        info = TRANSFORMS.build(dict(type=t))(info)
    affine = TRANSFORMS.build(
        dict(type='ShiftedTopdownAffine', input_size=(256, 256)))
    base = affine(dict(copy.deepcopy(info), img=info['img']))
    moved = affine(
        dict(copy.deepcopy(info),
             img=info['img'],
             input_shift=np.array([3., -2.], np.float32)))
    a = base['img'].astype(np.int32)
    b = moved['img'].astype(np.int32)
    # content at (x, y) in the base crop is at (x + 3, y - 2) when shifted
    # (OpenCV's fixed-point bilinear weights: allow 1 grey level)
    assert np.abs(b[10:-10, 13:-10] - a[12:-8, 10:-13]).max() <= 1
    np.testing.assert_allclose(
        moved['transformed_keypoints'] - base['transformed_keypoints'],
        np.broadcast_to([3., -2.], base['transformed_keypoints'].shape),
        atol=1e-3)


def test_test_mode_is_reproducible(mmpose_testdata):
    kwargs = dict(dataset=wflw_dataset_cfg(mmpose_testdata),
                  pipeline=clip_pipeline(augment=False),
                  clip_len=(5, 8),
                  test_mode=True)
    a, b = ImageSequenceDataset(**kwargs), ImageSequenceDataset(**kwargs)
    ia, ib = a[1], b[1]
    assert len(ia['data_samples']) == len(ib['data_samples'])
    assert torch.equal(ia['inputs'], ib['inputs'])
    for sa, sb in zip(ia['data_samples'], ib['data_samples']):
        np.testing.assert_array_equal(sa.input_shift, sb.input_shift)
    other = ImageSequenceDataset(**dict(kwargs, seed=1))[1]
    assert not np.array_equal(
        np.stack([s.input_shift for s in other['data_samples']])[:5],
        np.stack([s.input_shift for s in ia['data_samples']])[:5])


FACE_DATASETS = [
    ('Face300WDataset', '300w', 'test_300w.json', 68),
    ('COFWDataset', 'cofw', 'test_cofw.json', 29),
    ('AFLWDataset', 'aflw', 'test_aflw.json', 19),
    ('LapaDataset', 'lapa', 'test_lapa.json', 106),
    ('Face300WLPDataset', '300wlp', 'test_300wlp.json', 68),
]


@pytest.mark.parametrize('ds_type,folder,ann,num_kpts', FACE_DATASETS)
def test_wraps_face_datasets(mmpose_testdata, ds_type, folder, ann, num_kpts):
    dataset = ImageSequenceDataset(dataset=dict(type=ds_type,
                                                data_root=osp.join(
                                                    mmpose_testdata, folder),
                                                ann_file=ann,
                                                data_prefix=dict(img='')),
                                   pipeline=clip_pipeline(),
                                   clip_len=2)
    item = dataset[0]
    assert item['inputs'].shape == (2, 3, 256, 256)
    assert item['data_samples'][1].gt_fields.heatmaps.shape == (num_kpts, 64,
                                                                64)


def test_invisible_keypoints_keep_zero_weight(mmpose_testdata, tmp_path):
    """COFW: landmarks with visibility 0 have keypoint_weights 0 in every
    frame of the clip."""
    root = osp.join(mmpose_testdata, 'cofw')
    with open(osp.join(root, 'test_cofw.json')) as f:
        ann = json.load(f)
    hidden = [3, 7, 20]
    for a in ann['annotations']:
        for k in hidden:
            a['keypoints'][3 * k + 2] = 0
    ann_file = tmp_path / 'cofw_hidden.json'
    ann_file.write_text(json.dumps(ann))
    dataset = ImageSequenceDataset(dataset=dict(type='COFWDataset',
                                                ann_file=str(ann_file),
                                                data_prefix=dict(img=root +
                                                                 '/')),
                                   pipeline=clip_pipeline(max_shift=8.0),
                                   clip_len=6)
    flip_indices = dataset.metainfo['flip_indices']
    for idx in range(len(dataset)):
        for sample in dataset[idx]['data_samples']:
            # RandomFlip (once per clip) renumbers mirrored landmarks
            ids = [flip_indices[k] for k in hidden] if sample.flip else hidden
            weights = sample.gt_instance_labels.keypoint_weights[0]
            assert (weights[ids] == 0).all()
            assert (sample.gt_instances.keypoints_visible[0, ids] == 0).all()
            assert weights[np.setdiff1d(np.arange(29), ids)].sum() > 0


def test_dataloader_batch_is_clip_major(mmpose_testdata):
    T = 3
    batch = build_wflw_clip_batch(mmpose_testdata, batch_size=2, clip_len=T)
    assert len(batch['inputs']) == 2 * T
    assert [s.video_id for s in batch['data_samples']] == \
        ['WFLWDataset:0'] * T + ['WFLWDataset:1'] * T
    assert [s.frame_id for s in batch['data_samples']] == [0, 1, 2] * 2
    preprocessor = MODELS.build(
        dict(type='PoseDataPreprocessor',
             mean=[123.675, 116.28, 103.53],
             std=[58.395, 57.12, 57.375],
             bgr_to_rgb=True))
    out = preprocessor(batch, training=True)
    assert out['inputs'].shape == (2 * T, 3, 256, 256)
    assert len(out['data_samples']) == 2 * T
    # frame order untouched: frame i of the batch is the i-th collated frame
    mean = torch.tensor([123.675, 116.28, 103.53]).view(3, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375]).view(3, 1, 1)
    for i in (0, T - 1, T, 2 * T - 1):
        expected = (batch['inputs'][i][[2, 1, 0]].float() - mean) / std
        torch.testing.assert_close(out['inputs'][i], expected)
