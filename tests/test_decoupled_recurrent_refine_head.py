"""DecoupledRecurrentRefineHead: seed 003's REDnet as a second refiner on the
frozen model (issue 14)."""
import copy
import math

import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData, PixelData

from mmpose.registry import MODELS
from mmpose.structures import PoseDataSample

# features C×4×4 → one deconv (×2) → K×8×8 heatmaps: state stride 2
K, C, FEAT, HM, INPUT = 4, 8, 4, 8, 32
CODEC = dict(
    type='MSRAHeatmap', input_size=(INPUT, INPUT), heatmap_size=(HM, HM),
    sigma=1)
BASE_HEAD = dict(
    type='HeatmapHead', in_channels=C, out_channels=K,
    deconv_out_channels=(8, ), deconv_kernel_sizes=(4, ), decoder=CODEC)


def make_head(**kwargs):
    cfg = dict(
        type='DecoupledRecurrentRefineHead', base_head=copy.deepcopy(BASE_HEAD),
        variant_channels=3, invariant_channels=2, hidden_channels=3,
        loss=dict(type='KeypointMSELoss', use_target_weight=True))
    cfg.update(kwargs)
    torch.manual_seed(0)
    head = MODELS.build(cfg)
    head.base_head.requires_grad_(False)
    head.base_head.eval()
    return head


def randomise_refiner(head, seed=1):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in head.named_parameters():
            if not name.startswith('base_head'):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)


def make_samples(clip_lens, video_ids=None, frame_starts=None, identities=None,
                 seed=0):
    rng = np.random.default_rng(seed)
    samples = []
    for b, length in enumerate(clip_lens):
        vid = video_ids[b] if video_ids else f'v{b}'
        start = frame_starts[b] if frame_starts else 0
        for t in range(length):
            meta = dict(video_id=vid, frame_id=start + t, clip_len=length,
                        input_size=(INPUT, INPUT),
                        flip_indices=list(range(K)))
            if identities is not None and identities[b] is not None:
                meta['identity'] = identities[b]
            ds = PoseDataSample(metainfo=meta)
            ds.gt_instances = InstanceData(
                transformed_keypoints=rng.uniform(0, INPUT - 1, (1, K, 2)))
            ds.gt_instance_labels = InstanceData(
                keypoint_weights=torch.ones(1, K))
            ds.gt_fields = PixelData(heatmaps=torch.rand(K, HM, HM))
            samples.append(ds)
    return samples


def feats_for(n, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(n, C, FEAT, FEAT, generator=gen), )


def predict_heatmaps(head, feats, samples):
    with torch.no_grad():
        _, fields = head.predict(
            feats, samples, test_cfg=dict(output_heatmaps=True))
    return torch.stack([f.heatmaps for f in fields])


def test_builds_from_config_dict_with_its_options():
    head = make_head(n_iters=3, temporal=False, num_identities=5,
                     identity_loss_weight=0.1, invariance_loss_weight=1.)
    assert type(head).__name__ == 'DecoupledRecurrentRefineHead'
    assert head.n_iters == 3 and head.temporal is False
    assert head.identity_head.out_features == 5
    assert head.feedback.in_channels == K and head.feedback.out_channels == C
    assert head.cell.hidden_channels == 3 and head.state_channels == 3
    # the heatmap cell of ConvLSTMRefineHead is not there
    assert not hasattr(head, 'in_proj') and not hasattr(head, 'out_proj')
    # one feedback layer whatever n_iters: weights shared across passes
    n1 = sum(p.numel() for p in make_head(n_iters=2).parameters())
    n3 = sum(p.numel() for p in make_head(n_iters=3).parameters())
    assert n1 == n3


@pytest.mark.parametrize('n_iters', [1, 3])
def test_untrained_head_returns_base_heatmaps_exactly(n_iters):
    head = make_head(n_iters=n_iters)
    feats = feats_for(5)
    base = head.base_head.forward(feats)
    samples = make_samples([3, 2])
    assert torch.equal(head.forward(feats, samples), base)
    assert torch.equal(head.forward(feats), base)
    head.eval()
    assert torch.equal(predict_heatmaps(head, feats, samples), base)


def test_refiner_changes_output_once_trained_and_feedback_counts():
    feats = feats_for(3)
    samples = make_samples([3])
    outs = {}
    for n_iters in (1, 2):
        head = make_head(n_iters=n_iters)
        randomise_refiner(head)
        outs[n_iters] = head.forward(feats, samples)
    base = make_head().base_head.forward(feats)
    assert not torch.allclose(outs[1], base)
    assert not torch.allclose(outs[2], outs[1])


def test_state_is_reset_per_clip_and_temporal_off_is_per_frame():
    feats = feats_for(3)
    head = make_head()
    randomise_refiner(head)
    whole = head.forward(feats, make_samples([3]))
    alone = head.forward((feats[0][2:], ), make_samples([1]))
    # frame 2 of a clip remembers frames 0-1, alone it does not
    assert not torch.allclose(whole[2], alone[0])
    # two clips in one batch == each clip alone
    two = head.forward((torch.cat([feats[0], feats[0][:2]]), ),
                       make_samples([3, 2]))
    torch.testing.assert_close(two[:3], whole, rtol=0, atol=1e-6)
    torch.testing.assert_close(
        two[3:], head.forward((feats[0][:2], ), make_samples([2])), rtol=0,
        atol=1e-6)
    head.temporal = False
    no_rec = head.forward(feats, make_samples([3]))
    torch.testing.assert_close(
        no_rec[2], head.forward((feats[0][2:], ), make_samples([1]))[0],
        rtol=0, atol=1e-6)


def test_streaming_frame_by_frame_equals_whole_clip():
    head = make_head()
    randomise_refiner(head)
    head.eval()
    feats = feats_for(4)
    with torch.no_grad():
        expected = head.forward(feats, make_samples([4], video_ids=['A']))
    video = make_samples([1] * 4, video_ids=['A'] * 4,
                         frame_starts=[0, 1, 2, 3])
    streamed = torch.cat([
        predict_heatmaps(head, (feats[0][i:i + 1], ), [s])
        for i, s in enumerate(video)
    ])
    torch.testing.assert_close(streamed, expected, rtol=0, atol=1e-5)
    head.reset_state()
    torch.testing.assert_close(predict_heatmaps(head, feats, video),
                               expected, rtol=0, atol=1e-5)


def test_interleaved_tracks_each_carry_their_own_state():
    head = make_head()
    randomise_refiner(head)
    head.eval()
    fa, fb = feats_for(3, seed=5)[0], feats_for(3, seed=6)[0]
    alone = {}
    for vid, f in (('A', fa), ('B', fb)):
        head.reset_state()
        alone[vid] = predict_heatmaps(
            head, (f, ), make_samples([1] * 3, video_ids=[vid] * 3,
                                      frame_starts=[0, 1, 2]))
    head.reset_state()
    for t in range(3):
        both = predict_heatmaps(
            head, (torch.stack([fa[t], fb[t]]), ),
            make_samples([1, 1], video_ids=['A', 'B'], frame_starts=[t, t]))
        torch.testing.assert_close(both[0], alone['A'][t], rtol=0, atol=1e-6)
        torch.testing.assert_close(both[1], alone['B'][t], rtol=0, atol=1e-6)
    # the memory matters: frame 2 of A differs from A's frame 2 alone
    head.reset_state()
    fresh = predict_heatmaps(head, (fa[2:], ), make_samples(
        [1], video_ids=['A'], frame_starts=[2]))
    assert not torch.allclose(fresh[0], alone['A'][2])
    # max_frame_gap: a gap of 2 resets with the default 1
    head.reset_state()
    predict_heatmaps(head, (fa[:1], ), make_samples(
        [1], video_ids=['A'], frame_starts=[0]))
    after_gap = predict_heatmaps(head, (fa[2:], ), make_samples(
        [1], video_ids=['A'], frame_starts=[2]))
    torch.testing.assert_close(after_gap, fresh, rtol=0, atol=0)
    assert set(head._states) == {'A'}


def test_within_clip_variance_hand_computed():
    from mmstable.models import DecoupledRecurrentRefineHead
    # clip 0: z = 0, 2 (channel 0) and 1, 1 (channel 1): var (1 + 0) / 2
    # clip 1: one real frame (the second is padding): var 0
    z = torch.tensor([[[0., 1.], [2., 1.]], [[5., 5.], [9., 9.]]])
    mask = torch.tensor([[1., 1.], [1., 0.]])
    var = DecoupledRecurrentRefineHead.within_clip_variance(z, mask)
    assert var.item() == pytest.approx((0.5 + 0.) / 2)


def test_identity_and_invariance_losses_hand_computed():
    head = make_head(num_identities=4, identity_loss_weight=0.5,
                     invariance_loss_weight=2.)
    with torch.no_grad():
        head.identity_head.weight.zero_()
        head.identity_head.bias.zero_()
        # z = mean of u = (x0.mean over pixels) · 1 on both channels
        head.invariant_proj.weight.zero_()
        head.invariant_proj.bias.zero_()
        head.invariant_proj.weight[:, 0] = 1.
    x = torch.zeros(3, C, FEAT, FEAT)
    x[:, 0] = torch.tensor([1., 3., 7.])[:, None, None]  # z_t = 1, 3, 7
    samples = make_samples([2, 1], identities=[2, None])
    losses = head.loss((x, ), samples, train_cfg=dict(compute_acc=False))
    # uniform logits: CE = log 4 on the two labelled frames
    assert losses['loss_identity'].item() == pytest.approx(0.5 * math.log(4))
    # clip 0: z = 1, 3 → variance 1; clip 1 (one frame) 0; mean 0.5
    assert losses['loss_invariance'].item() == pytest.approx(2. * 0.5)
    # no labels anywhere: the identity term is 0 (still in the graph)
    unlabeled = head.loss((x, ), make_samples([2, 1]),
                          train_cfg=dict(compute_acc=False))
    assert unlabeled['loss_identity'].item() == 0.
    assert unlabeled['loss_identity'].requires_grad
    # switched off: no keys
    off = make_head(num_identities=4)
    assert off.identity_head is None  # no unused layer (DDP)
    off = off.loss((x, ), samples, train_cfg=dict(compute_acc=False))
    assert 'loss_identity' not in off and 'loss_invariance' not in off


def test_invariance_training_drops_within_clip_variance():
    """A tiny run on clips whose features carry a per-clip constant
    (channels 0-3, the 'identity') and a per-frame one (channels 4-7, the
    'pose'): the within-clip variance of z, relative to its variance over
    all frames (so shrinking z earns nothing), drops."""
    head = make_head(invariance_loss_weight=1., num_identities=4,
                     identity_loss_weight=1.)
    gen = torch.Generator().manual_seed(3)
    ident = torch.randn(4, 4, 1, 1, generator=gen)
    samples = make_samples([3] * 4, identities=[0, 1, 2, 3])
    mask = torch.ones(4, 3)

    def batch(seed):
        g = torch.Generator().manual_seed(seed)
        pose = torch.randn(12, 4, 1, 1, generator=g)
        x = torch.cat([ident.repeat_interleave(3, 0), pose], 1)
        return (x + 0.1 * torch.randn(12, C, FEAT, FEAT, generator=g), )

    def relative_variance():
        with torch.no_grad():
            head.forward(batch(99), samples)
            z = head._invariant
            total = z.flatten(0, 1).var(0, unbiased=False).mean()
            return (head.within_clip_variance(z, mask) / total).item()

    before = relative_variance()
    optim = torch.optim.Adam(
        [p for p in head.parameters() if p.requires_grad], lr=0.05)
    for step in range(30):
        losses = head.loss(batch(step), samples,
                           train_cfg=dict(compute_acc=False))
        optim.zero_grad()
        sum(losses.values()).backward()
        optim.step()
    after = relative_variance()
    assert before > 0.2 and after < 0.3 * before, (before, after)


def test_frozen_parameters_and_bn_buffers_bit_identical_after_training():
    cfg = dict(
        type='StableTopdownPoseEstimator',
        backbone=dict(type='ResNet', depth=18, base_channels=8,
                      stem_channels=8, out_indices=(3, )),
        head=dict(
            type='DecoupledRecurrentRefineHead',
            base_head=dict(
                type='HeatmapHead', in_channels=64, out_channels=K,
                deconv_out_channels=(8, 8), deconv_kernel_sizes=(4, 4),
                decoder=dict(CODEC, input_size=(64, 64))),
            variant_channels=3, invariant_channels=2, hidden_channels=3,
            n_iters=2, num_identities=3, identity_loss_weight=1.,
            invariance_loss_weight=1., loss=dict(type='JitterLoss')),
        test_cfg=dict(flip_test=False))
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    frozen = {
        k: v.clone()
        for k, v in model.state_dict().items()
        if k.startswith(('backbone.', 'head.base_head.'))
    }
    assert any('running_mean' in k for k in frozen)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert trainable and all(
        not n.startswith(('backbone.', 'head.base_head.'))
        for n, p in model.named_parameters() if p.requires_grad)
    optim = torch.optim.Adam(trainable, lr=0.1)
    samples = make_samples([2, 2], identities=[0, 2])
    for ds in samples:
        ds.set_metainfo(dict(input_size=(64, 64)))
        ds.gt_instances.transformed_keypoints *= 2
    inputs = torch.randn(4, 3, 64, 64)
    for _ in range(3):
        losses = model.loss(inputs, samples)
        assert {'loss_kpt', 'loss_identity', 'loss_invariance'} <= set(losses)
        optim.zero_grad()
        sum(v for k, v in losses.items() if 'loss' in k).backward()
        optim.step()
    after = model.state_dict()
    for k, v in frozen.items():
        assert torch.equal(after[k], v), k
    assert not torch.equal(after['head.combine.weight'],
                           torch.zeros_like(after['head.combine.weight']))


@pytest.mark.parametrize('kwargs, match', [
    (dict(n_iters=0), 'n_iters must be an integer >= 1'),
    (dict(variant_channels=0), 'variant_channels'),
    (dict(identity_loss_weight=-1.), 'identity_loss_weight must be'),
    (dict(identity_loss_weight=0.1), 'needs num_identities'),
    (dict(num_identities=1), 'num_identities must be'),
    (dict(motion_compensation='predicted'), "'predicted' is not supported"),
    (dict(max_frame_gap=0), 'max_frame_gap'),
])
def test_bad_options_are_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_head(**kwargs)


def test_unknown_option_is_an_error():
    with pytest.raises(TypeError, match='no_such_option'):
        make_head(no_such_option=1)


def test_bad_inputs_are_clear_errors():
    head = make_head(num_identities=3, identity_loss_weight=1.)
    with pytest.raises(ValueError, match='num_identities=3'):
        head.loss(feats_for(2), make_samples([2], identities=[3]),
                  train_cfg=dict(compute_acc=False))
    head.eval()
    with pytest.raises(ValueError, match='flip_test'):
        head.predict([feats_for(1), feats_for(1)], make_samples([1]),
                     test_cfg=dict(flip_test=True))
    with pytest.raises(RuntimeError, match='features'):
        head.refine(torch.zeros(1, 1, K, HM, HM))
    with pytest.raises(ValueError, match='integer multiple'):
        head._stride((8, 8), (3, 3))  # a base head that is not ×n


def test_synthetic_pseudo_clips_pack_their_identity():
    """The identity label comes from the synthetic video the image was
    rendered from (train_<index>); a pseudo-clip of one image has one."""
    from mmengine.registry import init_default_scope
    from mmpose.registry import DATASETS
    init_default_scope('mmpose')
    dataset = DATASETS.build(dict(
        type='ImageSequenceDataset', clip_len=3, dataset=dict(
            type='SyntheticFaceVideoDataset', data_root='data/synthetic',
            split='train', as_images=True, indices=[0, 39, 40, 1599]),
        pipeline=[
            dict(type='LoadImage'), dict(type='GetBBoxCenterScale'),
            dict(type='MakeShiftedClip', max_shift=2.0),
            dict(type='ApplyToFrames', transforms=[
                dict(type='ShiftedTopdownAffine', input_size=(64, 64))]),
            dict(type='PackClipInputs')]))
    # 40 frames per training video: images 0, 39 → face 0; 40 → 1; 1599 → 39
    for idx, identity in ((0, 0), (1, 0), (2, 1), (3, 39)):
        samples = dataset[idx]['data_samples']
        assert [s.metainfo['identity'] for s in samples] == [identity] * 3


def test_refiner_and_ablation_tables_hand_computed():
    from mmstable.evaluation.refiner_comparison import (ablation_table,
                                                        refiner_table)

    def summary(nme, nmf, text):
        return {'fast_jittered': dict(
            rows=dict(raw=dict(NME=0.02, NMF=400.),
                      refined=dict(NME=nme, NMF=nmf)),
            standing=dict(text=text))}

    table = refiner_table(
        dict(ConvLSTM=summary(0.021, 300., 'dominated by Kalman'),
             REDnet=summary(0.019, 500., 'not dominated')),
        columns=('NME', 'NMF'))
    lines = table.splitlines()
    assert lines[1] == 'fast_jittered'
    assert lines[2].split() == ['raw', '0.02', '400']
    # 0.021 / 0.02 - 1 = +5 %, 300 / 400 - 1 = -25 %
    assert lines[3].split() == ['ConvLSTM', '0.021', '(+5%)', '300', '(-25%)']
    assert lines[4].strip() == 'ConvLSTM: dominated by Kalman'
    assert lines[5].split() == ['REDnet', '0.019', '(-5%)', '500', '(+25%)']

    metrics = {'NME': 0.03, 'Raw/NME': 0.04, 'fast_jittered/NME': 0.05,
               'fast_jittered/Raw/NME': 0.06}
    table = ablation_table({'n_iters=1': metrics}, ('all', 'fast_jittered'),
                           ('NME', 'NMF'))
    rows = table.splitlines()
    assert rows[2].split() == ['raw', '(frozen', 'model)', '0.04', '-',
                               '0.06', '-']
    assert rows[3].split() == ['n_iters=1', '0.03', '-', '0.05', '-']
    with pytest.raises(ValueError, match='at least one'):
        ablation_table({})


def test_ablation_tool_settings_and_errors(tmp_path):
    import importlib.util
    import os.path as osp
    path = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'tools',
                    'analysis', 'rednet_ablation.py')
    spec = importlib.util.spec_from_file_location('rednet_ablation', path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    # one switch at a time from the demo's setting, each a valid head
    assert list(tool.SETTINGS.values()) == [
        {}, dict(identity_loss_weight=0.), dict(n_iters=1), dict(n_iters=3),
        dict(temporal=False)]
    for head in tool.SETTINGS.values():
        make_head(**dict(dict(num_identities=4, identity_loss_weight=0.1),
                         **head))
    with pytest.raises(FileNotFoundError, match='no image model'):
        tool.main(['--image-model', str(tmp_path / 'missing.pth')])
    ckpt = tmp_path / 'model.pth'
    ckpt.write_bytes(b'')
    with pytest.raises(ValueError, match='--iters must be >= 1'):
        tool.main(['--image-model', str(ckpt), '--iters', '0'])
