"""StableTopdownPoseEstimator: the image model stays frozen while the
ConvLSTM refiner fine-tunes (§3.1, §4.2)."""
import copy

import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData, PixelData

from mmpose.registry import MODELS
from mmpose.structures import PoseDataSample

K, HM, INPUT = 5, 16, 64
CODEC = dict(
    type='MSRAHeatmap', input_size=(INPUT, INPUT), heatmap_size=(HM, HM),
    sigma=1)
TINY_HRNET = dict(
    type='HRNet',
    in_channels=3,
    extra=dict(
        stage1=dict(num_modules=1, num_branches=1, block='BOTTLENECK',
                    num_blocks=(1, ), num_channels=(8, )),
        stage2=dict(num_modules=1, num_branches=2, block='BASIC',
                    num_blocks=(1, 1), num_channels=(4, 8)),
        stage3=dict(num_modules=1, num_branches=3, block='BASIC',
                    num_blocks=(1, 1, 1), num_channels=(4, 8, 16)),
        stage4=dict(num_modules=1, num_branches=4, block='BASIC',
                    num_blocks=(1, 1, 1, 1), num_channels=(4, 8, 16, 32),
                    multiscale_output=True),
        upsample=dict(mode='bilinear', align_corners=False)))
# The WFLW HRNetV2 model of MMPose, shrunk: same structure (HRNet, concat
# neck, HeatmapHead with a conv+BN layer), tiny widths.
TINY_MODEL = dict(
    type='StableTopdownPoseEstimator',
    data_preprocessor=dict(
        type='PoseDataPreprocessor', mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
    backbone=TINY_HRNET,
    neck=dict(type='FeatureMapProcessor', concat=True),
    head=dict(
        type='ConvLSTMRefineHead',
        base_head=dict(
            type='HeatmapHead', in_channels=60, out_channels=K,
            deconv_out_channels=None, conv_out_channels=(8, ),
            conv_kernel_sizes=(1, ), decoder=CODEC),
        hidden_channels=4, bottleneck_channels=4,
        loss=dict(type='JitterLoss')),
    test_cfg=dict(flip_test=False))


def build_tiny(**overrides):
    cfg = copy.deepcopy(TINY_MODEL)
    cfg.update(overrides)
    torch.manual_seed(0)
    return MODELS.build(cfg)


def clip_batch(num_clips=2, clip_len=3, seed=0):
    """Hand-built clips as clip_collate would give them (clip-major)."""
    rng = np.random.default_rng(seed)
    inputs = torch.randn(num_clips * clip_len, 3, INPUT, INPUT,
                         generator=torch.Generator().manual_seed(seed))
    samples = []
    for b in range(num_clips):
        base = rng.uniform(10, INPUT - 10, (1, K, 2))
        for t in range(clip_len):
            kpts = base + rng.uniform(-2, 2, 2)  # a pseudo-clip shift (§4.2)
            heatmaps = np.zeros((K, HM, HM), np.float32)
            for k, (x, y) in enumerate(kpts[0] * HM / INPUT):
                heatmaps[k, int(y + .5), int(x + .5)] = 1.
            ds = PoseDataSample(
                metainfo=dict(video_id=f'clip{b}', frame_id=t,
                              clip_len=clip_len, input_size=(INPUT, INPUT)))
            ds.gt_instances = InstanceData(transformed_keypoints=kpts)
            ds.gt_instance_labels = InstanceData(
                keypoint_weights=torch.ones(1, K))
            ds.gt_fields = PixelData(heatmaps=torch.from_numpy(heatmaps))
            samples.append(ds)
    return inputs, samples


def frozen_state(model):
    return {
        k: v.detach().clone()
        for k, v in model.state_dict().items()
        if not k.startswith('head.') or k.startswith('head.base_head.')
    }


def test_frozen_modules_are_bit_identical_after_adam_steps():
    # PyTorch's default init, not MMPose's: the heatmaps of a std=0.001
    # head (~1e-13 here) give Adam gradients below float32 resolution.
    model = build_tiny()
    model.train()
    before = frozen_state(model)
    assert any('running_mean' in k for k in before)
    assert any('num_batches_tracked' in k for k in before)
    refiner_before = {
        k: p.detach().clone()
        for k, p in model.head.named_parameters()
        if not k.startswith('base_head.')
    }
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert {id(p) for p in trainable} == {
        id(p) for k, p in model.head.named_parameters()
        if not k.startswith('base_head.')}
    optim = torch.optim.Adam(trainable, lr=1e-2)
    inputs, samples = clip_batch()
    for _ in range(3):
        losses = model.loss(inputs, samples)
        # + the keypoint stage's loss (filmed clips: no pseudo_clip)
        assert set(losses) == {'loss_kpt', 'loss_filter', 'acc_pose'}
        optim.zero_grad()
        (losses['loss_kpt'] + losses['loss_filter']).backward()
        optim.step()

    for k, v in frozen_state(model).items():
        assert torch.equal(v, before[k]), f'{k} changed'
    for k, p in model.head.named_parameters():
        if not k.startswith('base_head.'):
            assert not torch.equal(p, refiner_before[k]), f'{k} not trained'


def test_frozen_modules_stay_in_eval_mode_and_run_without_grad():
    model = build_tiny()
    model.train()
    assert model.training and model.head.training
    for name in ('backbone', 'neck', 'head.base_head'):
        module = model._get_submodule(name)
        assert not module.training, name
        assert all(not m.training for m in module.modules()), name
        assert all(not p.requires_grad for p in module.parameters()), name
    feats = model.extract_feat(torch.randn(2, 3, INPUT, INPUT))
    assert not feats[0].requires_grad
    model.eval()
    assert not model.head.training


def test_absent_modules_are_skipped_and_paths_are_configurable():
    model = build_tiny(neck=None, frozen_modules=('backbone', 'neck'))
    assert model.is_frozen('backbone') and not model.is_frozen('neck')
    # base head not listed: it trains (and runs with grad)
    assert all(p.requires_grad for p in model.head.base_head.parameters())
    model.head.base_head.conv_layers  # noqa: B018  (exists)


def test_map_stage_frozen_by_path_keypoint_stage_still_learns():
    """configs/demo/real_jitter.py's freeze: the map stage (modules and the
    input-gain and non-rigid-gain parameters, named by path) frozen with the
    image model; Adam steps leave it at its identity init and train the
    keypoint stage."""
    paths = ('backbone', 'neck', 'head.base_head', 'head.cell',
             'head.out_proj', 'head.input_gain', 'head.nonrigid_gain')
    model = build_tiny(head=dict(TINY_MODEL['head'],
                                 share_across_keypoints=True),
                       frozen_modules=paths)
    head = model.head
    assert not head.input_gain.requires_grad
    assert not head.nonrigid_gain.requires_grad
    assert model.is_frozen('head.cell') and model.is_frozen('head.out_proj')
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert {id(p) for p in trainable} == {
        id(p) for p in head.keypoint_filter.parameters()}
    filt = copy.deepcopy(head.keypoint_filter.state_dict())
    optim = torch.optim.Adam(trainable, lr=1e-2)
    inputs, samples = clip_batch()
    for _ in range(2):
        losses = model.loss(inputs, samples)
        assert not losses['loss_kpt'].requires_grad
        optim.zero_grad()
        (losses['loss_kpt'] + losses['loss_filter']).backward()
        optim.step()
    assert head.map_stage_is_identity()
    assert any(not torch.equal(v, filt[k])
               for k, v in head.keypoint_filter.state_dict().items())
    # a path naming something else than a module or parameter is skipped
    other = build_tiny(frozen_modules=('backbone', 'head.no_such'))
    assert other.is_frozen('backbone') and not other.is_frozen('head.no_such')


def test_init_weights_keeps_refiner_identity():
    model = build_tiny()
    model.init_weights()
    model.eval()
    x = torch.randn(2, 3, INPUT, INPUT)
    with torch.no_grad():
        out = model(x, None, mode='tensor')
        base = model.head.base_head(model.extract_feat(x))
    assert torch.equal(out, base)


def _wrap_mmpose_config(tmp_path, rel_path):
    from mmengine import Config
    cfg_file = tmp_path / 'cfg.py'
    cfg_file.write_text(f"_base_ = 'mmpose::{rel_path}'\n")
    cfg = Config.fromfile(str(cfg_file))
    model = copy.deepcopy(cfg.model)
    model.backbone.init_cfg = None  # no download in tests
    model.type = 'StableTopdownPoseEstimator'
    model.head = dict(
        type='ConvLSTMRefineHead', base_head=model.head,
        loss=dict(type='JitterLoss'),
        decoder=dict(model.head.decoder, type='PDCCodec'))
    return MODELS.build(model)


@pytest.mark.parametrize('rel_path,num_keypoints', [
    ('face_2d_keypoint/topdown_heatmap/wflw/'
     'td-hm_hrnetv2-w18_8xb64-60e_wflw-256x256.py', 98),
    ('face_2d_keypoint/topdown_heatmap/300w/'
     'td-hm_hrnetv2-w18_8xb64-60e_300w-256x256.py', 68),
])
def test_builds_from_mmpose_configs(tmp_path, rel_path, num_keypoints):
    model = _wrap_mmpose_config(tmp_path, rel_path)
    assert model.is_frozen('backbone') and model.is_frozen('neck')
    assert model.is_frozen('head.base_head')
    assert model.head.out_channels == num_keypoints
    if num_keypoints == 98:
        model.eval()
        with torch.no_grad():
            out = model(torch.randn(1, 3, 256, 256), None, mode='tensor')
        assert out.shape == (1, 98, 64, 64)


def test_raw_keypoints_are_mapped_to_image_space_like_keypoints():
    """An untrained refiner returns o_t exactly (zero-initialised Δ), so with
    ``output_raw`` the frozen model's landmarks equal the refined ones in
    image space: both went through the same input → image mapping. (The
    keypoint stage then filters; on a track's first frame it returns its
    measurement, so that frame is equal with it too.)"""
    for keypoint_filter in (None, dict(type='AdaptiveKalmanFilter')):
        head = dict(TINY_MODEL['head'], keypoint_filter=keypoint_filter)
        model = build_tiny(head=head,
                           test_cfg=dict(flip_test=False, output_raw=True))
        model.eval()
        inputs, samples = clip_batch(num_clips=1, clip_len=2)
        for ds in samples:
            ds.set_metainfo(dict(input_center=np.array([50., 60.]),
                                 input_scale=np.array([128., 128.])))
            ds.gt_instances.bboxes = np.array([[0., 0., 100., 100.]])
            ds.gt_instances.bbox_scores = np.ones(1)
        with torch.no_grad():
            out = model.predict(inputs, samples)
        frames = out if keypoint_filter is None else out[:1]
        for ds in frames:
            kpts = ds.pred_instances.keypoints
            np.testing.assert_allclose(ds.pred_instances.raw_keypoints, kpts,
                                       rtol=1e-6, atol=1e-4)
