"""Every config under configs/ builds (CPU, no download) and its data and
metric types resolve; the WFLW jitter config takes a checkpoint of the plain
MMPose WFLW model through ``load_from``."""
import copy
import glob
import logging
import os.path as osp
import re

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import load_checkpoint

from mmpose.registry import DATA_SAMPLERS, DATASETS, METRICS, MODELS

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(
    osp.relpath(p, REPO)
    for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
    if f'{osp.sep}_base_{osp.sep}' not in p)
MMPOSE_FACE = 'face_2d_keypoint/topdown_heatmap'
WFLW_JITTER = 'configs/wflw_hrnet_jitter.py'
# the refiner's own modules: the only keys an image-model checkpoint lacks
REFINER_KEYS = ('head.cell.', 'head.in_proj.', 'head.out_proj.', 'head.input_gain',
                'head.nonrigid_gain',
                'head.keypoint_filter.')


def _config(rel_path):
    cfg = Config.fromfile(osp.join(REPO, rel_path))
    cfg.model.backbone.init_cfg = None  # never download in tests
    return cfg


def _zoo_weights():
    """The checkpoint URLs of MMPose's face model zoo (``Weights:`` lines
    of the .yml files next to its configs)."""
    import mmpose
    root = osp.join(osp.dirname(mmpose.__file__), '.mim', 'configs',
                    MMPOSE_FACE)
    urls = set()
    for yml in glob.glob(osp.join(root, '*', '*.yml')):
        with open(yml) as f:
            urls.update(re.findall(r'Weights:\s*(\S+)', f.read()))
    return urls


def _types(dataset_cfg):
    """The dataset type and those of wrapped datasets (``dataset=...``)."""
    while isinstance(dataset_cfg, dict):
        yield dataset_cfg['type']
        dataset_cfg = dataset_cfg.get('dataset')


def test_all_configs_are_found():
    assert WFLW_JITTER in CONFIGS
    assert any(c.startswith(osp.join('configs', 'demo')) for c in CONFIGS)
    assert len(CONFIGS) >= 9, CONFIGS


@pytest.mark.parametrize('rel_path', CONFIGS)
def test_config_builds_model_and_resolves_types(rel_path):
    cfg = _config(rel_path)
    model = MODELS.build(cfg.model)
    assert sum(p.numel() for p in model.parameters()) > 0
    if cfg.model.type == 'StableTopdownPoseEstimator':
        assert model.is_frozen('backbone')
        assert model.is_frozen('head.base_head')
        assert model.head.out_channels == cfg.model.head.base_head.out_channels
    for loader in ('train_dataloader', 'test_dataloader'):
        for name in _types(cfg[loader].dataset):
            assert DATASETS.get(name), f'{rel_path}: {loader} {name}'
        sampler = cfg[loader].get('sampler', {}).get('type')
        assert sampler is None or DATA_SAMPLERS.get(sampler) is not None
    evaluators = cfg.test_evaluator
    for metric in evaluators if isinstance(evaluators, list) else [evaluators]:
        assert METRICS.get(metric['type']) is not None, metric


@pytest.mark.parametrize('rel_path', [
    c for c in CONFIGS if not c.startswith(osp.join('configs', 'demo'))
])
def test_config_loads_a_zoo_checkpoint(rel_path):
    cfg = Config.fromfile(osp.join(REPO, rel_path))
    assert cfg.load_from in _zoo_weights(), (
        f'{rel_path}: load_from {cfg.load_from} is not an MMPose zoo URL')


def test_sibling_configs_differ_from_wflw_where_the_mmpose_models_do():
    k = {c: _config(f'configs/{c}_hrnet_jitter.py').model.head
         for c in ('300w', 'cofw', 'aflw', '300vw')}
    assert {c: h.base_head.out_channels for c, h in k.items()} == {
        '300w': 68, 'cofw': 29, 'aflw': 19, '300vw': 68}
    assert k['300w'].decoder.sigma == k['cofw'].decoder.sigma == 1.5
    assert k['300vw'].max_frame_gap == 2
    dark = _config('configs/wflw_hrnet_dark_jitter.py')
    assert dark.model.head.decoder.unbiased
    encoders = [
        f['encoder'] for t in dark.train_dataloader.dataset.pipeline
        for f in t.get('transforms', []) if 'encoder' in f
    ]
    assert encoders and all(e['unbiased'] for e in encoders)
    aflw = _config('configs/aflw_hrnet_jitter.py').val_evaluator[0]
    assert (aflw.norm_mode, aflw.norm_item) == ('use_norm_item', 'bbox_size')
    vw = _config('configs/300vw_hrnet_jitter.py')
    assert vw.test_dataloader.sampler.type == 'VideoSampler'
    assert vw.test_dataloader.dataset.test_mode
    assert [m.type for m in vw.test_evaluator] == ['VideoNME', 'NMF', 'MCV',
                                                    'MAV']


def test_wflw_forward():
    model = MODELS.build(_config(WFLW_JITTER).model).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 256, 256), None, mode='tensor')
    assert tuple(out.shape) == (1, 98, 64, 64)


class _Records(logging.Handler):

    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_plain_mmpose_checkpoint_loads_into_wrapped_model(tmp_path):
    """``load_from`` of a zoo checkpoint (keys of MMPose's own model): only
    the refiner is missing, every backbone / head weight lands in place."""
    cfg = _config(WFLW_JITTER)
    plain_cfg = Config.fromfile(
        osp.join(REPO, 'tests', 'data', 'tiny_wflw_hrnet.py')).model
    assert plain_cfg.type == 'TopdownPoseEstimator'
    torch.manual_seed(1)
    plain = MODELS.build(plain_cfg)
    for buf in plain.buffers():  # non-default BN statistics: must load too
        if buf.is_floating_point():
            buf.uniform_(0.5, 1.5)
    path = tmp_path / 'hrnetv2_w18_wflw.pth'
    torch.save(dict(state_dict=plain.state_dict(),
                    meta=dict(dataset_meta=dict(sigmas=np.zeros(0)))), path)

    torch.manual_seed(2)
    wrapped = MODELS.build(copy.deepcopy(cfg.model))
    logger = logging.getLogger('test_configs.load_from')
    logger.setLevel(logging.INFO)
    records = _Records()
    logger.addHandler(records)
    try:
        # what Runner.load_checkpoint does for load_from (strict=False)
        load_checkpoint(wrapped, str(path), map_location='cpu', strict=False,
                        logger=logger)
    finally:
        logger.removeHandler(records)

    log = '\n'.join(records.messages)
    assert 'unexpected key' not in log, log
    found = re.search(r'missing keys in source state_dict: (.*)', log)
    assert found, f'the refiner keys should be reported missing: {log!r}'
    missing = [k.strip() for k in found.group(1).split(',')]
    assert all(k.startswith(REFINER_KEYS) for k in missing), missing
    # exactly the refiner's own weights are missing (whatever its layout)
    refiner = {
        k for k in wrapped.state_dict()
        if not k.startswith(('backbone.', 'head.base_head.'))
    }
    assert refiner and set(missing) == refiner

    loaded = wrapped.state_dict()
    for key, value in plain.state_dict().items():
        new_key = re.sub(r'^head\.', 'head.base_head.', key)
        assert torch.equal(loaded[new_key], value), key


def test_300vw_config_data_on_the_300vw_sample(mmpose_testdata):
    """The 300VW config's datasets and metrics, pointed at MMPose's 300VW
    sample (frames 6 and 9 of video 001, 731 (broken) and 732 of 401)."""
    cfg = _config('configs/300vw_hrnet_jitter.py')
    root = osp.join(mmpose_testdata, '300vw')
    sample = dict(data_root=root, ann_file='anno_300vw.json',
                  broken_frames={'401': [731]},  # MMPose's list has it
                  scenario=None)
    train = DATASETS.build(dict(cfg.train_dataloader.dataset, **sample,
                                clip_len=2, max_frame_gap=None))
    clip = train[0]
    assert tuple(clip['inputs'].shape) == (2, 3, 256, 256)
    assert [s.frame_id for s in clip['data_samples']] == [5, 8]
    # detector-like boxes: each frame has its own crop, packed for the head
    affines = [np.asarray(s.crop_affine) for s in clip['data_samples']]
    for s, A in zip(clip['data_samples'], affines):
        np.testing.assert_allclose(
            s.gt_instances.keypoints[0] @ A[:, :2].T + A[:, 2],
            s.gt_instances.transformed_keypoints[0], atol=1e-3)
    assert tuple(clip['data_samples'][0].gt_fields.heatmaps.shape) == (68, 64,
                                                                       64)
    test = DATASETS.build(dict(cfg.test_dataloader.dataset, **sample))
    frame = test[0]
    assert tuple(frame['inputs'].shape) == (3, 256, 256)
    assert frame['data_samples'].clip_len == 1
    # each frame carries its video's 300VW scenario: 001 is a training video,
    # 401 is in scenario 1, so the metrics report S1/... keys for it
    scenarios = {s['data_samples'].video_id: s['data_samples'].scenario
                 for s in (test[i] for i in range(len(test)))}
    assert scenarios == {'001': None, '401': 1}
    from mmstable.evaluation.functional import scenario_label
    assert scenario_label(scenarios['401']) == 'S1'
    for m in cfg.test_evaluator:
        METRICS.build(m)


# --- issue 10 item 5: config fixes ---

IMAGE_CONFIGS = {  # mmstable config -> the MMPose config of its image model
    'configs/wflw_hrnet_jitter.py': 'wflw/td-hm_hrnetv2-w18_8xb64-60e_wflw',
    'configs/wflw_hrnet_awing_jitter.py':
    'wflw/td-hm_hrnetv2-w18_awing-8xb64-60e_wflw',
    'configs/wflw_hrnet_dark_jitter.py':
    'wflw/td-hm_hrnetv2-w18_dark-8xb64-60e_wflw',
    'configs/300w_hrnet_jitter.py': '300w/td-hm_hrnetv2-w18_8xb64-60e_300w',
    'configs/cofw_hrnet_jitter.py': 'cofw/td-hm_hrnetv2-w18_8xb64-60e_cofw',
    'configs/aflw_hrnet_jitter.py': 'aflw/td-hm_hrnetv2-w18_8xb64-60e_aflw',
    'configs/wflw_hrnet_rednet.py': 'wflw/td-hm_hrnetv2-w18_8xb64-60e_wflw',
}
# what only the new default refiner may decide
CELL_KEYS = ('hidden_channels', 'kernel_size', 'share_across_keypoints',
             'bottleneck_channels', 'state_stride', 'warp_state',
             'motion_compensation')


def _walk_transforms(pipeline):
    for t in pipeline:
        yield t
        yield from _walk_transforms(t.get('transforms', []))


def _train_sets(cfg):
    """The training dataset configs (the parts of a ConcatDataset)."""
    ds = cfg.train_dataloader.dataset
    return list(ds.datasets) if ds.type == 'ConcatDataset' else [ds]


def _encoders(cfg):
    return [
        t['encoder'] for ds in _train_sets(cfg)
        for t in _walk_transforms(ds.pipeline)
        if t['type'] == 'GenerateTarget'
    ]


def test_image_configs_cover_every_image_dataset_config():
    assert set(IMAGE_CONFIGS) == {
        c for c in CONFIGS
        if not c.startswith(osp.join('configs', 'demo')) and '300vw' not in c
    }


@pytest.mark.parametrize('rel_path', CONFIGS)
def test_unbiased_targets_centre_on_the_sub_pixel_gt(rel_path):
    """Every target encoder is unbiased: the centre of mass of the target
    of a keypoint at heatmap (12.3, 9.7) is within 0.05 heatmap px of it
    (the biased MSRA target sits on the rounded pixel (12, 10): 0.42 px)."""
    from mmpose.registry import KEYPOINT_CODECS
    encoders = _encoders(_config(rel_path))
    assert encoders, f'{rel_path}: no GenerateTarget in the train pipeline'
    for enc in encoders:
        assert enc.get('unbiased') is True, f'{rel_path}: {enc}'
        codec = KEYPOINT_CODECS.build(enc)
        gt = np.array([12.3, 9.7])
        ratio = np.array(codec.input_size) / np.array(codec.heatmap_size)
        hm = codec.encode(
            (gt * ratio)[None, None].astype(np.float32),
            np.ones((1, 1), np.float32))['heatmaps'][0].astype(np.float64)
        ys, xs = np.mgrid[:hm.shape[0], :hm.shape[1]]
        centre = np.array([(hm * xs).sum(), (hm * ys).sum()]) / hm.sum()
        assert np.linalg.norm(centre - gt) < 0.05, (rel_path, centre)
        biased = KEYPOINT_CODECS.build(dict(enc, unbiased=False)).encode(
            (gt * ratio)[None, None].astype(np.float32))['heatmaps'][0]
        centre = np.array([(biased * xs).sum(), (biased * ys).sum()
                           ]) / biased.sum()
        assert np.linalg.norm(centre - gt) > 0.3


@pytest.mark.parametrize('rel_path', sorted(IMAGE_CONFIGS))
def test_image_configs_test_with_mmpose_protocol_and_validate_on_clips(
        rel_path):
    """test = MMPose's own test set, pipeline and NME (one image, one
    prediction: comparable with its zoo); val = seeded moving clips of the
    same images, every key under clips/, and the best checkpoint is the
    lowest clips/NMExNMF (NME x NMF: a constant predictor cannot win it)."""
    cfg = _config(rel_path)
    import mmpose
    mm = Config.fromfile(
        osp.join(osp.dirname(mmpose.__file__), '.mim', 'configs', MMPOSE_FACE,
                 f'{IMAGE_CONFIGS[rel_path]}-256x256.py'))
    test, ref = cfg.test_dataloader, mm.test_dataloader
    for key in ('type', 'data_root', 'ann_file', 'data_prefix', 'test_mode'):
        assert test.dataset[key] == ref.dataset[key], key
    assert [t['type'] for t in test.dataset.pipeline] == [
        t['type'] for t in ref.dataset.pipeline
    ] == ['LoadImage', 'GetBBoxCenterScale', 'TopdownAffine', 'PackPoseInputs']
    assert 'collate_fn' not in test or test.collate_fn == ref.get(
        'collate_fn')
    assert {k: v for k, v in cfg.test_evaluator.items() if k != '_scope_'
            } == mm.test_evaluator

    val = cfg.val_dataloader
    assert val.dataset.type == 'ImageSequenceDataset'
    assert val.dataset.test_mode and val.collate_fn.type == 'clip_collate'
    assert val.dataset.dataset.ann_file == ref.dataset.ann_file
    assert 'MakeMotionClip' in [t['type'] for t in val.dataset.pipeline]
    types = [m['type'] for m in cfg.val_evaluator]
    assert types == ['VideoNME', 'NMF', 'MCV', 'MAV']
    assert all(m['prefix'] == 'clips' for m in cfg.val_evaluator)
    nmf = cfg.val_evaluator[1]
    assert nmf['nme_product'] is True
    assert cfg.default_hooks.checkpoint.save_best == 'clips/NMExNMF'
    assert cfg.default_hooks.checkpoint.rule == 'less'
    for m in cfg.val_evaluator:
        METRICS.build(m)
    if 'aflw' in rel_path:  # MMPose's AFLW NME: normalised by the box
        assert cfg.val_evaluator[0]['norm_item'] == 'bbox_size'
        assert tuple(nmf['keypoint_indices']) == (6, 11)


@pytest.mark.parametrize('rel_path', CONFIGS)
def test_configs_use_motion_clips_and_the_default_refiner(rel_path):
    cfg = _config(rel_path)
    if cfg.model.type != 'StableTopdownPoseEstimator':
        return  # the demo's image model (stage 1) has no refiner
    if cfg.model.head.type == 'ConvLSTMRefineHead':  # not REDnet's keys
        assert not set(CELL_KEYS) & set(cfg.model.head), cfg.model.head
    if '300vw' in rel_path:
        return  # real video clips: real motion
    # pseudo-clips of images: motion clips; filmed clips (the demo's training
    # videos): their own motion, detector-like boxes
    pseudo = [ds for ds in _train_sets(cfg) if ds.type != 'VideoClipDataset']
    if 'head.cell' in cfg.model.get('frozen_modules', ()):
        # a frozen map stage (configs/demo/real_jitter.py): only the keypoint
        # stage learns, from filmed clips alone -- near-still ones among them
        assert not pseudo and any(
            'still' in ds.ann_file for ds in _train_sets(cfg)), rel_path
    else:
        assert pseudo, rel_path
    for ds in _train_sets(cfg):
        types = [t['type'] for t in _walk_transforms(ds.pipeline)]
        if ds.type == 'VideoClipDataset':
            assert 'DetectorBoxJitter' in types, rel_path
            continue
        assert 'MakeMotionClip' in types and 'MakeShiftedClip' not in types
        assert 'ShiftedTopdownAffine' in types
        blur = [t['motion_blur'] for t in _walk_transforms(ds.pipeline)
                if t['type'] == 'VideoDegradation']
        assert blur and all('exposure' in b for b in blur)  # tied to speed


def test_wflw_config_clips_on_the_wflw_sample(mmpose_testdata):
    """The WFLW config's training clips (moving, with crop_affine packed)
    and its MMPose test items on MMPose's WFLW sample."""
    cfg = _config(WFLW_JITTER)
    sample = dict(data_root=osp.join(mmpose_testdata, 'wflw'),
                  ann_file='test_wflw.json', data_prefix=dict(img=''))
    train = DATASETS.build(dict(cfg.train_dataloader.dataset, clip_len=3,
                                dataset=dict(cfg.train_dataloader.dataset
                                             .dataset, **sample)))
    np.random.seed(0)
    clip = train[0]
    assert tuple(clip['inputs'].shape) == (3, 3, 256, 256)
    for s in clip['data_samples']:
        A = np.asarray(s.crop_affine)
        gt = s.gt_instances
        np.testing.assert_allclose(
            gt.keypoints[0] @ A[:, :2].T + A[:, 2],
            gt.transformed_keypoints[0], atol=1e-3)
    test = DATASETS.build(dict(cfg.test_dataloader.dataset, **sample))
    item = test[0]
    assert tuple(item['inputs'].shape) == (3, 256, 256)
    assert 'clip_len' not in item['data_samples'].metainfo
