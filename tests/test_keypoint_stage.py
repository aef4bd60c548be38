"""The refiner's keypoint stage (ConvLSTMRefineHead ``keypoint_filter``):
wiring in loss and predict, filmed vs pseudo clips."""
import numpy as np
import torch

from test_convlstm_refine_head import (feats_for, make_head, make_samples,
                                       randomise_refiner)


def test_filter_loss_learns_from_filmed_clips_only():
    head = make_head()
    head.train()
    samples = make_samples([3, 2])
    for s in samples[:3]:  # clip 0 is a pseudo-clip (MakeShiftedClip)
        s.set_metainfo(dict(pseudo_clip=True))
    both = head.loss(feats_for(5), samples)['loss_filter']
    assert both.item() > 0
    for s in samples[3:]:
        s.set_metainfo(dict(pseudo_clip=True))
    none = head.loss(feats_for(5), samples)['loss_filter']
    assert none.item() == 0.
    none.backward()
    grads = [p.grad for p in head.keypoint_filter.parameters()]
    assert all(g is None or not g.any() for g in grads)
    # opted in: pseudo-clips count
    head = make_head(keypoint_loss_on_pseudo_clips=True)
    head.train()
    loss = head.loss(feats_for(5), samples)['loss_filter']
    assert loss.item() > 0
    loss.backward()
    assert head.keypoint_filter.mlp[2].bias.grad.abs().sum() > 0


def test_without_keypoint_filter_predictions_are_the_decoded_maps():
    head = make_head(keypoint_filter=None)
    randomise_refiner(head)
    head.eval()
    head.train()
    assert set(head.loss(feats_for(3), make_samples([3]))) == {
        'loss_kpt', 'acc_pose'}
    head.eval()
    preds = head.predict(feats_for(3), make_samples([3]))
    maps = head.forward(feats_for(3), make_samples([3]))
    for pred, dec in zip(preds, head.decode(maps)):
        np.testing.assert_array_equal(pred.keypoints, dec.keypoints)


def test_predictions_are_the_filter_on_decoded_refined_and_raw_landmarks():
    head = make_head()
    randomise_refiner(head)
    with torch.no_grad():  # an adaptive gain and blend
        for p in head.keypoint_filter.parameters():
            p.normal_(0, 0.5, generator=torch.Generator().manual_seed(3))
    head.eval()
    samples = make_samples([4])
    feats = feats_for(4)
    preds = head.predict(feats, samples, dict(output_raw=True))
    maps = head.forward(feats, samples)
    measured = np.stack([d.keypoints[0] for d in head.decode(maps)])
    raw = np.stack([d.keypoints[0]
                    for d in head.decode(head.base_head.forward(feats))])
    # no crop information: image space is the input space
    with torch.no_grad():
        expected, _ = head.keypoint_filter(
            torch.as_tensor(measured)[None].float(),
            torch.as_tensor(raw)[None].float())
    got = np.stack([p.keypoints[0] for p in preds])
    np.testing.assert_allclose(got, expected[0].numpy(), atol=1e-4)
    np.testing.assert_allclose(
        np.stack([p.raw_keypoints[0] for p in preds]), raw, atol=1e-6)
    assert not np.allclose(got, measured, atol=1e-3)


def test_filter_state_is_carried_per_video_across_calls():
    head = make_head()
    randomise_refiner(head)
    head.eval()
    feats = feats_for(6)
    whole = head.predict(feats, make_samples([6], video_ids=['a']))
    head.reset_state()
    parts = []
    for t in range(6):
        one = make_samples([1], video_ids=['a'], frame_starts=[t])
        parts += head.predict((feats[0][t:t + 1], ), one)
    for w, p in zip(whole, parts):
        np.testing.assert_allclose(p.keypoints, w.keypoints, atol=1e-4)
    # a new video id starts its own track (no carry from 'a')
    fresh = head.predict((feats[0][3:4], ),
                         make_samples([1], video_ids=['b'], frame_starts=[3]))
    head.reset_state()
    again = head.predict((feats[0][3:4], ),
                         make_samples([1], video_ids=['b'], frame_starts=[3]))
    np.testing.assert_array_equal(fresh[0].keypoints, again[0].keypoints)


def test_crop_offset_filter_gets_each_frame_crop_centre():
    """``AdaptiveKalmanFilter(crop_offset=True)``: predict runs the filter
    on the landmarks in image space with each frame's crop centre — for
    MMPose's crops, ``input_center`` (get_warp_matrix maps it to the
    input's middle); the crops move from frame to frame."""
    from mmstable.structures import apply_affine, crop_affine_from_metainfo
    head = make_head(keypoint_filter=dict(type='AdaptiveKalmanFilter',
                                          crop_offset=True))
    randomise_refiner(head)
    with torch.no_grad():
        head.keypoint_filter.crop_gain.copy_(torch.tensor([0.2, 0.4]))
    head.eval()
    samples = make_samples([5])
    centres = np.array([[100., 80.], [104., 79.], [97., 85.], [101., 80.],
                        [110., 90.]])
    for s, c in zip(samples, centres):
        s.set_metainfo(dict(input_center=c, input_scale=np.array([90.,
                                                                 90.])))
    feats = feats_for(5)
    preds = head.predict(feats, samples)
    maps = head.forward(feats, samples)
    inverse = torch.as_tensor(np.stack([
        np.linalg.inv(np.vstack([crop_affine_from_metainfo(s.metainfo),
                                 [0., 0., 1.]])) for s in samples
    ])).float()

    def image(decoded):
        return apply_affine(inverse, torch.as_tensor(
            np.stack([d.keypoints[0] for d in decoded])).float())

    measured = image(head.decode(maps))
    raw = image(head.decode(head.base_head.forward(feats)))
    with torch.no_grad():
        expected, _ = head.keypoint_filter(
            measured[None], raw[None],
            crop_centres=torch.as_tensor(centres).float()[None])
    # the head's predictions are in input (crop) space
    got = apply_affine(inverse, torch.as_tensor(
        np.stack([p.keypoints[0] for p in preds])).float())
    np.testing.assert_allclose(got.numpy(), expected[0].numpy(), atol=1e-3)
    # the centres matter: with the crops held still the output differs
    with torch.no_grad():
        still, _ = head.keypoint_filter(
            measured[None], raw[None],
            crop_centres=torch.as_tensor(centres[:1]).float().expand(
                1, 5, 2))
    assert not np.allclose(got.numpy(), still[0].numpy(), atol=1e-2)
    # and training passes them too (a loss with a gradient on the gain)
    head.train()
    loss = head.loss(feats, samples)['loss_filter']
    loss.backward()
    assert head.keypoint_filter.crop_gain.grad.abs().sum() > 0


def test_frozen_identity_map_stage_is_skipped_in_training():
    """A map stage at its zero init with its parameters frozen (as
    configs/demo/real_jitter.py) is not run in ``loss``: the same losses
    (and keypoint-stage gradients) as when forced through it, without a
    ``refine`` call; a trainable one still runs (it must learn)."""
    head = make_head()
    for name, p in head.named_parameters():
        if not name.startswith(('base_head.', 'keypoint_filter.')):
            p.requires_grad_(False)
    assert head.map_stage_is_identity()
    head.train()
    samples = make_samples([3, 2])
    calls = []
    original = type(head).refine

    def counted(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    type(head).refine = counted
    try:
        skipped = head.loss(feats_for(5), samples)
        assert not calls
        skipped['loss_filter'].backward()
        grad = head.keypoint_filter.mlp[2].bias.grad.clone()
        head.zero_grad()
        head.map_stage_is_identity = lambda: False
        forced = head.loss(feats_for(5), samples)
        assert len(calls) == 1
        forced['loss_filter'].backward()
        for key in ('loss_kpt', 'loss_filter'):
            torch.testing.assert_close(skipped[key], forced[key])
        torch.testing.assert_close(grad, head.keypoint_filter.mlp[2].bias.grad)
        trainable = make_head()
        trainable.train()
        calls.clear()
        trainable.loss(feats_for(5), samples)
        assert len(calls) == 1
    finally:
        type(head).refine = original
