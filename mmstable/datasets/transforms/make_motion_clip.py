# Copyright (c) mmstable authors. All rights reserved.
from typing import Dict, List, Sequence

import numpy as np

from mmpose.registry import TRANSFORMS
from .make_shifted_clip import MakeShiftedClip


def _check_range(value, name: str, low_bound: float = 0.) -> tuple:
    if (not isinstance(value, (tuple, list)) or len(value) != 2
            or not all(np.isfinite(v) for v in value)
            or not low_bound <= value[0] <= value[1]):
        raise ValueError(
            f'MakeMotionClip.{name} must be a pair (low, high) with '
            f'{low_bound} <= low <= high, got {value!r}; fix the '
            'MakeMotionClip entry of the train pipeline.')
    return float(value[0]), float(value[1])


def _check_number(value, name: str, upper: float = np.inf) -> float:
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not 0 <= value <= upper):
        raise ValueError(
            f'MakeMotionClip.{name} must be a number in [0, {upper}], got '
            f'{value!r}; fix the MakeMotionClip entry of the train pipeline.')
    return float(value)


@TRANSFORMS.register_module()
class MakeMotionClip(MakeShiftedClip):
    """Make a pseudo video clip of T frames with realistic head motion and
    detector-like crops from one image.

    Per clip one smooth trajectory is drawn: a translation with a random
    initial direction and a speed drawn log-uniformly from ``speed``, plus an
    in-plane rotation rate and a scale rate, all integrated from a random
    acceleration process (per frame the velocity changes by a Gaussian of
    ``acceleration`` times the speed). With probability ``still_prob`` the
    clip is near-still instead (speed uniform in ``[0, still_speed]``, no
    rotation or scale change). The trajectory is one of two kinds:

    - **face motion** (probability ``face_motion_prob``): the face moves in
      the frame's image: frame t is the source warped by the similarity
      ``face_warp`` ``F_t`` (about the box centre; image and keypoints), and
      the detector box follows the face's position ``crop_lag`` frames
      earlier (a streaming tracker crops frame t from frame t - 1's
      landmarks; ``crop_lag=0`` a perfect detector). The box stays axis
      aligned. The refiner is told the crop, not ``F_t``: it must follow the
      face from the heatmaps.
    - **crop motion**: the face stays still in the source and the crop moves
      along the trajectory (translation and scale; the box stays axis
      aligned as a detector's, so MMPose's rotation-free input -> image
      mapping of the predictions stays exact); the refiner is told all of it
      through ``crop_affine``, so it can undo it exactly.

    Every frame's box then gets **detector jitter**: independent Gaussian
    offsets of its centre (σ up to ``jitter_center`` % of the face size per
    axis) and of its size (σ up to ``jitter_size`` %); the clip's detector
    quality ``q`` is uniform in [0, 1] and both σ are ``q`` times their
    bound, so some clips have nearly exact boxes. Units: the face
    size is ``sqrt(w · h)`` of the visible GT landmarks' extent (the
    normaliser of NMF), or ``sqrt(bbox_w · bbox_h) / 1.25`` (the box of
    ``GetBBoxCenterScale``'s default padding) with fewer than two; speeds
    are % of the face size per frame (at 25-30 fps a moving head is
    ~0.5-3 %, a fast one up to ~8 %).

    Each frame carries ``image_velocity``, the face's velocity relative to
    the camera in image px per frame (face motion: its velocity in the image;
    crop motion, read as a camera moving over a still face: minus the crop's
    velocity; jitter excluded), from which ``VideoDegradation`` draws
    speed-tied motion blur (``motion_blur=dict(prob=..., exposure=...)``).

    Use it where :class:`MakeShiftedClip` goes (after the clip-level
    augmentations, before :class:`ApplyToFrames`), with
    :class:`ShiftedTopdownAffine` per frame (which applies ``face_warp`` and
    sets ``crop_affine``, the frame's image -> input transform that
    :class:`PackClipInputs` packs).

    Required Keys: clip_len, bbox_center, bbox_scale, keypoints (optional),
    keypoints_visible (optional), bbox_rotation (optional), clip_seed
    (optional; as :class:`MakeShiftedClip`).

    Added Keys: frames (list[dict]); per frame: frame_id, bbox_center (1, 2),
    bbox_scale (1, 2), bbox_rotation (1,) (the frame's detector box, in the
    frame's image), face_warp ((2, 3) source -> frame image; face-motion
    clips only), image_velocity ((2,) image px per frame), motion_kind
    (``'still'`` / ``'moving'``, ``'+face'`` or ``'+crop'``).

    Args:
        still_prob (float): Probability of a near-still clip. Defaults to 0.3
            (on the demo 0.3 and 0.5 score within 1-2 % of each other).
        speed (tuple[float, float]): Range of a moving clip's speed, % of the
            face size per frame, drawn log-uniformly (low > 0). Defaults to
            ``(0.5, 8.0)``.
        still_speed (float): Highest speed of a near-still clip, % of the
            face size per frame. Defaults to 0.25.
        acceleration (float): Std of the per-frame velocity change, as a
            fraction of the clip's speed (translation) or of the rate bounds
            (rotation, scale). Defaults to 0.25.
        rotation_speed (float): Bound of the in-plane rotation rate of the
            face (face-motion clips), degrees per frame (uniform). Defaults
            to 2.0.
        scale_speed (float): Bound of the scale rate, log-scale per frame
            (uniform; 0.01 = 1 % per frame). Defaults to 0.01.
        face_motion_prob (float): Probability that a clip's trajectory moves
            the face (untold) rather than the crop (told). Defaults to 0.5.
        crop_lag (int): Frames by which a face-motion clip's box lags the
            face. Defaults to 1.
        jitter_center (float): Highest σ of the box centre jitter per axis,
            % of the face size. Defaults to 3.0.
        jitter_size (float): Highest σ of the box size jitter, % of the
            face size. Defaults to 3.0.
    """

    def __init__(self,
                 still_prob: float = 0.3,
                 speed: Sequence[float] = (0.5, 8.0),
                 still_speed: float = 0.25,
                 acceleration: float = 0.25,
                 rotation_speed: float = 2.0,
                 scale_speed: float = 0.01,
                 face_motion_prob: float = 0.5,
                 crop_lag: int = 1,
                 jitter_center: float = 3.0,
                 jitter_size: float = 3.0) -> None:
        super().__init__(max_shift=0.)
        self.still_prob = _check_number(still_prob, 'still_prob', 1.)
        self.speed = _check_range(speed, 'speed')
        if self.speed[0] <= 0:
            raise ValueError(
                'MakeMotionClip.speed: the low end must be > 0 (speeds are '
                f'drawn log-uniformly), got {speed!r}; use still_prob and '
                'still_speed for slow clips.')
        self.still_speed = _check_number(still_speed, 'still_speed')
        self.acceleration = _check_number(acceleration, 'acceleration')
        self.rotation_speed = _check_number(rotation_speed, 'rotation_speed',
                                            45.)
        self.scale_speed = _check_number(scale_speed, 'scale_speed', 1.)
        self.face_motion_prob = _check_number(face_motion_prob,
                                              'face_motion_prob', 1.)
        if isinstance(crop_lag, bool) or not isinstance(
                crop_lag, int) or crop_lag < 0:
            raise ValueError('MakeMotionClip.crop_lag must be an int >= 0 '
                             f'(frames), got {crop_lag!r}')
        self.crop_lag = crop_lag
        self.jitter_center = _check_number(jitter_center, 'jitter_center')
        self.jitter_size = _check_number(jitter_size, 'jitter_size')

    @staticmethod
    def face_size(results: Dict) -> float:
        """``sqrt(w · h)`` of the visible GT landmarks' extent, in image px
        (see the class docstring for the fallback)."""
        kpts = results.get('keypoints')
        if np.ndim(kpts) == 3:
            pts = np.asarray(kpts[0], np.float64)
            vis = results.get('keypoints_visible')
            if vis is not None:
                pts = pts[np.asarray(vis).reshape(-1)[:len(pts)] > 0]
            if len(pts) >= 2:
                w, h = pts.max(0) - pts.min(0)
                if w * h > 0:
                    return float(np.sqrt(w * h))
        return float(np.sqrt(np.prod(results['bbox_scale'][0]))) / 1.25

    @staticmethod
    def _integrate(rng, clip_len: int, v0: np.ndarray,
                   accel_std: float) -> np.ndarray:
        """Positions (T, d) from 0 with initial velocity ``v0`` (d,) and a
        random acceleration of std ``accel_std`` per frame."""
        d = len(v0)
        accel = rng.normal(0., 1., size=(max(clip_len - 2, 0), d)) * accel_std
        v = v0[None] + np.concatenate([np.zeros((1, d)),
                                       np.cumsum(accel, axis=0)])
        return np.concatenate([np.zeros((1, d)),
                               np.cumsum(v[:clip_len - 1], axis=0)])

    def sample_motion(self, clip_len: int, face_size: float,
                      seed=None) -> Dict:
        """One clip's trajectory: ``kind``, ``translation`` (T, 2) image px,
        ``rotation`` (T,) degrees, ``log_scale`` (T,), and the per-frame
        jitter ``center_jitter`` (T, 2) px and ``size_jitter`` (T,) px, and
        ``quality``, the clip's jitter scale in [0, 1]."""
        rng = np.random if seed is None else np.random.default_rng(seed)
        still = rng.random() < self.still_prob
        face = rng.random() < self.face_motion_prob
        if still:
            speed = rng.uniform(0., self.still_speed)
            rot_rate = scale_rate = 0.
        else:
            speed = np.exp(rng.uniform(*np.log(self.speed)))
            rot_rate = rng.uniform(-self.rotation_speed, self.rotation_speed)
            scale_rate = rng.uniform(-self.scale_speed, self.scale_speed)
        direction = rng.uniform(0., 2 * np.pi)
        px_speed = speed * face_size / 100.
        translation = self._integrate(
            rng, clip_len, px_speed * np.array(
                [np.cos(direction), np.sin(direction)]),
            self.acceleration * px_speed)
        rotation = self._integrate(rng, clip_len, np.array([rot_rate]),
                                   0. if still else self.acceleration *
                                   self.rotation_speed)[:, 0]
        log_scale = self._integrate(rng, clip_len, np.array([scale_rate]),
                                    0. if still else self.acceleration *
                                    self.scale_speed)[:, 0]
        quality = rng.uniform(0., 1.)
        center_jitter = rng.normal(0., 1., size=(clip_len, 2)) * (
            quality * self.jitter_center * face_size / 100.)
        size_jitter = rng.normal(0., 1., size=clip_len) * (
            quality * self.jitter_size * face_size / 100.)
        kind = ('still' if still else 'moving') + ('+face'
                                                   if face else '+crop')
        return dict(kind=kind, translation=translation, rotation=rotation,
                    log_scale=log_scale, center_jitter=center_jitter,
                    size_jitter=size_jitter, quality=quality)

    @staticmethod
    def similarity(center: np.ndarray, translation: np.ndarray,
                   rotation: float, log_scale: float) -> np.ndarray:
        """The 2x3 similarity ``x -> center + translation + e^log_scale
        R(rotation) (x - center)`` (R counter-clockwise in x-right, y-down
        pixel axes for rotation > 0, i.e. clockwise on screen)."""
        a = np.deg2rad(rotation)
        linear = np.exp(log_scale) * np.array([[np.cos(a), -np.sin(a)],
                                               [np.sin(a), np.cos(a)]])
        return np.concatenate(
            [linear, (center + translation - linear @ center)[:, None]],
            axis=1)

    def frame_updates(self, results: Dict, clip_len: int) -> List[Dict]:
        center0 = np.asarray(results['bbox_center'][0], np.float64)
        scale0 = np.asarray(results['bbox_scale'][0], np.float64)
        rot0 = float(results['bbox_rotation'][0]) \
            if 'bbox_rotation' in results else 0.
        motion = self.sample_motion(clip_len, self.face_size(results),
                                    results.get('clip_seed'))
        trans, rot, log_scale = (motion['translation'], motion['rotation'],
                                 motion['log_scale'])
        face = motion['kind'].endswith('+face')
        velocity = np.diff(trans, axis=0)
        velocity = np.concatenate([velocity[:1], velocity]) \
            if clip_len > 1 else np.zeros((1, 2))
        updates = []
        for t in range(clip_len):
            frame = dict(motion_kind=motion['kind'])
            if face:
                lag = max(t - self.crop_lag, 0)
                frame['face_warp'] = self.similarity(center0, trans[t],
                                                     rot[t], log_scale[t])
                center = center0 + trans[lag]
                scale = scale0 * np.exp(log_scale[lag])
                rotation = rot0
                frame['image_velocity'] = velocity[t].astype(np.float32)
            else:
                center = center0 + trans[t]
                scale = scale0 * np.exp(log_scale[t])
                rotation = rot0
                frame['image_velocity'] = (-velocity[t]).astype(np.float32)
            frame['bbox_center'] = (center + motion['center_jitter'][t]
                                    )[None].astype(np.float32)
            frame['bbox_scale'] = np.maximum(
                scale + motion['size_jitter'][t], 1.)[None].astype(np.float32)
            frame['bbox_rotation'] = np.array([rotation], np.float32)
            updates.append(frame)
        return updates

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(still_prob={self.still_prob}, '
                f'speed={self.speed}, still_speed={self.still_speed}, '
                f'acceleration={self.acceleration}, '
                f'rotation_speed={self.rotation_speed}, '
                f'scale_speed={self.scale_speed}, '
                f'face_motion_prob={self.face_motion_prob}, '
                f'crop_lag={self.crop_lag}, '
                f'jitter_center={self.jitter_center}, '
                f'jitter_size={self.jitter_size})')
