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
                bbox=np.array([[50., 50., 140., 120.]], np.float32),
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


# --- MakeMotionClip: realistic motion, detector-like crops, speed blur ---

def _face_size(results):
    # sqrt(w * h) of the GT landmarks' extent (the NMF normaliser)
    pts = results['keypoints'][0].astype(np.float64)
    w, h = pts.max(0) - pts.min(0)
    return np.sqrt(w * h)


def _motion_frames(seed=0, T=5, input_size=(64, 64), rot=0., **cfg):
    make = TRANSFORMS.build(dict(type='MakeMotionClip', **cfg))
    affine = TRANSFORMS.build(
        dict(type='ShiftedTopdownAffine', input_size=input_size))
    results = dict(synthetic_results(rot), clip_len=T, clip_seed=seed)
    return [affine(f) for f in make(results)['frames']]


_STRAIGHT = dict(still_prob=0., speed=(3., 3.), acceleration=0.,
                 rotation_speed=0., scale_speed=0., jitter_center=0.,
                 jitter_size=0.)


def test_motion_clip_pure_translation_of_the_crop():
    """Crop motion at 3 % of the face size per frame, straight: the GT in
    the crop moves by exactly -3 % x face x (64 / 90) input px per frame
    (bbox 90 x 70 made square 90 x 90 for the 64 x 64 input)."""
    frames = _motion_frames(T=5, face_motion_prob=0., **_STRAIGHT)
    step = 0.03 * _face_size(synthetic_results()) * 64 / 90
    tk = np.stack([f['transformed_keypoints'][0] for f in frames])
    moved = tk - tk[0]
    # every landmark moves by the same vector, t steps of length `step`
    np.testing.assert_allclose(moved, moved[:, :1].repeat(5, 1), atol=1e-3)
    np.testing.assert_allclose(np.linalg.norm(moved[:, 0], axis=1),
                               step * np.arange(5), atol=1e-3)
    direction = moved[1, 0] / step
    np.testing.assert_allclose(moved[:, 0], np.outer(np.arange(5), direction)
                               * step, atol=1e-3)
    # the source keypoints (the face) do not move; the velocity is the face's
    # relative to the crop, image px per frame
    for f in frames:
        np.testing.assert_array_equal(f['keypoints'],
                                      synthetic_results()['keypoints'])
        np.testing.assert_allclose(
            f['image_velocity'], direction * step * 90 / 64, atol=1e-4)
        assert f['motion_kind'] == 'moving+crop' and 'face_warp' not in f


@pytest.mark.parametrize('lag', [0, 1])
def test_motion_clip_pure_translation_of_the_face(lag):
    """Face motion: the image-space GT moves by 3 % of the face size per
    frame; a box that follows with lag 0 keeps the crop GT still, with lag 1
    the crop GT is one step ahead from frame 1 on."""
    frames = _motion_frames(T=4, face_motion_prob=1., crop_lag=lag,
                            **_STRAIGHT)
    src = synthetic_results()['keypoints'][0]
    step = 0.03 * _face_size(synthetic_results())
    kp = np.stack([f['keypoints'][0] for f in frames]) - src
    np.testing.assert_allclose(np.linalg.norm(kp, axis=2),
                               np.outer(step * np.arange(4), np.ones(5)),
                               atol=1e-3)
    v = kp[1, 0]
    tk = np.stack([f['transformed_keypoints'][0] for f in frames])
    expected = np.zeros_like(tk)
    if lag == 1:
        expected[1:] = v * 64 / 90
    np.testing.assert_allclose(tk - tk[0], expected, atol=1e-3)
    assert all(f['motion_kind'] == 'moving+face' for f in frames)
    np.testing.assert_allclose(frames[2]['image_velocity'], v, atol=1e-4)
    # the GT box moves with the face
    np.testing.assert_allclose(frames[3]['bbox'] - [[50., 50., 140., 120.]],
                               [np.tile(3 * v, 2)], atol=1e-3)


@pytest.mark.parametrize('seed', range(6))
def test_motion_clip_crop_affine_is_exact(seed):
    """With rotation, scale, jitter and both kinds of motion, ``crop_affine``
    maps the frame's image-space GT onto ``transformed_keypoints`` (1e-4 px),
    equals MMPose's warp of the frame's box (what the head rebuilds from the
    metainfo), and the crop equals TopdownAffine's crop of the source warped
    explicitly by ``face_warp``."""
    rot = 25. * (seed % 2)  # a clip-level rotated crop (RandomBBoxTransform)
    frames = _motion_frames(seed, T=4, rot=rot, still_prob=0.,
                            face_motion_prob=0.5, rotation_speed=5.,
                            scale_speed=0.05)
    from mmpose.structures.bbox import get_warp_matrix
    plain = TRANSFORMS.build(dict(type='TopdownAffine', input_size=(64, 64)))
    src = synthetic_results(rot)
    for f in frames:
        if 'face_warp' not in f:  # crop motion: the box never rotates
            np.testing.assert_array_equal(f['bbox_rotation'], [rot])
        A = f['crop_affine']
        assert A.shape == (2, 3)
        mapped = f['keypoints'][0] @ A[:, :2].T + A[:, 2]
        np.testing.assert_allclose(mapped, f['transformed_keypoints'][0],
                                   atol=1e-4)
        np.testing.assert_allclose(
            get_warp_matrix(f['input_center'], f['input_scale'],
                            float(f['bbox_rotation'][0]), (64, 64)), A,
            atol=1e-4)
        if 'face_warp' in f:
            warped = cv2.warpAffine(src['img'], f['face_warp'], (200, 160))
            ref = plain(dict(src, img=warped, bbox_center=f['bbox_center'],
                             bbox_scale=f['bbox_scale'],
                             bbox_rotation=f['bbox_rotation']))
            diff = np.abs(ref['img'].astype(int) - f['img'].astype(int))
            assert diff[8:-8, 8:-8].mean() < 1.5


def test_motion_clip_speeds_and_still_clips():
    """The first step of a moving clip is its drawn speed, within `speed`
    (% of the face size); near-still clips stay under `still_speed`."""
    t = TRANSFORMS.build(dict(type='MakeMotionClip', still_prob=0.5))
    speeds = dict(still=[], moving=[])
    for seed in range(200):
        m = t.sample_motion(6, 100., seed=seed)
        speeds[m['kind'].split('+')[0]].append(
            np.linalg.norm(m['translation'][1]))
        if m['kind'].startswith('still'):
            assert np.all(m['rotation'] == 0) and np.all(m['log_scale'] == 0)
    moving, still = np.array(speeds['moving']), np.array(speeds['still'])
    assert 60 < len(moving) < 140
    assert moving.min() >= 0.5 - 1e-9 and moving.max() <= 8. + 1e-9
    assert 1. < np.median(moving) < 3.  # log-uniform: median 2 %
    assert still.max() <= 0.25 + 1e-9


def test_motion_clip_is_seeded():
    a = _motion_frames(3, T=5)
    b = _motion_frames(3, T=5)
    c = _motion_frames(4, T=5)
    for fa, fb in zip(a, b):
        np.testing.assert_array_equal(fa['img'], fb['img'])
        np.testing.assert_array_equal(fa['crop_affine'], fb['crop_affine'])
    assert not np.array_equal(a[2]['crop_affine'], c[2]['crop_affine'])
    # without clip_seed: the global numpy RNG (training workers seed it)
    make = TRANSFORMS.build(dict(type='MakeMotionClip'))
    draws = []
    for _ in range(2):
        np.random.seed(7)
        frames = make(dict(synthetic_results(), clip_len=3))['frames']
        draws.append(np.stack([f['bbox_center'] for f in frames]))
    np.testing.assert_array_equal(draws[0], draws[1])


@pytest.mark.parametrize('key,value', [
    ('still_prob', 1.5), ('speed', (0., 3.)), ('speed', (4., 2.)),
    ('speed', 3.), ('still_speed', -1.), ('acceleration', -0.1),
    ('rotation_speed', 90.), ('scale_speed', 2.), ('face_motion_prob', -0.5),
    ('crop_lag', 1.5), ('crop_lag', -1), ('jitter_center', -2.),
    ('jitter_size', 'big')
])
def test_motion_clip_bad_options(key, value):
    with pytest.raises(ValueError, match=f'MakeMotionClip.{key}'):
        TRANSFORMS.build(dict(type='MakeMotionClip', **{key: value}))


def test_shifted_topdown_affine_rejects_a_non_similarity_face_warp():
    results = dict(synthetic_results(),
                   face_warp=np.array([[1., 0.5, 0.], [0., 1., 0.]]))
    with pytest.raises(ValueError, match='similarity'):
        TRANSFORMS.build(dict(type='ShiftedTopdownAffine',
                              input_size=(64, 64)))(results)


def _speed_blur(velocity, exposure=1.):
    t = TRANSFORMS.build(
        dict(type='VideoDegradation', brightness=None, gaussian_blur=None,
             gaussian_noise=None, jpeg=None,
             motion_blur=dict(prob=1., exposure=(exposure, exposure))))
    img = np.zeros((41, 41), np.float32)
    img[20, 20] = 1000.
    results = dict(img=img, crop_affine=np.array([[2., 0., 0.],
                                                  [0., 2., 0.]]))
    if velocity is not None:
        results['image_velocity'] = np.array(velocity, np.float32)
    return t(results)['img']


def test_motion_blur_is_tied_to_speed():
    """exposure 1, crop scale 2: a frame moving (0, v) image px per frame is
    blurred along y over 2v input px; faster is longer; still is sharp."""
    for v, extent in ((1.5, 3), (2., 5), (3.5, 7)):
        # length 2v; an even length is an odd kernel with half-weight ends
        out = _speed_blur((0., v))
        rows, cols = np.nonzero(out > 1.)
        assert set(cols) == {20}  # vertical streak
        assert rows.max() - rows.min() + 1 == extent
        np.testing.assert_allclose(out.sum(), 1000., rtol=1e-3)
        # centred on the dot: blur does not move the face
        np.testing.assert_allclose((out.sum(1) * np.arange(41)).sum() / 1000.,
                                   20., atol=1e-3)
    out = _speed_blur((3., 0.))
    rows, cols = np.nonzero(out > 1.)
    assert set(rows) == {20} and cols.max() - cols.min() + 1 == 7
    lengths = [np.count_nonzero(_speed_blur((v, v)) > 1.) for v in (1, 3, 6)]
    assert lengths[0] < lengths[1] < lengths[2]
    assert np.count_nonzero(_speed_blur(None) > 1.) == 1  # no velocity: still
    with pytest.raises(KeyError, match='crop_affine'):
        TRANSFORMS.build(dict(type='VideoDegradation',
                              motion_blur=dict(prob=1., exposure=(1, 1))))(
                                  dict(img=np.zeros((8, 8), np.float32),
                                       image_velocity=np.ones(2)))
    with pytest.raises(ValueError, match='exposure'):
        TRANSFORMS.build(dict(type='VideoDegradation',
                              motion_blur=dict(prob=1., speed=(1, 1))))


def test_pack_clip_inputs_packs_the_crop_affine():
    pipeline = [
        dict(type='MakeMotionClip'),
        dict(type='ApplyToFrames',
             transforms=[dict(type='ShiftedTopdownAffine',
                              input_size=(32, 32))]),
        dict(type='PackClipInputs'),
    ]
    results = dict(synthetic_results(), clip_len=3, clip_seed=0)
    for t in pipeline:
        results = TRANSFORMS.build(t)(results)
    for s in results['data_samples']:
        assert np.asarray(s.crop_affine).shape == (2, 3)
        assert np.asarray(s.bbox_rotation).shape == (1, )


def test_motion_clip_detector_jitter_scales_with_the_clip_quality():
    """Box jitter σ = quality x bound (% of the face size); quality is
    uniform in [0, 1] per clip, so some clips have nearly exact boxes."""
    t = TRANSFORMS.build(dict(type='MakeMotionClip', jitter_center=4.,
                              jitter_size=2.))
    qualities = []
    for seed in range(40):
        m = t.sample_motion(2000, 50., seed=seed)  # face 50 px
        q = m['quality']
        qualities.append(q)
        np.testing.assert_allclose(m['center_jitter'].std(0),
                                   [q * 2.] * 2, rtol=0.1, atol=1e-3)
        np.testing.assert_allclose(m['size_jitter'].std(), q * 1.,
                                   rtol=0.1, atol=1e-3)
    assert min(qualities) < 0.1 and max(qualities) > 0.9
