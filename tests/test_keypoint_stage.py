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
