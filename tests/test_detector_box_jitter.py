"""DetectorBoxJitter: detector-like boxes on the frames of a real clip."""
import numpy as np
import pytest

from mmpose.registry import TRANSFORMS

import mmstable  # noqa: F401


def make_clip(t=400):
    kpts = np.array([[[0., 0.], [30., 120.], [10., 10.]]], np.float32)
    return dict(frames=[
        dict(bbox_center=np.array([[50., 60.]], np.float32),
             bbox_scale=np.array([[100., 100.]], np.float32),
             keypoints=kpts.copy(),
             keypoints_visible=np.ones((1, 3), np.float32)) for _ in range(t)
    ])


def test_face_size_from_landmarks_or_box():
    jitter = TRANSFORMS.build(dict(type='DetectorBoxJitter'))
    frame = make_clip(1)['frames'][0]
    assert jitter.face_size(frame) == pytest.approx(60.)  # sqrt(30 · 120)
    frame['keypoints_visible'][0, 1:] = 0  # one visible landmark: the box
    assert jitter.face_size(frame) == pytest.approx(100. / 1.25)


def test_exact_clips_keep_their_boxes():
    jitter = TRANSFORMS.build(dict(type='DetectorBoxJitter', exact_prob=1.))
    out = jitter(make_clip(5))
    for f in out['frames']:
        assert f['bbox_center'].tolist() == [[50., 60.]]
        assert f['bbox_scale'].tolist() == [[100., 100.]]


def test_jitter_is_per_frame_and_bounded_by_the_face_size():
    np.random.seed(0)
    jitter = TRANSFORMS.build(dict(type='DetectorBoxJitter', center=5.,
                                   size=2.))
    out = jitter(make_clip())
    centres = np.concatenate([f['bbox_center'] for f in out['frames']])
    sizes = np.concatenate([f['bbox_scale'] for f in out['frames']])
    # σ = q · 5 % of 60 px <= 3 px per axis; one quality for the clip
    sd = centres.std(0)
    assert (sd > 0).all() and (sd < 3.3).all()
    assert abs(sd[0] - sd[1]) < 0.25 * sd.mean()
    assert np.abs(centres.mean(0) - [50., 60.]).max() < 0.5
    # size σ = q · 2 % of 60 px = the same 2/5 of the centre's σ
    assert sizes[:, 0].std() == pytest.approx(0.4 * sd.mean(), rel=0.2)
    assert (sizes[:, 0] == sizes[:, 1]).all()


@pytest.mark.parametrize('kwargs', [dict(center=-1.), dict(size=np.nan),
                                    dict(exact_prob=1.5)])
def test_bad_options(kwargs):
    with pytest.raises(ValueError, match='DetectorBoxJitter'):
        TRANSFORMS.build(dict(type='DetectorBoxJitter', **kwargs))


def test_needs_a_clip_with_boxes():
    jitter = TRANSFORMS.build(dict(type='DetectorBoxJitter'))
    with pytest.raises(KeyError, match='clip'):
        jitter(dict(img=np.zeros((4, 4, 3))))
    with pytest.raises(KeyError, match='GetBBoxCenterScale'):
        jitter(dict(frames=[dict(bbox=np.zeros((1, 4)))]))
