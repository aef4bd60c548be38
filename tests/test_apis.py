"""mmstable.apis: init_model (safe checkpoint loading) and StableFaceTracker
(per-track refiner state, association, filters, bad input)."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.dataset import Compose, pseudo_collate

from mmstable.apis import (HaarFaceDetector, StableFaceTracker, TrackResult,
                           init_model)
from mmstable.datasets.synthetic import FaceVideoGenerator

INPUT = 64

# A tiny face model at 64x64 (random weights are enough for plumbing): a small
# ResNet + HeatmapHead, wrapped in ConvLSTMRefineHead for the stable variant.
TINY_CONFIG = """
codec = dict(type='MSRAHeatmap', input_size=({s}, {s}),
             heatmap_size=({h}, {h}), sigma=1.5)
base_head = dict(type='HeatmapHead', in_channels=16, out_channels=68,
                 deconv_out_channels=None, decoder=codec)
model = dict(
    type='TopdownPoseEstimator',
    data_preprocessor=dict(type='PoseDataPreprocessor',
                           mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
    backbone=dict(type='ResNet', depth=18, base_channels=16,
                  out_indices=(0, )),
    head=base_head,
    test_cfg=dict(flip_test=False))
if {stable}:
    model.update(
        type='StableTopdownPoseEstimator',
        head=dict(type='ConvLSTMRefineHead', base_head=base_head,
                  hidden_channels=4, bottleneck_channels=4,
                  decoder=dict(codec, type='PDCCodec')))
custom_imports = dict(imports=['mmstable'], allow_failed_imports=False)
_meta = dict(from_file='configs/_base_/datasets/300w.py')
_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale', padding=1.25),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='PackPoseInputs')]
train_dataloader = dict(dataset=dict(type='Face300WDataset', metainfo=_meta))
test_dataloader = dict(dataset=dict(type='Face300WDataset', metainfo=_meta,
                                    pipeline=_pipeline))
"""


def write_tiny_model(tmp_dir, stable=True, seed=0):
    """Write the tiny config and a checkpoint with random weights (refiner
    randomised too: its zero-initialised output layer would otherwise make
    it the identity); return ``(config_path, checkpoint_path)``."""
    name = 'stable' if stable else 'plain'
    cfg_path = osp.join(str(tmp_dir), f'tiny_{name}.py')
    with open(cfg_path, 'w') as f:
        f.write(TINY_CONFIG.format(s=INPUT, h=INPUT // 4, stable=stable))
    torch.manual_seed(seed)
    model = init_model(cfg_path, device='cpu')
    if stable:
        gen = torch.Generator().manual_seed(seed + 1)
        with torch.no_grad():
            for n, p in model.head.named_parameters():
                if not n.startswith('base_head'):
                    p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    ckpt_path = osp.join(str(tmp_dir), f'tiny_{name}.pth')
    # no meta['dataset_meta']: init_model takes it from the config
    torch.save(dict(state_dict=model.state_dict()), ckpt_path)
    return cfg_path, ckpt_path


def synthetic_frames(num_frames=8, size=96, seed=0):
    gen = FaceVideoGenerator(image_size=size, face_size=(40., 56.))
    video = gen.generate(seed, num_frames)
    return video.frames, video.keypoints


def landmark_boxes(keypoints, margin=4.):
    return np.concatenate([keypoints.min(1) - margin,
                           keypoints.max(1) + margin], axis=1)


@pytest.fixture(scope='module')
def tiny_stable(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp('tiny_stable'), True)


@pytest.fixture(scope='module')
def tiny_plain(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp('tiny_plain'), False)


@pytest.fixture(scope='module')
def video():
    frames, keypoints = synthetic_frames(10)
    return frames, landmark_boxes(keypoints)


def clip_predictions(model, frames, boxes, video_id='clip'):
    """Run the model on the whole clip in one ``test_step``: the frames as
    one clip of ``clip_len=T`` (docs/conventions.md §1)."""
    pipeline = Compose(model.cfg.test_dataloader.dataset.pipeline)
    data = []
    for t, (frame, box) in enumerate(zip(frames, boxes)):
        info = dict(img=frame, bbox=box[None, :4].astype(np.float32),
                    bbox_score=np.ones(1, np.float32), **model.dataset_meta)
        item = pipeline(info)
        item['data_samples'].set_metainfo(
            dict(video_id=video_id, frame_id=t, clip_len=len(frames)))
        data.append(item)
    model.head.reset_state()
    with torch.no_grad():
        samples = model.test_step(pseudo_collate(data))
    model.head.reset_state()
    return np.stack([s.pred_instances.keypoints[0] for s in samples])


# ----------------------------------------------------------------- init_model
def test_init_model_loads_checkpoint_safely(tiny_stable):
    cfg, ckpt = tiny_stable
    model = init_model(cfg, ckpt, device='cpu')
    state = torch.load(ckpt, weights_only=True)['state_dict']
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k
    assert model.dataset_meta['num_keypoints'] == 68
    assert not model.training


def test_init_model_refuses_unsafe_checkpoint(tiny_stable, tmp_path):
    from mmstable.utils.checkpoint import UnsafeCheckpointError

    class Payload:

        def __reduce__(self):
            return (print, ('pwned', ))

    path = str(tmp_path / 'evil.pth')
    torch.save(dict(state_dict={}, meta=dict(x=Payload())), path)
    with pytest.raises(UnsafeCheckpointError, match='evil.pth'):
        init_model(tiny_stable[0], path, device='cpu')


def test_init_model_refuses_a_checkpoint_that_does_not_fit(tiny_plain,
                                                           tmp_path):
    """issue 12 item 3 through init_model, for a plain MMPose model too:
    98-landmark weights into a 68-landmark config are an error naming the
    head's keys and shapes, unless allow_partial_load."""
    from mmstable.utils.checkpoint import CheckpointMismatchError
    cfg98 = tmp_path / 'k98.py'
    cfg98.write_text(open(tiny_plain[0]).read().replace(
        'out_channels=68', 'out_channels=98'))
    model98 = init_model(str(cfg98), device='cpu')
    ckpt = str(tmp_path / 'k98.pth')
    torch.save(dict(state_dict=model98.state_dict()), ckpt)
    with pytest.raises(CheckpointMismatchError,
                       match=r'head\.final_layer\.weight \(checkpoint '
                       r'\[98, 16, 1, 1\], model \[68, 16, 1, 1\]\)'):
        init_model(tiny_plain[0], ckpt, device='cpu')
    model = init_model(tiny_plain[0], ckpt, device='cpu',
                       allow_partial_load=True)
    assert torch.equal(model.backbone.conv1.weight,
                       model98.backbone.conv1.weight)
    model = init_model(tiny_plain[0], ckpt, device='cpu',
                       cfg_options=dict(allow_partial_load=True))
    with pytest.raises(FileNotFoundError, match='config nope.py does not'):
        init_model('nope.py', device='cpu')


def test_init_model_takes_dataset_meta_from_the_checkpoint(tiny_plain,
                                                           tmp_path):
    state = torch.load(tiny_plain[1], weights_only=True)
    meta = dict(dataset_name='mine', num_keypoints=68)
    ckpt = str(tmp_path / 'meta.pth')
    torch.save(dict(state_dict=state['state_dict'],
                    meta=dict(dataset_meta=meta)), ckpt)
    assert init_model(tiny_plain[0], ckpt, device='cpu').dataset_meta == meta
    # without it: the config's (300W)
    assert init_model(*tiny_plain, device='cpu').dataset_meta[
        'dataset_name'] == '300w'


# ----------------------------------------------------- equality with the clip
def test_streaming_equals_whole_clip(tiny_stable, video):
    frames, boxes = video
    model = init_model(*tiny_stable, device='cpu')
    tracker = StableFaceTracker(model)
    stream = []
    for frame, box in zip(frames, boxes):
        (res, ) = tracker.update(frame, box[None])
        assert isinstance(res, TrackResult) and res.track_id == 0
        assert res.keypoints.shape == (68, 2) and res.scores.shape == (68, )
        stream.append(res.keypoints)
    clip = clip_predictions(model, frames, boxes)
    np.testing.assert_allclose(np.stack(stream), clip, atol=1e-4, rtol=0)

    # the state matters: frame by frame from the initial state differs
    fresh = [
        StableFaceTracker(model).update(f, b[None])[0].keypoints
        for f, b in zip(frames[-3:], boxes[-3:])
    ]
    assert np.abs(np.stack(fresh) - clip[-3:]).max() > 1e-3


def test_face_lost_and_back_starts_from_reset_state(tiny_stable, video):
    frames, boxes = video
    model = init_model(*tiny_stable, device='cpu')
    tracker = StableFaceTracker(model)
    before, after = [], []
    for t, (frame, box) in enumerate(zip(frames, boxes)):
        res = tracker.update(frame, [] if t in (4, 5) else box[None])
        if t in (4, 5):
            assert res == [] and tracker.track_ids == []
        else:
            (before if t < 4 else after).append(res[0])
    assert {r.track_id for r in before} == {0}
    assert {r.track_id for r in after} == {1}
    assert [r.track_frame for r in after] == [0, 1, 2, 3]

    fresh = StableFaceTracker(model)
    again = [fresh.update(f, b[None])[0] for f, b in zip(frames[6:],
                                                          boxes[6:])]
    for a, b in zip(after, again):
        np.testing.assert_allclose(a.keypoints, b.keypoints, atol=1e-5)
    # ... whereas carrying the state over the gap would differ
    continuous = StableFaceTracker(model)
    kept = [continuous.update(f, b[None])[0] for f, b in zip(frames, boxes)]
    assert np.abs(kept[6].keypoints - after[0].keypoints).max() > 1e-3


def test_raw_keypoints_are_the_frozen_models(tiny_stable, tiny_plain, video):
    frames, boxes = video
    stable = init_model(*tiny_stable, device='cpu')
    res = StableFaceTracker(stable).update(frames[0], boxes[:1])[0]
    # the tracker sets test_cfg['output_raw']: the refiner reports the frozen
    # model's landmarks, which differ from its refined ones (random refiner)
    assert res.raw_keypoints is not None and res.raw_keypoints.shape == (68,
                                                                         2)
    assert np.abs(res.raw_keypoints - res.keypoints).max() > 1e-3
    no_raw = StableFaceTracker(
        init_model(*tiny_stable, device='cpu'),
        output_raw=False).update(frames[0], boxes[:1])[0]
    assert no_raw.raw_keypoints is None
    np.testing.assert_allclose(no_raw.keypoints, res.keypoints, atol=1e-5)
    # the frozen part of the stable model is the plain model: same weights;
    # the head decodes raw heatmaps with its own decoder (PDCCodec here)
    plain = init_model(
        tiny_plain[0], device='cpu',
        cfg_options={'model.head.decoder.type': 'PDCCodec'})
    plain.load_state_dict(
        {k.replace('head.base_head.', 'head.'): v
         for k, v in stable.state_dict().items()
         if not k.startswith('head.') or k.startswith('head.base_head.')})
    ref = StableFaceTracker(plain).update(frames[0], boxes[:1])[0]
    np.testing.assert_allclose(res.raw_keypoints, ref.keypoints, atol=1e-4)


# -------------------------------------------------------------- plain models
def test_plain_model_with_filter(tiny_plain, video):
    from mmstable.evaluation.filters import OneEuroFilter
    frames, boxes = video
    model = init_model(*tiny_plain, device='cpu')
    raw_tracker = StableFaceTracker(model)
    filt_tracker = StableFaceTracker(model, filter='mmpose0x_one_euro')
    raw, filtered = [], []
    for frame, box in zip(frames, boxes):
        r = raw_tracker.update(frame, box[None])[0]
        f = filt_tracker.update(frame, box[None])[0]
        np.testing.assert_allclose(r.keypoints, r.raw_keypoints)
        np.testing.assert_allclose(f.raw_keypoints, r.keypoints, atol=1e-5)
        raw.append(r.keypoints)
        filtered.append(f.keypoints)
    expected = OneEuroFilter()(np.stack(raw))
    np.testing.assert_allclose(np.stack(filtered), expected, atol=1e-4)


def test_offline_filter_is_refused(tiny_plain):
    model = init_model(*tiny_plain, device='cpu')
    with pytest.raises(ValueError, match='offline'):
        StableFaceTracker(model, filter='mmpose0x_savgol')


# --------------------------------------------------------------- association
def test_two_faces_keep_their_ids(tiny_plain):
    frames, kpts = synthetic_frames(4, size=96)
    model = init_model(*tiny_plain, device='cpu')
    # two copies of the video side by side: two faces per frame
    wide = np.concatenate([frames, frames], axis=2)
    left = landmark_boxes(kpts)
    right = left + np.array([96, 0, 96, 0], np.float32)
    # (track_by='landmarks' needs a trained model: random weights put the
    # landmarks anywhere in the crop)
    tracker = StableFaceTracker(model, iou_thr=0.1)
    for t in range(4):
        boxes = np.stack([left[t], right[t]])
        if t % 2:  # the detector's order must not matter
            boxes = boxes[::-1]
        res = tracker.update(wide[t], boxes)
        ids = {r.track_id: r.bbox[0] < 96 for r in res}
        assert ids == {0: True, 1: False}, (t, ids)


def test_tracks_in_one_batch_keep_separate_states(tiny_stable):
    """Several faces per frame go through the model in one batch; each
    track's refiner state is its own (ConvLSTMRefineHead keeps one state per
    video_id)."""
    frames, kpts = synthetic_frames(6, size=96)
    wide = np.concatenate([frames, frames], axis=2)
    left = landmark_boxes(kpts)
    right = left + np.array([96, 0, 96, 0], np.float32)
    model = init_model(*tiny_stable, device='cpu')
    both = StableFaceTracker(model, iou_thr=0.1)
    out = {}
    for t in range(6):
        # the right face is gone in frame 3 and comes back as a new track
        boxes = [left[t]] if t == 3 else [left[t], right[t]]
        for r in both.update(wide[t], np.stack(boxes)):
            out[t, r.track_id] = r.keypoints
    assert sorted(k[1] for k in out) == [0] * 6 + [1] * 3 + [2] * 2

    def alone(boxes, frame_ids):
        tracker = StableFaceTracker(model)
        return [tracker.update(wide[t], boxes[t][None])[0].keypoints
                for t in frame_ids]

    for ids, got, ref in [
            ((0, ) * 6, range(6), alone(left, range(6))),
            ((1, ) * 3, range(3), alone(right, range(3))),
            ((2, ) * 2, range(4, 6), alone(right, range(4, 6)))]:
        for track_id, t, r in zip(ids, got, ref):
            np.testing.assert_allclose(out[t, track_id], r, atol=1e-4)


def test_landmark_tracking_crops_from_previous_landmarks(tiny_plain, video):
    frames, boxes = video
    model = init_model(*tiny_plain, device='cpu')
    tracker = StableFaceTracker(model, track_by='landmarks', iou_thr=0.)
    first = tracker.update(frames[0], boxes[:1])[0]
    second = tracker.update(frames[1], boxes[1:2])[0]
    assert second.track_id == first.track_id
    np.testing.assert_allclose(
        second.bbox,
        np.concatenate([first.keypoints.min(0), first.keypoints.max(0)]),
        atol=1e-4)


def test_max_faces_and_degenerate_boxes(tiny_plain, video):
    frames, boxes = video
    model = init_model(*tiny_plain, device='cpu')
    small = boxes[0] * np.array([1, 1, 0.5, 0.5])
    bad = np.array([10, 10, 5, 20], np.float32)  # x2 < x1
    three = np.stack([np.r_[small[:4], 0.9], np.r_[boxes[0, :4], 0.9],
                      np.r_[bad, 1.0]])
    # an invalid box is an error naming the frame and the box ...
    with pytest.raises(ValueError, match=r'frame 0\): box 2 \[10, 10, 5, '
                       r'20\] is inverted'):
        StableFaceTracker(model, max_faces=1).update(frames[0], three)
    # ... or, with invalid_boxes='skip', dropped with a warning naming it
    tracker = StableFaceTracker(model, max_faces=1, invalid_boxes='skip')
    with pytest.warns(UserWarning, match=r'box 2 \[10, 10, 5, 20\] is '
                      'inverted.*skipped'):
        res = tracker.update(frames[0], three)
    assert len(res) == 1  # the larger of the two valid boxes
    np.testing.assert_allclose(res[0].bbox, boxes[0, :4])


@pytest.mark.parametrize('box, why', [
    ([4900, 4900, 5000, 5000], 'lies entirely outside the image'),
    ([np.nan, 10, 50, 60], 'NaN or inf'),
    ([50, 10, 10, 60], 'inverted'),
    ([10, 10, 10, 60], 'zero area'),
])
def test_invalid_box_is_an_error_not_landmarks(tiny_plain, video, box, why):
    """issue 12 item 5: a box outside the image gave landmarks near
    (4991, 5007); NaN / inverted boxes were dropped silently."""
    frames, boxes = video
    tracker = StableFaceTracker(init_model(*tiny_plain, device='cpu'))
    tracker.update(frames[0], boxes[:1])
    with pytest.raises(ValueError, match=rf'frame 1\): box 1 .*{why}.*image '
                       r'96x96'):
        tracker.update(frames[1], np.stack([boxes[1, :4], box]))
    # the refused frame does not count: the track continues
    (res, ) = tracker.update(frames[1], boxes[1:2])
    assert (tracker.frame_index, res.track_id, res.track_frame) == (1, 0, 1)


def test_bad_tracker_options(tiny_plain):
    model = init_model(*tiny_plain, device='cpu')
    with pytest.raises(ValueError, match='invalid_boxes'):
        StableFaceTracker(model, invalid_boxes='drop')
    with pytest.raises(ValueError, match='max_faces'):
        StableFaceTracker(model, max_faces=0)


def test_image_contract_at_the_tracker(tiny_plain, video):
    """issue 12 item 4: one rule for every dtype / shape
    (mmstable.apis.image_input): same landmarks for the same picture,
    a clear error for what cannot be read unambiguously."""
    frames, boxes = video
    model = init_model(*tiny_plain, device='cpu')

    def landmarks(img):
        return StableFaceTracker(model).update(img, boxes[:1])[0].keypoints

    ref = landmarks(frames[0])
    np.testing.assert_array_equal(landmarks(frames[0].astype(np.float64)),
                                  ref)
    np.testing.assert_array_equal(
        landmarks(frames[0].astype(np.float32) + 0.3), ref)  # rounds back
    bgra = np.concatenate([frames[0], np.zeros_like(frames[0][..., :1])], 2)
    np.testing.assert_array_equal(landmarks(bgra), ref)
    grey = frames[0][..., 1]
    grey3 = np.repeat(grey[..., None], 3, axis=2)
    np.testing.assert_array_equal(landmarks(grey), landmarks(grey3))
    np.testing.assert_array_equal(landmarks(grey[..., None]),
                                  landmarks(grey3))

    tracker = StableFaceTracker(model)
    with pytest.raises(ValueError, match=r'update \(frame 0\).*scaled to '
                       r'\[0, 1\]'):
        tracker.update(frames[0] / 255., boxes[:1])
    for img, match in [(frames[0].astype(np.uint16) * 257, 'uint16'),
                       (frames[0] > 128, 'bool')]:
        with pytest.raises(TypeError, match=f'dtype {match}'):
            tracker.update(img, boxes[:1])
    assert tracker.frame_index == -1  # refused frames do not count


def test_haar_detector_image_contract():
    frames, _ = synthetic_frames(1, size=128, seed=1)
    det = HaarFaceDetector()
    ref = det(frames[0])
    assert len(ref)
    np.testing.assert_array_equal(det(frames[0].astype(np.float32)), ref)
    with pytest.raises(TypeError, match='HaarFaceDetector.*dtype bool'):
        det(frames[0] > 0)
    with pytest.raises(ValueError, match='HaarFaceDetector.*scaled'):
        det(frames[0] / 255.)


# ----------------------------------------------------------------- bad input
def test_resolution_change_ends_tracks(tiny_plain, video):
    frames, boxes = video
    model = init_model(*tiny_plain, device='cpu')
    tracker = StableFaceTracker(model)
    a = tracker.update(frames[0], boxes[:1])[0]
    big = np.pad(frames[1], ((0, 32), (0, 32), (0, 0)))
    b = tracker.update(big, boxes[1:2])[0]  # same box: would match by IoU
    assert (a.track_id, b.track_id, b.track_frame) == (0, 1, 0)


def test_full_frame_without_detector_and_bad_frames(tiny_plain, video):
    frames, _ = video
    model = init_model(*tiny_plain, device='cpu')
    tracker = StableFaceTracker(model)
    (res, ) = tracker.update(frames[0])
    np.testing.assert_allclose(res.bbox, [0, 0, 96, 96])
    (res, ) = tracker.update(frames[0][..., 0])  # grey is accepted
    with pytest.raises(ValueError, match='H, W, 3'):
        tracker.update(np.zeros((0, 5, 3), np.uint8))
    with pytest.raises(ValueError, match='boxes'):
        tracker.update(frames[0], np.zeros((1, 3)))


def test_haar_detector_fires_on_synthetic_faces():
    frames, kpts = synthetic_frames(3, size=128, seed=1)
    det = HaarFaceDetector()
    for frame, k in zip(frames, kpts):
        boxes = det(frame)
        assert boxes.shape[1] == 5 and len(boxes) >= 1
        cx, cy = k.mean(0)
        assert ((boxes[:, 0] < cx) & (cx < boxes[:, 2]) & (boxes[:, 1] < cy)
                & (cy < boxes[:, 3])).any()
    assert det(np.zeros((64, 64, 3), np.uint8)).shape == (0, 5)


def test_haar_boxes_become_landmark_boxes():
    frames, _ = synthetic_frames(1, size=128, seed=1)
    x1, y1, x2, y2, _ = HaarFaceDetector(box_on_landmark_box=None)(
        frames[0])[0]
    (box, ) = HaarFaceDetector(box_on_landmark_box=(0.1, -0.2, 1.25))(
        frames[0])
    # landmark box side = Haar side / 1.25; its centre is 0.2 of that side
    # below the Haar centre and 0.1 of it to the left
    s = (x2 - x1) / 1.25
    cx, cy = (x1 + x2) / 2 - 0.1 * s, (y1 + y2) / 2 + 0.2 * s
    np.testing.assert_allclose(
        box, [cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2, 1.], rtol=1e-5)
    # the default is the offset measured on the registry faces
    assert HaarFaceDetector().box_on_landmark_box == (-0.003, -0.181, 1.18)
    for bad in [(0., 0.), (0., 0., 0.), (0., float('nan'), 1.)]:
        with pytest.raises(ValueError, match='box_on_landmark_box'):
            HaarFaceDetector(box_on_landmark_box=bad)


def test_tracker_needs_an_inference_model(tiny_plain):
    from mmpose.registry import MODELS
    from mmengine.config import Config
    cfg = Config.fromfile(tiny_plain[0])
    with pytest.raises(ValueError, match='init_model'):
        StableFaceTracker(MODELS.build(cfg.model))
