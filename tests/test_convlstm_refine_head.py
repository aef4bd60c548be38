"""ConvLSTMRefineHead (§3.1, eq. 1) and the clip helpers it shares
(mmstable.structures, docs/conventions.md §1)."""
import copy

import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData, PixelData
import torch.nn.functional as F
from torch import nn

from mmpose.models.utils.tta import flip_heatmaps
from mmpose.registry import MODELS
from mmpose.structures import PoseDataSample
from mmstable.structures import (clip_mask, pad_clips, split_clips,
                                 unpad_clips)

K, C, HM, INPUT = 5, 8, 16, 64
CODEC = dict(
    type='MSRAHeatmap', input_size=(INPUT, INPUT), heatmap_size=(HM, HM),
    sigma=1)
BASE_HEAD = dict(
    type='HeatmapHead', in_channels=C, out_channels=K,
    deconv_out_channels=None, decoder=CODEC)


def make_head(**kwargs):
    cfg = dict(
        type='ConvLSTMRefineHead', base_head=copy.deepcopy(BASE_HEAD),
        hidden_channels=4, bottleneck_channels=4,
        loss=dict(type='KeypointMSELoss', use_target_weight=True))
    cfg.update(kwargs)
    torch.manual_seed(0)
    head = MODELS.build(cfg)
    head.base_head.requires_grad_(False)
    return head


def randomise_refiner(head, seed=1):
    """Give Δ non-zero weights so that the recurrence shows in outputs."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in head.named_parameters():
            if not name.startswith('base_head'):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)


def make_samples(clip_lens, video_ids=None, frame_starts=None, seed=0):
    rng = np.random.default_rng(seed)
    samples = []
    for b, length in enumerate(clip_lens):
        vid = video_ids[b] if video_ids else f'v{b}'
        start = frame_starts[b] if frame_starts else 0
        for t in range(length):
            ds = PoseDataSample(
                metainfo=dict(
                    video_id=vid, frame_id=start + t, clip_len=length,
                    input_size=(INPUT, INPUT), flip_indices=list(range(K))))
            ds.gt_instances = InstanceData(
                transformed_keypoints=rng.uniform(0, INPUT - 1, (1, K, 2)))
            ds.gt_instance_labels = InstanceData(
                keypoint_weights=torch.ones(1, K))
            ds.gt_fields = PixelData(heatmaps=torch.rand(K, HM, HM))
            samples.append(ds)
    return samples


def feats_for(n, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(n, C, HM, HM, generator=gen), )


# --------------------------------------------------------------- clip helpers
def test_split_pad_unpad_varied_lengths():
    samples = make_samples([3, 1, 2])
    clips = split_clips(samples)
    assert clips == [(0, 3), (3, 1), (4, 2)]
    x = torch.arange(6.).view(6, 1).expand(6, 2)
    padded = pad_clips(x, clips, padding_value=-1)
    assert padded.shape == (3, 3, 2)
    assert padded[:, :, 0].tolist() == [[0, 1, 2], [3, -1, -1], [4, 5, -1]]
    assert clip_mask(clips).tolist() == [[True] * 3, [True, False, False],
                                         [True, True, False]]
    assert torch.equal(unpad_clips(padded, clips), x)


def test_pad_equal_lengths_is_a_view():
    clips = split_clips(make_samples([2, 2]))
    x = torch.randn(4, 3)
    padded = pad_clips(x, clips)
    assert padded.shape == (2, 2, 3) and padded.data_ptr() == x.data_ptr()


def test_split_clips_errors():
    samples = make_samples([3])
    with pytest.raises(ValueError, match='only 2 frames left'):
        split_clips(samples[:2])
    bad = make_samples([2, 2])
    bad[1].set_metainfo(dict(clip_len=3))
    with pytest.raises(ValueError, match='clip_len=3'):
        split_clips(bad)
    plain = [PoseDataSample(metainfo=dict(img_id=0))]
    with pytest.raises(KeyError, match='clip_len'):
        split_clips(plain)
    assert split_clips(plain, default_clip_len=1) == [(0, 1)]


# ------------------------------------------------------------------- forward
@pytest.mark.parametrize('share', [False, True])
def test_untrained_refiner_returns_base_heatmaps_exactly(share):
    head = make_head(share_across_keypoints=share, hidden_channels=3)
    feats = feats_for(5)
    base = head.base_head.forward(feats)
    samples = make_samples([3, 2])
    assert torch.equal(head.forward(feats, samples), base)
    assert torch.equal(head.forward(feats), base)
    head.eval()
    with torch.no_grad():
        preds, fields = head.predict(
            feats, samples, test_cfg=dict(output_heatmaps=True))
    assert torch.equal(torch.stack([f.heatmaps for f in fields]), base)
    assert len(preds) == 5 and preds[0].keypoints.shape == (1, K, 2)


def test_state_is_reset_per_clip_in_training():
    head = make_head()
    randomise_refiner(head)
    feats = feats_for(5)
    samples = make_samples([3, 2])
    together = head.forward(feats, samples)
    alone_a = head.forward((feats[0][:3], ), samples[:3])
    alone_b = head.forward((feats[0][3:], ), samples[3:])
    torch.testing.assert_close(together, torch.cat([alone_a, alone_b]),
                               rtol=0, atol=1e-6)
    # frames of one clip do depend on each other (the recurrence is live)
    one_clip = make_samples([5])
    assert not torch.allclose(head.forward(feats, one_clip)[3:], alone_b)


def test_share_across_keypoints_treats_maps_independently():
    # without the state warp (whose motion fit couples the landmarks) every
    # map is its own sequence
    head = make_head(share_across_keypoints=True, hidden_channels=3,
                     warp_state=False)
    randomise_refiner(head)
    heatmaps = torch.randn(2, 3, K, HM, HM)
    refined, state = head.refine(heatmaps)
    assert refined.shape == heatmaps.shape
    # the default cell runs at half the heatmap resolution
    assert state.h.shape == state.c.shape == (2, K * 3, HM // 2, HM // 2)
    # keypoint 0 alone gives the same refinement
    alone, _ = head.refine(heatmaps[:, :, :1].expand(-1, -1, K, -1, -1))
    torch.testing.assert_close(refined[:, :, 0], alone[:, :, 0])


# ---------------------------------------------------------------------- loss
def test_loss_with_varied_clip_lengths_reports_like_heatmap_head():
    head = make_head()
    head.train()
    losses = head.loss(feats_for(5), make_samples([3, 2]))
    # + the keypoint stage's loss (tests/test_keypoint_stage.py)
    assert set(losses) == {'loss_kpt', 'loss_filter', 'acc_pose'}
    assert losses['loss_kpt'].ndim == 0 and torch.isfinite(losses['loss_kpt'])
    losses['loss_kpt'].backward()
    assert head.out_proj.weight.grad is not None
    assert all(p.grad is None for p in head.base_head.parameters())


class _RecordingLoss(nn.Module):
    """Stands in for a keypoint-aware loss (JitterLoss) to see its inputs."""

    def forward(self, output, target, target_weights=None,
                target_keypoints=None):
        self.seen = (output, target, target_weights, target_keypoints)
        return output.sum() * 0


def test_keypoint_loss_gets_clips_and_heatmap_space_keypoints():
    head = make_head()
    head.loss_module = _RecordingLoss()
    head._loss_takes_keypoints, head._loss_takes_mask = True, False
    samples = make_samples([3, 2])
    head.loss(feats_for(5), samples, train_cfg=dict(compute_acc=False))
    output, target, weights, keypoints = head.loss_module.seen
    assert output.shape == target.shape == (2, 3, K, HM, HM)
    assert weights.shape == (2, 3, K) and keypoints.shape == (2, 3, K, 2)
    assert torch.equal(weights[1, 2], torch.zeros(K))  # padding
    assert torch.equal(weights[1, :2], torch.ones(2, K))
    # input space → heatmap space: × heatmap_size / input_size (= 1/4)
    expected = samples[4].gt_instances.transformed_keypoints[0] * HM / INPUT
    torch.testing.assert_close(keypoints[1, 1].double(),
                               torch.as_tensor(expected), atol=1e-5, rtol=0)


def test_jitter_loss_builds_and_trains_refiner():
    head = make_head(loss=dict(type='JitterLoss'))
    assert head._loss_takes_keypoints
    randomise_refiner(head)
    losses = head.loss(feats_for(5), make_samples([3, 2]))
    losses['loss_kpt'].backward()
    assert head.cell.weight.grad.abs().sum() > 0


def test_missing_transformed_keypoints_is_an_error():
    head = make_head(loss=dict(type='JitterLoss'))
    samples = make_samples([2])
    for ds in samples:
        ds.gt_instances = InstanceData()
    with pytest.raises(KeyError, match='pack_transformed'):
        head.loss(feats_for(2), samples)


# ------------------------------------------------------------- test-mode state
def _predict_heatmaps(head, feats, samples, **test_cfg):
    with torch.no_grad():
        _, fields = head.predict(
            feats, samples, test_cfg=dict(output_heatmaps=True, **test_cfg))
    return torch.stack([f.heatmaps for f in fields])


def _whole_videos(n):
    """n frames of one video as whole-video test items (clip_len=1)."""
    samples = make_samples([1] * n, video_ids=['A'] * n,
                           frame_starts=list(range(n)))
    return samples


def test_streaming_frame_by_frame_equals_whole_clip():
    head = make_head()
    randomise_refiner(head)
    head.eval()
    feats = feats_for(4)
    with torch.no_grad():
        expected = head.forward(feats, make_samples([4], video_ids=['A']))
    streamed = torch.cat([
        _predict_heatmaps(head, (feats[0][i:i + 1], ), [s])
        for i, s in enumerate(_whole_videos(4))
    ])
    torch.testing.assert_close(streamed, expected, rtol=0, atol=1e-5)
    # the same frames in one test batch are stepped in order, same result
    head.reset_state()
    batched = _predict_heatmaps(head, feats, _whole_videos(4))
    torch.testing.assert_close(batched, expected, rtol=0, atol=1e-5)


def test_state_resets_when_the_video_changes_across_calls():
    head = make_head()
    randomise_refiner(head)
    head.eval()
    feats_a, feats_b = feats_for(3, seed=1), feats_for(2, seed=2)
    samples_a = _whole_videos(3)
    samples_b = make_samples([1, 1], video_ids=['B', 'B'], frame_starts=[0, 1])
    _predict_heatmaps(head, feats_a, samples_a)
    after_a = _predict_heatmaps(head, feats_b, samples_b)
    head.reset_state()
    fresh = _predict_heatmaps(head, feats_b, samples_b)
    torch.testing.assert_close(after_a, fresh, rtol=0, atol=1e-6)

    # a gap in frame_id resets too; consecutive frames continue
    head.reset_state()
    first = _predict_heatmaps(head, (feats_a[0][:1], ), samples_a[:1])
    gap = make_samples([1], video_ids=['A'], frame_starts=[5])
    after_gap = _predict_heatmaps(head, (feats_a[0][:1], ), gap)
    torch.testing.assert_close(after_gap, first, rtol=0, atol=1e-6)
    cont = make_samples([1], video_ids=['A'], frame_starts=[6])
    continued = _predict_heatmaps(head, (feats_a[0][:1], ), cont)
    assert not torch.allclose(continued, first)


def test_mixed_videos_in_one_test_batch_and_train_resets_state():
    head = make_head()
    randomise_refiner(head)
    head.eval()
    feats = feats_for(4)
    samples = make_samples([1, 1, 1, 1], video_ids=['A', 'A', 'B', 'B'],
                           frame_starts=[0, 1, 0, 1])
    mixed = _predict_heatmaps(head, feats, samples)
    head.reset_state()
    only_b = _predict_heatmaps(head, (feats[0][2:], ), samples[2:])
    torch.testing.assert_close(mixed[2:], only_b, rtol=0, atol=1e-6)
    assert set(head._states) == {'B'}  # A ended: absent from the last call
    head.train()
    assert head._states == {}


def test_interleaved_tracks_each_carry_their_own_state():
    """Streaming with two faces per frame: [A0, B0], [A1, B1], ... equals
    running each track alone (mmstable.apis sends one batch per frame)."""
    head = make_head()
    randomise_refiner(head)
    head.eval()
    fa, fb = feats_for(3, seed=5)[0], feats_for(3, seed=6)[0]
    alone = {}
    for vid, f in (('A', fa), ('B', fb)):
        head.reset_state()
        alone[vid] = _predict_heatmaps(
            head, (f, ), make_samples([1] * 3, video_ids=[vid] * 3,
                                      frame_starts=[0, 1, 2]))
    head.reset_state()
    for t in range(3):
        both = _predict_heatmaps(
            head, (torch.stack([fa[t], fb[t]]), ),
            make_samples([1, 1], video_ids=['A', 'B'], frame_starts=[t, t]))
        torch.testing.assert_close(both[0], alone['A'][t], rtol=0, atol=1e-6)
        torch.testing.assert_close(both[1], alone['B'][t], rtol=0, atol=1e-6)
    # a track absent from a call has ended: its state is dropped
    _predict_heatmaps(head, (fa[:1], ),
                      make_samples([1], video_ids=['A'], frame_starts=[3]))
    assert set(head._states) == {'A'}
    head.reset_state('A')
    assert head._states == {}


def test_max_frame_gap_carries_state_over_skipped_frames():
    feats = feats_for(2, seed=7)
    outs = {}
    for gap in (1, 2):
        head = make_head(max_frame_gap=gap)
        randomise_refiner(head)
        head.eval()
        _predict_heatmaps(head, (feats[0][:1], ),
                          make_samples([1], video_ids=['A'], frame_starts=[0]))
        outs[gap] = _predict_heatmaps(
            head, (feats[0][1:], ),
            make_samples([1], video_ids=['A'], frame_starts=[2]))
        head.reset_state()
        outs[gap, 'fresh'] = _predict_heatmaps(
            head, (feats[0][1:], ),
            make_samples([1], video_ids=['A'], frame_starts=[2]))
    torch.testing.assert_close(outs[1], outs[1, 'fresh'], rtol=0, atol=0)
    assert not torch.allclose(outs[2], outs[2, 'fresh'])
    with pytest.raises(ValueError, match='max_frame_gap'):
        make_head(max_frame_gap=0)


def test_output_raw_adds_the_frozen_models_landmarks():
    head = make_head(decoder=dict(CODEC, type='PDCCodec', pdc_threshold=0))
    randomise_refiner(head)
    head.eval()
    feats = feats_for(2, seed=8)
    with torch.no_grad():
        preds = head.predict(feats, _whole_videos(2),
                             test_cfg=dict(output_raw=True))
        raw = head.decode(head.base_head.forward(feats))
    for pred, r in zip(preds, raw):
        np.testing.assert_array_equal(pred.raw_keypoints, r.keypoints)
        assert not np.array_equal(pred.raw_keypoints, pred.keypoints)


def test_flip_test_averages_base_heatmaps_before_refining():
    head = make_head()
    randomise_refiner(head)
    head.eval()
    feats, feats_flip = feats_for(2, seed=3), feats_for(2, seed=4)
    samples = _whole_videos(2)
    test_cfg = dict(flip_test=True, flip_mode='heatmap', shift_heatmap=True)
    got = _predict_heatmaps(head, [feats, feats_flip], samples, **test_cfg)
    with torch.no_grad():
        base = (head.base_head.forward(feats) + flip_heatmaps(
            head.base_head.forward(feats_flip), flip_indices=list(range(K)),
            shift_heatmap=True)) * 0.5
        expected, _ = head.refine(base[None])
    torch.testing.assert_close(got, expected[0], rtol=0, atol=1e-6)


def test_decoder_defaults_to_base_head_and_pdc_decodes():
    head = make_head()
    assert head.decoder is head.base_head.decoder
    pdc = make_head(decoder=dict(CODEC, type='PDCCodec'))
    assert type(pdc.decoder).__name__ == 'PDCCodec'
    pdc.eval()
    with torch.no_grad():
        preds = pdc.predict(feats_for(2), _whole_videos(2))
    assert preds[0].keypoints.shape == (1, K, 2)
    assert np.isfinite(preds[0].keypoints).all()


# ---------------------------------------------------------------- zoo keys
def test_plain_mmpose_checkpoint_loads_into_wrapped_model(tmp_path):
    from mmengine import Config
    cfg_file = tmp_path / 'wflw.py'
    cfg_file.write_text(
        "_base_ = 'mmpose::face_2d_keypoint/topdown_heatmap/wflw/"
        "td-hm_hrnetv2-w18_8xb64-60e_wflw-256x256.py'\n"
        'model = dict(backbone=dict(init_cfg=None))\n')
    cfg = Config.fromfile(str(cfg_file))
    torch.manual_seed(0)
    plain = MODELS.build(cfg.model)
    torch.save(plain.state_dict(), tmp_path / 'plain.pth')
    state = torch.load(tmp_path / 'plain.pth', weights_only=True)
    assert 'head.final_layer.weight' in state

    wrapped_cfg = copy.deepcopy(cfg.model)
    wrapped_cfg.type = 'StableTopdownPoseEstimator'
    wrapped_cfg.head = dict(
        type='ConvLSTMRefineHead', base_head=cfg.model.head,
        loss=dict(type='JitterLoss'))
    torch.manual_seed(1)
    wrapped = MODELS.build(wrapped_cfg)
    refiner_init = {
        k: v.clone()
        for k, v in wrapped.state_dict().items()
        if k.startswith('head.') and not k.startswith('head.base_head.')
    }
    result = wrapped.load_state_dict(state, strict=False)
    assert result.unexpected_keys == []
    assert sorted(result.missing_keys) == sorted(refiner_init)
    assert refiner_init  # the refiner has parameters of its own
    loaded = wrapped.state_dict()
    for k, v in plain.state_dict().items():
        new_k = k.replace('head.', 'head.base_head.', 1) if k.startswith(
            'head.') else k
        assert torch.equal(loaded[new_k], v), k
    for k, v in refiner_init.items():
        assert torch.equal(loaded[k], v), k
    # a mmstable checkpoint round-trips strictly
    wrapped.load_state_dict(wrapped.state_dict(), strict=True)


def test_padded_frames_are_masked_out_of_the_jitter_loss():
    """Clips of different T are padded to Tmax; the padding must not count
    even with ``use_target_weight=False`` (which ignores the 0 weights)."""
    head = make_head(loss=dict(type='JitterLoss', use_target_weight=False))
    seen = {}
    forward = head.loss_module.forward

    def spy(*args, **kwargs):
        seen['mask'] = kwargs.get('mask')
        return forward(*args, **kwargs)

    head.loss_module.forward = spy
    samples = make_samples([3, 1])
    for ds in samples:
        ds.gt_instances = InstanceData(
            transformed_keypoints=np.full((1, K, 2), 20.))
    head.loss(feats_for(4), samples)
    assert seen['mask'][:, :, 0, 0, 0].tolist() == [[True, True, True],
                                                    [True, False, False]]


def test_fast_pool_and_upsample_match_torch():
    from mmstable.models.heads.convlstm_refine_head import (
        _avg_pool, _upsample_bilinear)
    x = torch.randn(2, 3, 8, 12)
    torch.testing.assert_close(_avg_pool(x, 2), F.avg_pool2d(x, 2))
    d = torch.randn(2, 3, 4, 6)
    for stride in (2, 4):
        torch.testing.assert_close(
            _upsample_bilinear(d, stride),
            F.interpolate(d, scale_factor=stride, mode='bilinear',
                          align_corners=False), rtol=0, atol=1e-5)


def _blobs(centres, size, sigma=1.5):
    y, x = torch.meshgrid(torch.arange(size, dtype=torch.float32),
                          torch.arange(size, dtype=torch.float32),
                          indexing='ij')
    return torch.stack([
        torch.exp(-((x - cx)**2 + (y - cy)**2) / (2 * sigma**2))
        for cx, cy in centres
    ])


@pytest.mark.parametrize('warp_state', [True, False])
def test_state_follows_the_face_when_the_crop_moves(warp_state):
    """A still face seen through a crop that jumps by 8 input px (2 heatmap
    px): with the state warp, the refined maps are the fixed-crop ones moved
    with the crop (in the interior, away from the zero border); without it
    the refiner smooths the crop's motion and they are not."""
    hm, inp = 32, 128
    head = make_head(
        base_head=dict(BASE_HEAD, decoder=dict(
            CODEC, input_size=(inp, inp), heatmap_size=(hm, hm))),
        warp_state=warp_state)
    randomise_refiner(head)
    face = [(13., 14.), (18., 14.), (16., 17.), (14., 19.), (19., 18.)]
    shifts = [0, 2, -2]  # crop offset per frame, heatmap px (x)

    def frames(offsets):
        samples, maps = [], []
        for t, dx in enumerate(offsets):
            samples.append(PoseDataSample(metainfo=dict(
                video_id='v', frame_id=t, clip_len=len(offsets),
                input_size=(inp, inp), input_scale=np.array([inp, inp]),
                # image = input pixels shifted by the crop's origin
                input_center=np.array([inp / 2 + 4 * dx, inp / 2]))))
            maps.append(_blobs([(x - dx, y) for x, y in face], hm))
        heatmaps = torch.stack(maps)
        affines = head.frame_affines(samples, heatmaps)
        with torch.no_grad():
            return head.refine(heatmaps[None], affines=affines[None])[0][0]

    fixed, moving = frames([0, 0, 0]), frames(shifts)
    inner = slice(10, 22)
    diffs = [(moving[t].roll(dx, -1) - fixed[t])[:, inner, inner].abs().max()
             for t, dx in enumerate(shifts)]
    assert diffs[0] < 1e-6  # same first frame
    if warp_state:
        assert max(diffs) < 1e-4
    else:
        assert max(diffs) > 1e-2
