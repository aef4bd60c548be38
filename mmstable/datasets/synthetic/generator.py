"""Synthetic face videos with exact 68-point ground truth.

:class:`FaceVideoGenerator` renders one video per seed: a random identity
(:func:`~.face_model.sample_identity`) in front of a textured background,
moving smoothly (translation, in-plane rotation, scale, mild yaw and pitch)
and changing expression (mouth, smile, blinks, brows, gaze). The landmarks are
the generative truth; the *pixels* then get per-frame degradations that are
independent across frames -- sensor noise, brightness flicker and motion blur
proportional to the head's motion. An image model's per-frame predictions on
such frames jitter even where the face is still, which is what mmstable's
refiner learns to remove.

Randomness comes in separate streams per video (scene/identity, motion and
expression, pixel noise), each a ``numpy.random.default_rng`` seeded with
``(*video_key, stream)``; so the same key gives identical pixels and
landmarks, and turning the noise off changes pixels but not landmarks.

:func:`write_split` writes a split in MMPose's COCO-style face layout
(``configs/_base_/datasets/300w.py`` keypoints; fields as MMPose's
``300vw2coco.py`` writes them, plus ``video_id`` / ``frame_id`` per image as in
``docs/conventions.md`` §1).
"""
import json
import math
import os
import os.path as osp
import time
from dataclasses import asdict, dataclass
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from .face_model import (NUM_KEYPOINTS, FaceExpression, HeadPose,
                         face_landmarks_3d, project, render_face,
                         sample_identity)

SPLITS = ('train', 'val', 'test')
# (videos, frames) per split when nothing else is asked for: sized so that the
# whole demo (train image model, fine-tune refiner, evaluate) fits 15 minutes
# on 2 CPU cores.
DEFAULT_SPLIT_SIZES = dict(train=(40, 40), val=(4, 60), test=(8, 60))
FORMAT_VERSION = 1

#: Test scenarios (:class:`FaceVideoGenerator` arguments), all on the same
#: noisy camera (noise 3) so that they differ in motion only. Landmark speed
#: (mean over landmarks of the frame-to-frame displacement, % of the face
#: box's longer side; mean / 95th percentile over frames, 8 videos of 60
#: frames; read as 25-30 fps video):
#:
#: - ``still``: a nearly still face (video call, driver monitoring), the
#:   demo's original test set: 0.25 / 0.43 % (blinks and mouth mostly).
#: - ``talking``: full expressions (mouth, blinks, brows), small head
#:   motion: 0.69 / 1.1 %.
#: - ``moving``: head turns (yaw ±25°, roll ±15°, pitch ±10°), scale and
#:   translation at everyday speeds: 1.65 / 2.6 %.
#: - ``fast``: the same twice as quick, with stronger motion blur (its
#:   length follows the speed): 4.1 / 6.7 %.
PRESETS = dict(
    still=dict(motion=0.1, expression=0.5, noise=3.),
    talking=dict(motion=0.3, expression=1., noise=3.),
    moving=dict(motion=1., expression=1., noise=3., speed=0.75),
    fast=dict(motion=1., expression=1., noise=3., speed=2., blur=1.5),
)


def preset_settings(preset: str) -> dict:
    """The :class:`FaceVideoGenerator` arguments of test scenario
    ``preset`` (:data:`PRESETS`)."""
    if preset not in PRESETS:
        raise KeyError(f'Unknown synthetic video preset {preset!r}; known: '
                       f'{sorted(PRESETS)} (mmstable/datasets/synthetic/'
                       'generator.py PRESETS)')
    return dict(PRESETS[preset])


_IMWRITE_PARAMS = {
    '.jpg': [cv2.IMWRITE_JPEG_QUALITY, 95],
    '.png': [cv2.IMWRITE_PNG_COMPRESSION, 1]
}

_STREAM_SCENE, _STREAM_MOTION, _STREAM_NOISE = 0, 1, 2

SeedLike = Union[int, Sequence[int]]


class SyntheticVideo(NamedTuple):
    """``frames`` (F, H, W, 3) uint8 BGR; ``keypoints`` (F, 68, 2) float32 in
    image pixels (0-based, pixel centres at integer coordinates)."""
    frames: np.ndarray
    keypoints: np.ndarray


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f'split must be one of {SPLITS}, got {split!r}')
    return split


def video_key(seed: int, split: str, index: int) -> Tuple[int, int, int]:
    """Seed key of video ``index`` of ``split``: splits never share a key,
    hence never share an identity or a trajectory."""
    return (int(seed), SPLITS.index(check_split(split)), int(index))


@dataclass
class FaceVideoGenerator:
    """Render synthetic face videos.

    Args:
        image_size (int): frames are ``image_size`` x ``image_size``.
        face_size (tuple[float, float]): range of the face width (jaw point 0
            to 16, pixels) of a video's identity at rest.
        noise (float): strength of the per-frame sensor noise and brightness
            flicker (1: Gaussian noise with std 2-7 grey levels per video;
            0: none).
        blur (float): strength of the motion blur (1: blur length 0.6x the
            landmarks' mean frame-to-frame motion) and of the per-video
            defocus; 0: none.
        motion (float): amplitude of the head motion (0: still head).
        expression (float): amplitude of the expressions (0: neutral face).
        speed (float): tempo of the head motion: the frequencies of the
            translation, scale and rotation signals are multiplied by it
            (amplitudes unchanged), so the head moves ``speed`` times faster
            (1: the default tempo; expressions and blinks keep theirs).
    """
    image_size: int = 256
    face_size: Tuple[float, float] = (90., 130.)
    noise: float = 1.
    blur: float = 1.
    motion: float = 1.
    expression: float = 1.
    speed: float = 1.

    def __post_init__(self):
        if self.image_size < 64:
            raise ValueError(
                f'image_size must be >= 64 pixels, got {self.image_size}')
        lo, hi = self.face_size
        if not 0 < lo <= hi <= 0.7 * self.image_size:
            raise ValueError(
                f'face_size must be (lo, hi) with 0 < lo <= hi <= '
                f'0.7 * image_size = {0.7 * self.image_size:g}, got '
                f'{self.face_size}')
        for k in ('noise', 'blur', 'motion', 'expression'):
            if getattr(self, k) < 0:
                raise ValueError(f'{k} must be >= 0, got {getattr(self, k)}')
        if not self.speed > 0:
            raise ValueError(f'speed must be > 0, got {self.speed}')
        self.face_size = (float(lo), float(hi))

    @classmethod
    def from_preset(cls, preset: str, **overrides) -> 'FaceVideoGenerator':
        """The generator of a test scenario of :data:`PRESETS`, with any
        argument overridden."""
        return cls(**dict(preset_settings(preset), **overrides))

    def config(self) -> dict:
        """JSON-able parameters (stored with generated data for caching)."""
        cfg = asdict(self)
        cfg['face_size'] = list(cfg['face_size'])
        if cfg['speed'] == 1.:
            # data generated before ``speed`` existed stays valid
            del cfg['speed']
        return cfg

    # -- trajectories ---------------------------------------------------
    def sample_trajectory(self, key: SeedLike, num_frames: int):
        """Identity, per-frame poses, expressions and landmarks (F, 68, 2)
        of the video with seed ``key``; no pixels are rendered."""
        num_frames = _check_frames(num_frames)
        key = _as_key(key)
        scene = np.random.default_rng(key + (_STREAM_SCENE, ))
        rng = np.random.default_rng(key + (_STREAM_MOTION, ))
        idn = sample_identity(scene)
        n = num_frames
        half = self.image_size / 2.

        def sig(freq=(0.005, 0.025)):
            return _smooth_signal(rng, n, freq)

        def head(freq=(0.005, 0.025)):
            return _smooth_signal(rng, n, tuple(f * self.speed for f in freq))

        face_px = rng.uniform(*self.face_size)
        s0 = face_px / (2 * idn.jaw_w)
        m = self.motion
        log_scale = 0.12 * m * head()
        roll = np.radians(15.) * m * head()
        yaw = np.radians(25.) * m * head()
        pitch = np.radians(10.) * m * head()
        dx, dy = head(), head()
        e = self.expression
        mouth = np.clip(1.3 * sig((0.01, 0.05)) - 0.3, 0, 1) * e
        smile = np.clip(0.7 * sig((0.005, 0.03)) + 0.2, -0.3, 1) * e
        brow = np.clip(0.8 * sig((0.01, 0.04)), -0.4, 1) * e
        gaze_x, gaze_y = 0.6 * e * sig(), 0.6 * e * sig()
        blink = _blinks(rng, n) * e
        exprs = [
            FaceExpression(mouth[t], smile[t], blink[t], brow[t], gaze_x[t],
                           gaze_y[t]) for t in range(n)
        ]
        pts3d = [face_landmarks_3d(idn, x) for x in exprs]
        cx0 = half + rng.uniform(-0.1, 0.1) * half * m
        cy0 = half + rng.uniform(-0.1, 0.1) * half * m
        # translate as far as keeps every landmark inside the frame; shrink
        # the amplitude until it does (the trajectory stays smooth)
        amp = min(40., 0.3 * self.image_size) * m
        margin = 3.
        for _ in range(30):
            poses = [
                HeadPose(cx0 + amp * dx[t], cy0 + amp * dy[t],
                         s0 * math.exp(log_scale[t]), roll[t], yaw[t],
                         pitch[t]) for t in range(n)
            ]
            kpts = np.stack([project(p, q) for p, q in zip(pts3d, poses)])
            lo, hi = kpts.min(), kpts.max()
            if lo >= margin and hi <= self.image_size - 1 - margin:
                break
            if amp < 1:
                # the face itself does not fit: recentre and shrink it
                cx0 = cy0 = half
                s0 *= 0.9
            amp *= 0.8
        return idn, poses, exprs, kpts.astype(np.float32)

    # -- rendering ------------------------------------------------------
    def generate(self, key: SeedLike, num_frames: int) -> SyntheticVideo:
        """Render the video with seed ``key`` (an int or a tuple of ints,
        e.g. :func:`video_key`)."""
        key = _as_key(key)
        idn, poses, exprs, kpts = self.sample_trajectory(key, num_frames)
        scene = np.random.default_rng(key + (_STREAM_SCENE, 1))
        noise_rng = np.random.default_rng(key + (_STREAM_NOISE, ))
        size = self.image_size
        background = _background(scene, size)
        light = _light_map(scene, size)
        noise_std = scene.uniform(2., 7.) * self.noise
        defocus = scene.uniform(0., 0.8) * self.blur

        # motion blur follows the mean landmark velocity (central
        # differences), so a still face is sharp and a fast one smeared
        vel = np.gradient(kpts.astype(np.float64), axis=0).mean(1) \
            if len(kpts) > 1 else np.zeros((1, 2))
        # sensor noise: one field per video, each frame reads it at a random
        # offset and sign -- independent across frames for any model, and
        # ~10x cheaper than drawing size*size*3 normals per frame
        pad = size // 2
        noise_field = noise_rng.standard_normal(
            (size + pad, size + pad, 3), dtype=np.float32) * noise_std
        frames = np.empty((len(kpts), size, size, 3), np.uint8)
        for t, (pose, expr) in enumerate(zip(poses, exprs)):
            img = background.copy()
            mask = render_face(img, idn, expr, pose, kpts[t].astype(
                np.float64))
            shade = _face_shading(idn, pose, size)
            f = img.astype(np.float32)
            f *= (light * (1. + mask * (shade - 1.)))[..., None]
            if defocus > 0.3:
                f = cv2.GaussianBlur(f, (0, 0), defocus)
            blur_len = 0.6 * self.blur * float(np.hypot(*vel[t]))
            if blur_len >= 1.:
                f = cv2.filter2D(f, -1, _line_kernel(vel[t], blur_len))
            if self.noise > 0:
                gain = 1. + 0.03 * self.noise * noise_rng.standard_normal()
                bias = 3. * self.noise * noise_rng.standard_normal()
                oy, ox = noise_rng.integers(0, pad + 1, 2)
                sign = 1. if noise_rng.random() < 0.5 else -1.
                f = f * gain + bias
                f += sign * noise_field[oy:oy + size, ox:ox + size]
            np.clip(f, 0, 255, out=f)
            frames[t] = f.astype(np.uint8)
        return SyntheticVideo(frames, kpts)


def write_split(out_dir: str,
                split: str,
                num_videos: Optional[int] = None,
                num_frames: Optional[int] = None,
                seed: int = 0,
                generator: Optional[Union[FaceVideoGenerator, dict]] = None,
                ann_file: Optional[str] = None,
                img_prefix: str = 'images/',
                img_ext: str = '.jpg',
                video_prefix: Optional[str] = None) -> Dict:
    """Generate ``split`` into ``out_dir`` in MMPose's COCO-style layout.

    Writes ``<out_dir>/<img_prefix>/<split>_<video>/<frame><img_ext>`` and the
    annotation file ``ann_file`` (default
    ``annotations/face_landmarks_synthetic_<split>.json``, relative to
    ``out_dir``); the JSON is written last (atomically), so an interrupted run
    leaves no annotation file. Returns the JSON's ``info`` with ``ann_file``,
    ``num_images`` and ``seconds`` added.

    ``img_ext``: ``'.jpg'`` (quality 95, like 300VW's frames: ~30 KB and 1 ms
    per 256x256 frame) or ``'.png'`` (lossless: ~115 KB and ~10 ms).
    ``video_prefix``: video ids are ``<video_prefix>_<index>`` (default the
    split's name; a test scenario's preset adds its name, ``test_moving``).
    """
    check_split(split)
    if img_ext not in _IMWRITE_PARAMS:
        raise ValueError(f'img_ext must be one of {tuple(_IMWRITE_PARAMS)}, '
                         f'got {img_ext!r}')
    dv, df = DEFAULT_SPLIT_SIZES[split]
    num_videos = dv if num_videos is None else num_videos
    num_frames = df if num_frames is None else num_frames
    if int(num_videos) < 1:
        raise ValueError(f'num_videos must be >= 1, got {num_videos}')
    _check_frames(num_frames)
    if generator is None:
        generator = FaceVideoGenerator()
    elif isinstance(generator, dict):
        generator = FaceVideoGenerator(**generator)
    ann_file = ann_file or default_ann_file(split)
    t0 = time.perf_counter()

    images, annotations = [], []
    size = generator.image_size
    for v in range(int(num_videos)):
        video_id = f'{video_prefix or split}_{v:03d}'
        video = generator.generate(video_key(seed, split, v), num_frames)
        os.makedirs(osp.join(out_dir, img_prefix, video_id), exist_ok=True)
        for t in range(int(num_frames)):
            file_name = f'{video_id}/{t:06d}{img_ext}'
            path = osp.join(out_dir, img_prefix, file_name)
            if not cv2.imwrite(path, video.frames[t],
                               _IMWRITE_PARAMS[img_ext]):
                raise OSError(f'could not write {path}')
            img_id = len(images)
            images.append(
                dict(id=img_id, file_name=file_name, height=size, width=size,
                     video_id=video_id, frame_id=t))
            annotations.append(_annotation(video.keypoints[t], img_id))

    info = dict(
        description='mmstable synthetic face videos (68 iBUG landmarks)',
        version=FORMAT_VERSION, split=split, seed=int(seed),
        num_videos=int(num_videos), num_frames=int(num_frames),
        img_ext=img_ext, generator=generator.config())
    return write_coco_split(out_dir, ann_file, info, images, annotations,
                            t0)


def write_coco_split(out_dir: str, ann_file: str, info: dict, images: list,
                     annotations: list, t0: float) -> Dict:
    """Write a split's MMPose COCO-style annotation file atomically (last,
    so an interrupted run leaves none); returns ``info`` with
    ``ann_file``, ``num_images`` and ``seconds`` since ``t0``
    (``time.perf_counter()``)."""
    data = dict(info=info, images=images, annotations=annotations,
                categories=[dict(supercategory='person', id=1, name='face',
                                 keypoints=[], skeleton=[])])
    path = osp.join(out_dir, ann_file)
    os.makedirs(osp.dirname(path), exist_ok=True)
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'w') as f:
        json.dump(data, f)
    os.replace(tmp, path)
    return dict(info, ann_file=path, num_images=len(images),
                seconds=time.perf_counter() - t0)


def demo_refiner_data_options(data_root: str) -> List[str]:
    """``--cfg-options`` pointing ``configs/demo/synthetic_jitter.py`` (and
    the configs built on it) at ``data_root``: its training set is a
    ConcatDataset of pseudo-clips of the training images (0) and the four
    presets' training videos (1-4); its test set the test videos."""
    return [
        f'train_dataloader.dataset.datasets.0.dataset.data_root={data_root}',
        *(f'train_dataloader.dataset.datasets.{i}.data_root={data_root}'
          for i in range(1, 1 + len(PRESETS))),
        f'test_dataloader.dataset.data_root={data_root}'
    ]


def default_ann_file(split: str, preset: Optional[str] = None) -> str:
    """``annotations/face_landmarks_synthetic_<split>[_<preset>].json``."""
    name = check_split(split)
    if preset is not None:
        preset_settings(preset)  # validates
        name = f'{name}_{preset}'
    return f'annotations/face_landmarks_synthetic_{name}.json'


def _annotation(kpts: np.ndarray, img_id: int) -> dict:
    """COCO-style annotation as MMPose's ``300vw2coco.py`` writes it (tight
    landmark box centre, ``scale = ceil(max(w, h)) / 200``) plus ``bbox``
    (x, y, w, h), the square box that centre and scale describe, as in the
    300W json. MMPose's ``GetBBoxCenterScale`` enlarges it by 1.25."""
    x0, y0 = kpts.min(0).tolist()
    x1, y1 = kpts.max(0).tolist()
    w, h = x1 - x0, y1 - y0
    scale = math.ceil(max(w, h)) / 200.
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    side = scale * 200.
    flat = np.concatenate([kpts, np.ones((len(kpts), 1), kpts.dtype)], 1)
    return dict(
        id=img_id, image_id=img_id, category_id=1, iscrowd=0,
        num_keypoints=NUM_KEYPOINTS,
        keypoints=[round(float(v), 3) for v in flat.ravel()],
        bbox=[cx - side / 2, cy - side / 2, side, side], area=w * h,
        center=[cx, cy], scale=scale, segmentation=[])


def _check_frames(num_frames) -> int:
    if int(num_frames) < 1:
        raise ValueError(f'num_frames must be >= 1, got {num_frames}')
    return int(num_frames)


def _as_key(key: SeedLike) -> Tuple[int, ...]:
    key = (key, ) if np.isscalar(key) else tuple(key)
    if not key or any(int(k) < 0 for k in key):
        raise ValueError(f'seed must be a non-negative int or a tuple of '
                         f'them, got {key!r}')
    return tuple(int(k) for k in key)


def _smooth_signal(rng: np.random.Generator, n: int,
                   freq: Tuple[float, float]) -> np.ndarray:
    """A sum of 3 sinusoids in [-1, 1]; with frequencies <= f cycles per
    frame its frame-to-frame change is at most 2*pi*f."""
    f = rng.uniform(*freq, 3)
    phase = rng.uniform(0, 2 * np.pi, 3)
    a = rng.uniform(0.3, 1., 3)
    a /= a.sum()
    t = np.arange(n)
    return (a[:, None] * np.sin(2 * np.pi * f[:, None] * t +
                                phase[:, None])).sum(0)


def _blinks(rng: np.random.Generator, n: int) -> np.ndarray:
    """Blink profile in [0, 1]: Gaussian pulses every 20-80 frames."""
    t = np.arange(n, dtype=np.float64)
    out = np.zeros(n)
    t0 = rng.uniform(0, 30)
    while t0 < n + 5:
        out = np.maximum(out, np.exp(-((t - t0) / 1.4)**2))
        t0 += rng.uniform(20, 80)
    return out


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A cluttered, textured background: smooth colour fields, mid-frequency
    texture, random shapes and lines (so the face is not the only edge)."""
    base = rng.uniform(30, 225, (4, 4, 3)).astype(np.float32)
    base = 0.6 * base + 0.4 * base.mean(-1, keepdims=True)  # less garish
    base = cv2.resize(base, (size, size), interpolation=cv2.INTER_CUBIC)
    mid = cv2.resize(
        rng.standard_normal((24, 24, 3)).astype(np.float32), (size, size),
        interpolation=cv2.INTER_LINEAR) * rng.uniform(5, 25)
    fine = rng.standard_normal((size, size, 1)).astype(np.float32) * \
        rng.uniform(0, 8)
    img = np.clip(base + mid + fine, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(6, 16))):
        color = tuple(float(c) for c in rng.uniform(0, 255, 3))
        kind = rng.integers(3)
        p = rng.uniform(-0.1, 1.1, 2) * size
        if kind == 0:
            q = p + rng.uniform(-0.4, 0.4, 2) * size
            cv2.rectangle(img, tuple(int(v) for v in p),
                          tuple(int(v) for v in q), color,
                          -1 if rng.random() < 0.6 else 2)
        elif kind == 1:
            cv2.circle(img, tuple(int(v) for v in p),
                       int(rng.uniform(0.03, 0.2) * size), color,
                       -1 if rng.random() < 0.6 else 2, cv2.LINE_AA)
        else:
            q = p + rng.uniform(-0.8, 0.8, 2) * size
            cv2.line(img, tuple(int(v) for v in p), tuple(int(v) for v in q),
                     color, int(rng.integers(1, 5)), cv2.LINE_AA)
    return cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 1.5))


def _light_map(rng: np.random.Generator, size: int) -> np.ndarray:
    """Global illumination: brightness times a linear gradient, (H, W)."""
    d = rng.standard_normal(2)
    d /= np.linalg.norm(d) + 1e-9
    g = rng.uniform(0., 0.35)
    ramp = (np.arange(size, dtype=np.float32) / size - 0.5)
    grad = d[0] * ramp[None, :] + d[1] * ramp[:, None]
    return (rng.uniform(0.75, 1.15) * (1 + g * grad)).astype(np.float32)


def _face_shading(idn, pose: HeadPose, size: int) -> np.ndarray:
    """Lambertian shading of an ellipsoidal head under the identity's light,
    (H, W); the caller applies it inside the head mask only."""
    centre = project(
        np.array([[0., idn.ear_y + (idn.jaw_h - idn.top_h) / 2, 0.]]),
        pose)[0]
    ax = idn.jaw_w * pose.scale * 1.05
    ay = (idn.jaw_h + idn.top_h) / 2 * pose.scale * 1.05
    g = np.arange(size, dtype=np.float32)
    dx, dy = g[None, :] - centre[0], g[:, None] - centre[1]
    c, s = math.cos(pose.roll), math.sin(pose.roll)
    u = (dx * c + dy * s) / ax
    v = (-dx * s + dy * c) / ay
    nz = np.sqrt(np.clip(1. - u * u - v * v, 0., 1.))
    # the light is fixed in the world; express it in the head frame
    lx, ly, lz = idn.light_dir
    cy, sy = math.cos(pose.yaw), math.sin(pose.yaw)
    lx, lz = lx * cy - lz * sy, lx * sy + lz * cy
    lam = np.clip(u * lx + v * ly + nz * lz, 0., 1.)
    k = idn.light_strength
    return (1. - k) + k * 1.15 * lam


def _line_kernel(direction: np.ndarray, length: float) -> np.ndarray:
    """Normalised motion-blur kernel: an anti-aliased line of ``length``
    pixels along ``direction``, centred (so blur does not shift features)."""
    half = int(math.ceil(length / 2))
    k = np.zeros((2 * half + 1, 2 * half + 1), np.float32)
    d = np.asarray(direction, np.float64)
    d = d / (np.linalg.norm(d) + 1e-9) * (length / 2)
    c = np.array([half, half], np.float64)
    p, q = np.round((c - d) * 16).astype(int), np.round((c + d) * 16).astype(
        int)
    cv2.line(k, tuple(int(v) for v in p), tuple(int(v) for v in q), 1., 1,
             cv2.LINE_AA, 4)
    if k.sum() <= 0:
        k[half, half] = 1.
    return k / k.sum()
