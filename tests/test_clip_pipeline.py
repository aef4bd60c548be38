import cv2
import numpy as np
import pytest
import torch
from mmengine.registry import FUNCTIONS
from mmengine.runner import Runner
from torch.utils.data import Dataset

from mmpose.registry import TRANSFORMS
from mmpose.structures import PoseDataSample
from mmstable.datasets import clip_collate


def synthetic_results(rot=0., size=(200, 160), smooth=True):
    """An image with a textured face box and K=5 keypoints, before
    TopdownAffine."""
    w, h = size
    rng = np.random.RandomState(0)
    img = rng.randint(0, 255, (h, w, 3)).astype(np.uint8)
    # smooth texture: OpenCV warps quantise coordinates to 1/32 px
    if smooth:
        img = cv2.GaussianBlur(img, (0, 0), 3)
    kpts = rng.uniform(60, 120, (1, 5, 2)).astype(np.float32)
    return dict(img=img,
                img_shape=(h, w),
                ori_shape=(h, w),
                bbox_center=np.array([[95., 85.]], np.float32),
                bbox_scale=np.array([[90., 70.]], np.float32),
                bbox_rotation=np.array([rot], np.float32),
                keypoints=kpts,
                keypoints_visible=np.ones((1, 5), np.float32),
                clip_len=4,
                video_id='v',
                id=0,
                img_id=0)


@pytest.mark.parametrize('mode', ['independent', 'random_walk'])
@pytest.mark.parametrize('distribution', ['uniform', 'normal'])
def test_make_shifted_clip(mode, distribution):
    t = TRANSFORMS.build(
        dict(type='MakeShiftedClip',
             max_shift=2.0,
             mode=mode,
             distribution=distribution))
    shifts = t.sample_shifts(500, seed=0)
    assert shifts.shape == (500, 2) and shifts.dtype == np.float32
    steps = shifts if mode == 'independent' else np.diff(shifts, axis=0)
    assert np.abs(steps).max() <= 2.0 + 1e-5
    assert np.abs(steps).max() > 1.0
    if mode == 'random_walk':
        np.testing.assert_array_equal(shifts[0], [0, 0])
    np.testing.assert_array_equal(shifts, t.sample_shifts(500, seed=0))

    results = t(synthetic_results())
    frames = results['frames']
    assert [f['frame_id'] for f in frames] == [0, 1, 2, 3]
    assert all(f['img'] is results['img'] for f in frames)
    assert frames[0]['keypoints'] is not frames[1]['keypoints']


def test_make_shifted_clip_errors():
    with pytest.raises(ValueError, match='mode'):
        TRANSFORMS.build(dict(type='MakeShiftedClip', mode='brownian'))
    with pytest.raises(ValueError, match='distribution'):
        TRANSFORMS.build(dict(type='MakeShiftedClip', distribution='laplace'))
    results = synthetic_results()
    del results['clip_len']
    with pytest.raises(KeyError, match='clip_len'):
        TRANSFORMS.build(dict(type='MakeShiftedClip'))(results)


@pytest.mark.parametrize('use_udp', [False, True])
@pytest.mark.parametrize('rot', [0., 25.])
def test_shifted_topdown_affine_is_exact(use_udp, rot):
    cfg = dict(input_size=(64, 48), use_udp=use_udp)
    plain = TRANSFORMS.build(dict(type='TopdownAffine', **cfg))
    shifted = TRANSFORMS.build(dict(type='ShiftedTopdownAffine', **cfg))
    ref = plain(synthetic_results(rot))
    same = shifted(synthetic_results(rot))
    np.testing.assert_array_equal(same['img'], ref['img'])
    shift = np.array([2.5, -1.25], np.float32)
    out = shifted(dict(synthetic_results(rot), input_shift=shift))
    np.testing.assert_allclose(
        out['transformed_keypoints'] - ref['transformed_keypoints'],
        np.broadcast_to(shift, ref['transformed_keypoints'].shape),
        atol=1e-3)
    # integer shift: the crop content moves by (2, -1) pixels
    out = shifted(dict(synthetic_results(rot), input_shift=np.array([2.,
                                                                     -1.])))
    a, b = ref['img'].astype(int), out['img'].astype(int)
    assert np.abs(b[4:-4, 6:-4] - a[5:-3, 4:-6]).max() <= 2


def test_apply_to_frames_shared_random():
    pipeline = [
        dict(type='RandomBBoxTransform', shift_prob=1., shift_factor=0.3)
    ]
    shared = TRANSFORMS.build(
        dict(type='ApplyToFrames', transforms=pipeline, shared_random=True))
    independent = TRANSFORMS.build(
        dict(type='ApplyToFrames', transforms=pipeline))
    frames = lambda: dict(frames=[synthetic_results() for _ in range(4)])
    centers = [f['bbox_center'] for f in shared(frames())['frames']]
    assert all(np.array_equal(c, centers[0]) for c in centers)
    centers = [f['bbox_center'] for f in independent(frames())['frames']]
    assert not all(np.array_equal(c, centers[0]) for c in centers)
    # single frame (no 'frames'): applied to results itself
    single = independent(synthetic_results())
    assert 'bbox_center' in single and 'frames' not in single


def test_apply_to_frames_none_drops_clip():

    @TRANSFORMS.register_module(force=True)
    class _DropSecondFrame:

        def __call__(self, results):
            return None if results.get('frame_id') == 1 else results

    t = TRANSFORMS.build(
        dict(type='ApplyToFrames', transforms=[dict(type='_DropSecondFrame')]))
    clip = dict(frames=[dict(frame_id=0), dict(frame_id=1)])
    assert t(clip) is None


@pytest.mark.parametrize('kind,cfg', [
    ('brightness', dict(prob=1., delta=(30, 30))),
    ('gaussian_blur', dict(prob=1., sigma=(1.5, 1.5))),
    ('motion_blur', dict(prob=1., length=(7, 7))),
    ('gaussian_noise', dict(prob=1., sigma=(8, 8))),
    ('jpeg', dict(prob=1., quality=(10, 10))),
])
def test_video_degradation_each_kind(kind, cfg):
    off = dict(brightness=None,
               gaussian_blur=None,
               motion_blur=None,
               gaussian_noise=None,
               jpeg=None)
    t = TRANSFORMS.build(
        dict(type='VideoDegradation', **dict(off, **{kind: cfg})))
    results = synthetic_results(smooth=False)
    original = results['img']
    img = original.copy()
    out = t(results)
    # frames of a pseudo clip share one image array: never write into it
    np.testing.assert_array_equal(original, img)
    assert out['img'].shape == img.shape and out['img'].dtype == np.uint8
    assert np.abs(out['img'].astype(int) - img).mean() > 1
    assert out['video_degradation'] == [kind]
    if kind == 'brightness':
        assert (out['img'].astype(int) - img).max() == 30


def test_video_degradation_defaults_and_errors():
    t = TRANSFORMS.build(dict(type='VideoDegradation'))
    assert set(t.cfgs) == {
        'brightness', 'gaussian_blur', 'motion_blur', 'gaussian_noise', 'jpeg'
    }
    never = TRANSFORMS.build(
        dict(type='VideoDegradation',
             brightness=dict(prob=0., delta=(-5, 5)),
             gaussian_blur=None,
             motion_blur=None,
             gaussian_noise=None,
             jpeg=None))
    results = synthetic_results()
    img = results['img'].copy()
    np.testing.assert_array_equal(never(results)['img'], img)
    with pytest.raises(ValueError, match='gaussian_noise'):
        TRANSFORMS.build(
            dict(type='VideoDegradation', gaussian_noise=dict(p=0.5)))
    with pytest.raises(ValueError, match='jpeg'):
        TRANSFORMS.build(
            dict(type='VideoDegradation', jpeg=dict(prob=2., quality=(1, 2))))


def _packed_clip(T=3):
    pipeline = [
        dict(type='MakeShiftedClip', max_shift=1.),
        dict(type='ApplyToFrames',
             transforms=[
                 dict(type='ShiftedTopdownAffine', input_size=(32, 32))
             ]),
        dict(type='PackClipInputs'),
    ]
    results = dict(synthetic_results(), clip_len=T)
    for t in pipeline:
        results = TRANSFORMS.build(t)(results)
    return results


def test_pack_clip_inputs():
    item = _packed_clip(3)
    assert item['inputs'].shape == (3, 3, 32, 32)
    assert [s.frame_id for s in item['data_samples']] == [0, 1, 2]
    assert {s.clip_len for s in item['data_samples']} == {3}
    assert all(s.video_id == 'v' for s in item['data_samples'])
    assert 'transformed_keypoints' in item['data_samples'][0].gt_instances
    single = TRANSFORMS.build(dict(type='PackClipInputs'))(TRANSFORMS.build(
        dict(type='TopdownAffine',
             input_size=(32, 32)))(dict(synthetic_results(),
                                        frame_id=7,
                                        clip_len=1)))
    assert single['inputs'].shape == (3, 32, 32)
    assert isinstance(single['data_samples'], PoseDataSample)
    assert single['data_samples'].frame_id == 7
    bad = dict(frames=[dict(synthetic_results(), frame_id=0)])
    del bad['frames'][0]['video_id']
    with pytest.raises(KeyError, match='video_id'):
        TRANSFORMS.build(dict(type='PackClipInputs'))(bad)


def test_clip_collate_flattens_clip_major():

    def clip(vid, T):
        samples = [
            PoseDataSample(metainfo=dict(video_id=vid, frame_id=t, clip_len=T))
            for t in range(T)
        ]
        return dict(inputs=torch.full((T, 3, 4, 4), vid, dtype=torch.uint8),
                    data_samples=samples)

    single = dict(inputs=torch.full((3, 4, 4), 9, dtype=torch.uint8),
                  data_samples=PoseDataSample(
                      metainfo=dict(video_id=9, frame_id=0, clip_len=1)))
    out = clip_collate([clip(1, 3), clip(2, 2), single])
    assert [int(x[0, 0, 0]) for x in out['inputs']] == [1, 1, 1, 2, 2, 9]
    assert [(s.video_id, s.frame_id) for s in out['data_samples']] == [(1, 0),
                                                                       (1, 1),
                                                                       (1, 2),
                                                                       (2, 0),
                                                                       (2, 1),
                                                                       (9, 0)]
    bad = clip(1, 3)
    bad['inputs'] = bad['inputs'][:2]
    with pytest.raises(ValueError, match='item 0'):
        clip_collate([bad])


class _ToyClips(Dataset):

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return _packed_clip(2)


def test_runner_finds_clip_collate():
    # conftest sets the default scope to 'mmpose', as configs do
    assert FUNCTIONS.get('clip_collate') is clip_collate
    loader = Runner.build_dataloader(
        dict(batch_size=2,
             num_workers=0,
             sampler=dict(type='DefaultSampler', shuffle=False),
             collate_fn=dict(type='clip_collate'),
             dataset=_ToyClips()))
    batch = next(iter(loader))
    assert len(batch['inputs']) == 4
    assert [s.frame_id for s in batch['data_samples']] == [0, 1, 0, 1]


def test_pack_clip_inputs_at_inference_without_keypoints():
    """An inference item (a box, no keypoints: mmpose.apis, tools/
    demo_video.py) packs without transformed_keypoints and runs through
    InstanceData; with keypoints they are packed."""
    from mmengine.dataset import Compose
    pipeline = Compose([
        dict(type='TopdownAffine', input_size=(64, 64)),
        dict(type='PackClipInputs')
    ])
    item = dict(img=np.zeros((80, 80, 3), np.uint8),
                bbox=np.array([[0, 0, 80, 80]], np.float32),
                bbox_center=np.array([[40., 40.]], np.float32),
                bbox_scale=np.array([[80., 80.]], np.float32),
                bbox_score=np.ones(1, np.float32), video_id='v', frame_id=0)
    out = pipeline(dict(item))
    gt = out['data_samples'].gt_instances
    assert 'transformed_keypoints' not in gt
    gt.to('cpu')  # rebuilding the InstanceData fails on a 0-d field
    out = pipeline(dict(item, keypoints=np.full((1, 3, 2), 40., np.float32),
                        keypoints_visible=np.ones((1, 3), np.float32)))
    np.testing.assert_allclose(
        out['data_samples'].gt_instances.transformed_keypoints, 32.)
