"""Real-textured face videos with exact ground truth.

A labelled photo (landmarks ``L`` (68, 2), the teachers' mean) is animated
with the head motion and expression of the synthetic generator
(:meth:`FaceVideoGenerator.sample_trajectory`, presets
:data:`~mmstable.datasets.synthetic.PRESETS`):

1. the synthetic trajectory ``P_t`` (68, 2) is split into a similarity
   ``S_t`` (Umeyama fit of the identity's neutral frontal shape ``R`` to
   ``P_t``: translation, roll, scale) and a non-rigid residual
   ``d_t = S_t^-1(P_t) - R`` (expression, and the foreshortening of yaw and
   pitch);
2. the photo's shape is brought onto ``R`` by the similarity ``A`` (Umeyama
   ``L -> R``): ``Q = A(L)``; the frame's landmarks are
   ``K_t = S_t(Q + d_t)``;
3. the frame's pixels come from the photo by a **piecewise-affine warp**:
   the Delaunay triangulation (in the frame) of ``K_t`` plus points on the
   frame's border, whose photo points are ``L`` and ``A^-1 S_t^-1(border)``.
   Each triangle's affine map sends its three frame vertices exactly onto
   their photo points, so the pixel at ``K_t[k]`` shows what the photo shows
   at ``L[k]``: the labels ``K_t`` are exact for the warped pixels (as exact
   as the photo's labels; no teacher runs on the frames).

The frames then get the synthetic generator's per-frame degradations (sensor
noise read from one field at random offsets, brightness flicker, motion blur
along the landmarks' velocity, per-video defocus; JPEG when written). All
randomness is seeded by the video key: same key, same pixels.

Coordinates: image pixels, 0-based, pixel centres at integer coordinates
(``docs/conventions.md`` §2).
"""
import math
from typing import Optional, Tuple

import cv2
import numpy as np
from scipy.spatial import Delaunay

from ..synthetic.face_model import (FaceExpression, HeadPose,
                                    face_landmarks_3d, project)
from ..synthetic.generator import (FaceVideoGenerator, SyntheticVideo,
                                   _as_key, _line_kernel)

_STREAM_DEGRADE = 7


def fit_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (Umeyama, no reflection) with
    ``dst ≈ M @ [src, 1]``; returns M (2, 3)."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    ms, md = src.mean(0), dst.mean(0)
    s, d = src - ms, dst - md
    var = (s**2).sum()
    if var <= 0:
        raise ValueError('fit_similarity: the source points coincide')
    u, sig, vt = np.linalg.svd(d.T @ s)
    e = np.diag([1., np.sign(np.linalg.det(u @ vt)) or 1.])
    rot = u @ e @ vt
    scale = float((sig * np.diag(e)).sum() / var)
    lin = scale * rot
    return np.concatenate([lin, (md - lin @ ms)[:, None]], 1)


def apply_affine(mat: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """``mat`` (2, 3) applied to points (..., 2)."""
    pts = np.asarray(pts, np.float64)
    return pts @ mat[:, :2].T + mat[:, 2]


def invert_affine(mat: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(np.asarray(mat, np.float64))


def border_points(width: int, height: int, per_side: int = 4) -> np.ndarray:
    """Points on a rectangle half a pixel outside the frame (so every pixel
    centre lies inside their hull), ``per_side`` intervals per side."""
    x0, y0, x1, y1 = -1., -1., float(width), float(height)
    t = np.linspace(0., 1., per_side + 1)[:-1]
    top = np.stack([x0 + t * (x1 - x0), np.full_like(t, y0)], 1)
    right = np.stack([np.full_like(t, x1), y0 + t * (y1 - y0)], 1)
    bottom = np.stack([x1 - t * (x1 - x0), np.full_like(t, y1)], 1)
    left = np.stack([np.full_like(t, x0), y1 - t * (y1 - y0)], 1)
    return np.concatenate([top, right, bottom, left])


def piecewise_affine_warp(image: np.ndarray, src_pts: np.ndarray,
                          dst_pts: np.ndarray,
                          out_size: Tuple[int, int]) -> np.ndarray:
    """Warp ``image`` so that ``src_pts[i]`` lands on ``dst_pts[i]``.

    The output (``out_size`` = (W, H)) is triangulated by Delaunay on
    ``dst_pts``, which must enclose every output pixel centre (add
    :func:`border_points`); inside each triangle the map output -> image is
    the affine map of its three vertex pairs, sampled bilinearly (the photo's
    edge pixels repeated: a mirrored border would copy facial features).
    """
    src_pts = np.asarray(src_pts, np.float64)
    dst_pts = np.asarray(dst_pts, np.float64)
    if src_pts.shape != dst_pts.shape or src_pts.ndim != 2 or \
            src_pts.shape[1] != 2:
        raise ValueError(f'piecewise_affine_warp: expected two (P, 2) point '
                         f'arrays, found {src_pts.shape} and '
                         f'{dst_pts.shape}')
    w, h = out_size
    tri = Delaunay(dst_pts)
    simplices = tri.simplices
    # the affine map of every triangle, output -> image: solve
    # [x y 1] @ M.T = src for its three vertices
    ones = np.ones((len(simplices), 3, 1))
    dst_h = np.concatenate([dst_pts[simplices], ones], 2)  # (T, 3, 3)
    mats = np.linalg.solve(dst_h, src_pts[simplices])  # (T, 3, 2)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    grid = np.stack([xs.ravel(), ys.ravel()], 1)
    which = tri.find_simplex(grid)
    if (which < 0).any():
        raise ValueError('piecewise_affine_warp: dst_pts do not enclose the '
                         'output frame (add border_points)')
    m = mats[which]  # (N, 3, 2)
    mx = grid[:, 0] * m[:, 0, 0] + grid[:, 1] * m[:, 1, 0] + m[:, 2, 0]
    my = grid[:, 0] * m[:, 0, 1] + grid[:, 1] * m[:, 1, 1] + m[:, 2, 1]
    return cv2.remap(image, mx.reshape(h, w).astype(np.float32),
                     my.reshape(h, w).astype(np.float32), cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def _prepare_photo(image: np.ndarray, label: np.ndarray,
                   target_width: float) -> Tuple[np.ndarray, np.ndarray]:
    """Crop the photo around the face (4x its landmark box) and shrink it
    when its face is much larger than the frame's (no aliasing); returns
    the crop and the label in its pixels."""
    label = np.asarray(label, np.float64)
    lo, hi = label.min(0), label.max(0)
    c, side = (lo + hi) / 2, float((hi - lo).max()) * 4.
    x0 = int(max(0, math.floor(c[0] - side / 2)))
    y0 = int(max(0, math.floor(c[1] - side / 2)))
    x1 = int(min(image.shape[1], math.ceil(c[0] + side / 2)))
    y1 = int(min(image.shape[0], math.ceil(c[1] + side / 2)))
    crop = image[y0:y1, x0:x1]
    label = label - (x0, y0)
    width = float(np.linalg.norm(label[16] - label[0]))
    f = 1.5 * target_width / max(width, 1.)
    if f < 1:
        crop = cv2.resize(crop, None, fx=f, fy=f,
                          interpolation=cv2.INTER_AREA)
        # pixel centres at integer coordinates: x' = (x + .5) f - .5
        label = (label + .5) * f - .5
    return crop, label


def face_trajectory(generator: FaceVideoGenerator, key, num_frames: int,
                    label: np.ndarray
                    ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(K, S, A)``: the frame landmarks (F, 68, 2) of the photo shape
    ``label`` animated by the trajectory of video ``key``, the per-frame
    head similarities (F, 2, 3) and ``A`` (2, 3), photo -> reference."""
    idn, poses, _, kpts = generator.sample_trajectory(key, num_frames)
    half = generator.image_size / 2.
    ref = project(face_landmarks_3d(idn, FaceExpression()),
                  HeadPose(half, half, float(np.mean([p.scale
                                                      for p in poses]))))
    a = fit_similarity(label, ref)
    q = apply_affine(a, label)
    out, sims = [], []
    for p in kpts.astype(np.float64):
        s = fit_similarity(ref, p)
        d = apply_affine(invert_affine(s), p) - ref
        out.append(apply_affine(s, q + d))
        sims.append(s)
    return np.stack(out), np.stack(sims), a


def animate_photo(image: np.ndarray, label: np.ndarray,
                  generator: FaceVideoGenerator, key, num_frames: int,
                  degrade: bool = True,
                  frame_size: Optional[Tuple[int, int]] = None
                  ) -> SyntheticVideo:
    """The real-textured video of ``image`` (H, W, 3) BGR uint8 with
    landmarks ``label`` (68, 2), moving as the synthetic video ``key``.

    Returns frames (F, S, S, 3) and their exact landmarks (F, 68, 2), S =
    ``generator.image_size``. ``degrade=False``: the clean warp.
    ``frame_size`` (W, H), each >= S: a larger frame (e.g. a 640x360
    webcam's), the generator's S x S square at its centre.
    """
    key = _as_key(key)
    size = generator.image_size
    fw, fh = frame_size or (size, size)
    if fw < size or fh < size:
        raise ValueError(f'frame_size: expected (W, H) >= the generator\'s '
                         f'image_size {size}, found {frame_size}')
    offset = np.array([(fw - size) / 2., (fh - size) / 2.])
    idn_w = float(np.mean(generator.face_size))
    photo, lab = _prepare_photo(image, label, idn_w)
    kpts, sims, a = face_trajectory(generator, key, num_frames, lab)
    kpts = kpts + offset
    border = border_points(fw, fh)
    a_inv = invert_affine(a)
    frames = np.empty((num_frames, fh, fw, 3), np.uint8)
    if photo.ndim == 2:
        photo = cv2.cvtColor(photo, cv2.COLOR_GRAY2BGR)
    for t in range(num_frames):
        photo_border = apply_affine(
            a_inv, apply_affine(invert_affine(sims[t]), border - offset))
        frames[t] = piecewise_affine_warp(
            photo, np.concatenate([lab, photo_border]),
            np.concatenate([kpts[t], border]), (fw, fh))
    if degrade:
        frames = degrade_frames(frames, kpts, key, generator.noise,
                                generator.blur)
    return SyntheticVideo(frames, kpts.astype(np.float32))


def degrade_frames(frames: np.ndarray, kpts: np.ndarray, key,
                   noise: float = 1., blur: float = 1.) -> np.ndarray:
    """The synthetic generator's per-frame camera: per-video defocus and
    noise level; per frame motion blur along the landmarks' mean velocity
    (0.6 x ``blur`` x speed pixels), gain / bias flicker and sensor noise
    read from one field at a random offset and sign. Seeded by ``key``."""
    rng = np.random.default_rng(_as_key(key) + (_STREAM_DEGRADE, ))
    n, h, w = frames.shape[:3]
    noise_std = rng.uniform(2., 7.) * noise
    defocus = rng.uniform(0., 0.8) * blur
    vel = np.gradient(kpts.astype(np.float64), axis=0).mean(1) \
        if n > 1 else np.zeros((1, 2))
    pad = max(h, w) // 2
    field = rng.standard_normal((h + pad, w + pad, 3),
                                dtype=np.float32) * noise_std
    out = np.empty_like(frames)
    for t in range(n):
        f = frames[t].astype(np.float32)
        if defocus > 0.3:
            f = cv2.GaussianBlur(f, (0, 0), defocus)
        blur_len = 0.6 * blur * float(np.hypot(*vel[t]))
        if blur_len >= 1.:
            f = cv2.filter2D(f, -1, _line_kernel(vel[t], blur_len))
        if noise > 0:
            gain = 1. + 0.03 * noise * rng.standard_normal()
            bias = 3. * noise * rng.standard_normal()
            oy, ox = rng.integers(0, pad + 1, 2)
            sign = 1. if rng.random() < 0.5 else -1.
            f = f * gain + bias + sign * field[oy:oy + h, ox:ox + w]
        out[t] = np.clip(f, 0, 255).astype(np.uint8)
    return out
