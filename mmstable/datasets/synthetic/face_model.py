"""A parametric 68-landmark face (300W / iBUG layout) and its renderer.

The face lives in a 3-D *face frame*: x to the image right, y down, z towards
the camera, in *face units* (the jaw is about 1 unit wide, the eye line is at
y = 0). :func:`face_landmarks_3d` places the 68 iBUG points for an identity
(:class:`FaceIdentity`) and an expression (:class:`FaceExpression`);
:func:`project` maps face-frame points to image pixels for a head pose
(:class:`HeadPose`: translation, scale, roll, yaw, pitch with mild
perspective); :func:`render_face` draws the face so that every visible feature
is drawn *through* the projected landmarks (splines pass through the points,
polygons have them as vertices). The landmarks are therefore the generative
ground truth, not an annotation of the picture.

Index groups (iBUG 68): jaw 0-16, right brow 17-21, left brow 22-26,
nose bridge 27-30, nose base 31-35, right eye 36-41, left eye 42-47,
outer lips 48-59, inner lips 60-67. "Right" is the subject's right, i.e. the
image left, as in 300W (``configs/_base_/datasets/300w.py`` flip pairs).
"""
from dataclasses import dataclass
from typing import Dict, Tuple

import cv2
import numpy as np

NUM_KEYPOINTS = 68

JAW = slice(0, 17)
RIGHT_BROW = slice(17, 22)
LEFT_BROW = slice(22, 27)
NOSE_BRIDGE = slice(27, 31)
NOSE_BASE = slice(31, 36)
RIGHT_EYE = slice(36, 42)
LEFT_EYE = slice(42, 48)
OUTER_LIPS = slice(48, 60)
INNER_LIPS = slice(60, 68)

# cv2 drawing with sub-pixel precision: coordinates are passed as
# round(x * 2**_SHIFT) so features sit at fractional landmark positions.
_SHIFT = 4
_ONE = 1 << _SHIFT

# Skin tones (BGR), from light to dark; identities interpolate between them.
_SKIN_TONES = np.array([[196, 224, 255], [148, 205, 255], [134, 192, 234],
                        [125, 194, 241], [105, 172, 224], [66, 134, 198],
                        [36, 85, 141], [36, 56, 92]], dtype=np.float32)
_HAIR_TONES = np.array([[20, 20, 25], [25, 40, 70], [40, 70, 120],
                        [80, 140, 190], [120, 120, 125], [30, 30, 45]],
                       dtype=np.float32)
_IRIS_TONES = np.array([[30, 50, 80], [40, 70, 110], [140, 110, 60],
                        [70, 120, 60], [35, 35, 40]], dtype=np.float32)


@dataclass
class FaceIdentity:
    """Shape and appearance of one synthetic person (face units, BGR)."""
    jaw_w: float  # half width of the jaw at ear level
    jaw_h: float  # ear level to chin
    jaw_power: float  # superellipse exponent of the jaw (2 = ellipse)
    top_h: float  # ear level to the top of the head
    ear_y: float  # y of the ear level (widest point of the head)
    eye_dx: float  # eye centre distance from the midline
    eye_w: float  # half width of an eye
    eye_h: float  # upper-lid height of an open eye
    iris_r: float
    brow_y: float  # brow height above the eye line (negative y)
    brow_arch: float
    brow_t: float  # brow thickness
    brow_in: float  # x of the inner brow end
    nose_y: float  # y of the nose base
    nose_w: float  # half width of the nose base
    nose_z: float  # protrusion of the nose tip
    mouth_y: float
    mouth_w: float  # half width of the mouth
    lip_up: float  # upper-lip thickness
    lip_lo: float  # lower-lip thickness
    hairline: float  # y of the hairline (negative: above the eyes)
    has_hair: bool
    skin: np.ndarray
    lips: np.ndarray
    hair: np.ndarray
    brow: np.ndarray
    iris: np.ndarray
    sclera: np.ndarray
    clothes: np.ndarray
    light_dir: np.ndarray  # unit 3-vector in the face frame
    light_strength: float


@dataclass
class FaceExpression:
    """Per-frame expression; 0 is neutral for every field."""
    mouth_open: float = 0.  # 0..1
    smile: float = 0.  # -0.3..1
    blink: float = 0.  # 0 (open) .. 1 (closed)
    brow_raise: float = 0.  # -0.5..1
    gaze_x: float = 0.  # -1..1, fraction of the free iris travel
    gaze_y: float = 0.


@dataclass
class HeadPose:
    """Pose of the head: ``(tx, ty)`` is the image position (pixels) of the
    head pivot, ``scale`` pixels per face unit, angles in radians."""
    tx: float
    ty: float
    scale: float
    roll: float = 0.
    yaw: float = 0.
    pitch: float = 0.


def sample_identity(rng: np.random.Generator) -> FaceIdentity:
    """Draw a random identity (shape, colours, lighting)."""
    u = rng.uniform
    t = u(0, len(_SKIN_TONES) - 1)
    i = int(t)
    skin = (_SKIN_TONES[i] * (1 - (t - i)) +
            _SKIN_TONES[min(i + 1, len(_SKIN_TONES) - 1)] * (t - i))
    skin = np.clip(skin * u(0.9, 1.1, 3), 20, 255).astype(np.float32)
    # lips: darker and redder than the skin (BGR: less blue/green)
    lips = np.clip(skin * np.array([0.55, 0.5, 0.85]) * u(0.8, 1.0) +
                   np.array([10., 5., 25.]), 0, 255).astype(np.float32)
    hair = _HAIR_TONES[rng.integers(len(_HAIR_TONES))] * u(0.8, 1.2)
    brow = np.minimum(hair, skin * 0.45)
    light = np.array([u(-0.8, 0.8), u(-0.8, 0.2), 1.0])
    return FaceIdentity(
        jaw_w=u(0.47, 0.53),
        jaw_h=u(0.58, 0.7),
        jaw_power=u(2.0, 2.7),
        top_h=u(0.72, 0.85),
        ear_y=u(0.08, 0.14),
        eye_dx=u(0.19, 0.23),
        eye_w=u(0.085, 0.1),
        eye_h=u(0.038, 0.05),
        iris_r=u(0.032, 0.038),
        brow_y=u(0.09, 0.13),
        brow_arch=u(0.015, 0.04),
        brow_t=u(0.025, 0.04),
        brow_in=u(0.05, 0.08),
        nose_y=u(0.25, 0.31),
        nose_w=u(0.075, 0.1),
        nose_z=u(0.16, 0.24),
        mouth_y=u(0.46, 0.52),
        mouth_w=u(0.14, 0.18),
        lip_up=u(0.028, 0.042),
        lip_lo=u(0.035, 0.055),
        hairline=-u(0.3, 0.42),
        has_hair=bool(rng.random() < 0.85),
        skin=skin,
        lips=lips,
        hair=np.clip(hair, 0, 255).astype(np.float32),
        brow=brow.astype(np.float32),
        iris=_IRIS_TONES[rng.integers(len(_IRIS_TONES))] * u(0.8, 1.2),
        sclera=np.array([225., 235., 240.]) * u(0.85, 1.0),
        clothes=u(20, 230, 3).astype(np.float32),
        light_dir=light / np.linalg.norm(light),
        light_strength=u(0.2, 0.5),
    )


def _surface_z(x: np.ndarray, idn: FaceIdentity) -> np.ndarray:
    """Depth of the face surface: a cylinder-ish head, sides further back."""
    r = np.clip(1 - (x / (idn.jaw_w * 1.08))**2, 0, 1)
    return 0.45 * (np.sqrt(r) - 0.6)


def _head_contour(phi: np.ndarray, idn: FaceIdentity) -> np.ndarray:
    """Head outline at angles ``phi`` (0 = subject's right ear level, pi/2 =
    chin, pi = left ear, 3pi/2 = top of head), shape (N, 2)."""
    c, s = np.cos(phi), np.sin(phi)
    p = 2. / idn.jaw_power
    jaw = s >= 0
    x = np.where(jaw, -idn.jaw_w * np.sign(c) * np.abs(c)**p,
                 -idn.jaw_w * c)
    y = np.where(jaw, idn.ear_y + idn.jaw_h * np.abs(s)**p,
                 idn.ear_y + idn.top_h * s)
    return np.stack([x, y], axis=-1)


def _jaw_angles(idn: FaceIdentity) -> np.ndarray:
    # points 0 and 16 sit a little below the eye line, above ear level
    phi0 = np.arcsin(np.clip((idn.ear_y + 0.02) / idn.top_h, 0, 1))
    return np.linspace(-phi0, np.pi + phi0, 17)


def face_landmarks_3d(idn: FaceIdentity,
                      expr: FaceExpression) -> np.ndarray:
    """The 68 iBUG landmarks in the face frame, shape (68, 3)."""
    pts = np.zeros((NUM_KEYPOINTS, 3), dtype=np.float64)
    gap = 0.12 * np.clip(expr.mouth_open, 0, 1)  # lips apart (face units)
    smile = expr.smile

    # jaw: the head contour; an open mouth drops the chin
    phi = _jaw_angles(idn)
    jaw = _head_contour(phi, idn)
    jaw[:, 1] += 0.8 * gap * np.clip(np.sin(phi), 0, 1)**2
    pts[JAW, :2] = jaw

    # brows (17 outer-right .. 21 inner-right, 22 inner-left .. 26 outer-left)
    s = np.linspace(0, 1, 5)
    outer = idn.eye_dx + idn.eye_w + 0.035
    bx = outer + (idn.brow_in - outer) * s  # from outer to inner (x > 0)
    by = (-idn.brow_y - idn.brow_arch * np.sin(np.pi * (0.35 + 0.65 * s)) -
          0.04 * expr.brow_raise)
    pts[RIGHT_BROW, 0], pts[RIGHT_BROW, 1] = -bx, by
    pts[LEFT_BROW, 0], pts[LEFT_BROW, 1] = bx[::-1], by[::-1]

    # nose bridge 27..30 (27 between the eyes, 30 the tip)
    pts[NOSE_BRIDGE, 1] = np.linspace(-0.02, idn.nose_y - 0.06, 4)
    # nose base 31..35 (31 right alar .. 33 columella .. 35 left alar)
    nx = np.linspace(-idn.nose_w, idn.nose_w, 5)
    pts[NOSE_BASE, 0] = nx
    pts[NOSE_BASE, 1] = idn.nose_y - 0.025 * (np.abs(nx) / idn.nose_w)**2

    # eyes: 36 outer-right corner, 37-38 upper lid, 39 inner corner, 40-41
    # lower lid; 42 inner-left corner, 43-44 upper, 45 outer, 46-47 lower
    opening = 1 - np.clip(expr.blink, 0, 1)
    closed_y = 0.3 * idn.eye_h
    up = closed_y - (closed_y + idn.eye_h) * opening
    lo = closed_y + (0.75 * idn.eye_h - closed_y) * opening
    ew, third = idn.eye_w, idn.eye_w / 3
    eye = np.array([[-ew, 0.], [-third, up], [third, up], [ew, 0.],
                    [third, lo], [-third, lo]])
    # the same point order serves both eyes: 36/42 are the image-left corners
    pts[RIGHT_EYE, :2] = eye + [-idn.eye_dx, 0.]
    pts[LEFT_EYE, :2] = eye + [idn.eye_dx, 0.]

    # lips: outer 48 right corner .. 51 top .. 54 left corner .. 57 bottom;
    # inner 60 right corner .. 62 top .. 64 left corner .. 66 bottom
    mw = idn.mouth_w * (1 + 0.12 * smile)
    my = idn.mouth_y
    corner_y = my - 0.035 * smile
    cupid = 0.012
    outer = np.array([
        [-mw, corner_y],
        [-0.62 * mw, my - idn.lip_up - 0.2 * idn.lip_up],
        [-0.25 * mw, my - idn.lip_up - 0.45 * idn.lip_up],
        [0., my - idn.lip_up - 0.45 * idn.lip_up + cupid],
        [0.25 * mw, my - idn.lip_up - 0.45 * idn.lip_up],
        [0.62 * mw, my - idn.lip_up - 0.2 * idn.lip_up],
        [mw, corner_y],
        [0.62 * mw, my + gap + idn.lip_lo * 0.85],
        [0.25 * mw, my + gap + idn.lip_lo * 1.05],
        [0., my + gap + idn.lip_lo * 1.1],
        [-0.25 * mw, my + gap + idn.lip_lo * 1.05],
        [-0.62 * mw, my + gap + idn.lip_lo * 0.85],
    ])
    # the outer corners pull up with a smile; soften the middle points
    outer[[1, 5], 1] -= 0.01 * smile
    outer[[7, 11], 1] -= 0.015 * smile
    iw = 0.82 * mw
    inner = np.array([
        [-iw, corner_y + 0.002],
        [-0.45 * iw, my - 0.004 - 0.008 * smile],
        [0., my - 0.002],
        [0.45 * iw, my - 0.004 - 0.008 * smile],
        [iw, corner_y + 0.002],
        [0.45 * iw, my + gap - 0.006 * smile],
        [0., my + gap],
        [-0.45 * iw, my + gap - 0.006 * smile],
    ])
    pts[OUTER_LIPS, :2] = outer
    pts[INNER_LIPS, :2] = inner

    pts[:, 2] = _surface_z(pts[:, 0], idn)
    # the nose protrudes, most at the tip
    pts[NOSE_BRIDGE, 2] += idn.nose_z * np.array([0.35, 0.6, 0.85, 1.0])
    pts[NOSE_BASE, 2] += idn.nose_z * (0.55 - 0.2 * (nx / idn.nose_w)**2)
    pts[OUTER_LIPS, 2] += 0.04
    pts[INNER_LIPS, 2] += 0.03
    pts[RIGHT_EYE, 2] -= 0.02
    pts[LEFT_EYE, 2] -= 0.02
    pts[JAW, 2] = _surface_z(pts[JAW, 0], idn) - 0.05
    return pts


def head_outline_3d(idn: FaceIdentity, expr: FaceExpression,
                    num: int = 64) -> Dict[str, np.ndarray]:
    """Face-frame polygons used only for rendering (not landmarks): the top
    of the head (from jaw point 16 over the head to jaw point 0), hair, neck
    and shoulders; each (N, 3)."""
    phi0 = -_jaw_angles(idn)[0]  # jaw landmarks span [-phi0, pi + phi0]
    phi = np.linspace(np.pi + phi0, 2 * np.pi - phi0, num + 2)[1:-1]
    head = _head_contour(phi, idn)
    head = np.concatenate([head, _surface_z(head[:, :1], idn) - 0.05], 1)

    # hair cap: top arc of the head, slightly enlarged, closed along the
    # hairline
    phi_top = np.linspace(np.pi * 0.97, np.pi * 2.03, 24)
    top = _head_contour(phi_top, idn) * [1.06, 1.0] + [0, -0.03]
    hx = np.linspace(top[-1, 0], top[0, 0], 12)
    hy = idn.hairline + 0.08 * (hx / idn.jaw_w)**2
    hair = np.concatenate([top, np.stack([hx, hy], 1)])
    hair = np.concatenate([hair, np.full((len(hair), 1), -0.2)], 1)

    chin = idn.ear_y + idn.jaw_h
    nw = 0.27
    neck = np.array([[-nw, chin - 0.25], [nw, chin - 0.25],
                     [nw * 1.05, chin + 0.45], [-nw * 1.05, chin + 0.45]])
    neck = np.concatenate([neck, np.full((4, 1), -0.35)], 1)
    sy = chin + 0.3
    shoulders = np.array([[-0.3, sy], [0.3, sy], [1.3, sy + 0.3],
                          [1.6, sy + 2.5], [-1.6, sy + 2.5],
                          [-1.3, sy + 0.3]])
    shoulders = np.concatenate([shoulders, np.full((6, 1), -0.4)], 1)
    return dict(head=head, hair=hair, neck=neck, shoulders=shoulders)


# pivot of the head rotations (inside the head, behind the nose)
_PIVOT = np.array([0., 0.2, -0.25])
_PERSPECTIVE = 0.12  # mild perspective: relative magnification per face unit


def project(points: np.ndarray, pose: HeadPose) -> np.ndarray:
    """Face-frame points (N, 3) to image pixels (N, 2) for ``pose``."""
    p = points - _PIVOT
    cy, sy = np.cos(pose.yaw), np.sin(pose.yaw)
    cp, sp = np.cos(pose.pitch), np.sin(pose.pitch)
    x = p[:, 0] * cy + p[:, 2] * sy
    z = -p[:, 0] * sy + p[:, 2] * cy
    y = p[:, 1] * cp - z * sp
    z = p[:, 1] * sp + z * cp
    f = 1. / (1. - _PERSPECTIVE * z)
    x, y = x * f, y * f
    cr, sr = np.cos(pose.roll), np.sin(pose.roll)
    u = pose.tx + pose.scale * (x * cr - y * sr)
    v = pose.ty + pose.scale * (x * sr + y * cr)
    return np.stack([u, v], axis=-1)


def catmull_rom(points: np.ndarray, samples: int = 6,
                closed: bool = False) -> np.ndarray:
    """Uniform Catmull-Rom spline through ``points`` (N, 2); the curve
    passes through every input point, so landmarks stay on the drawn line."""
    p = np.asarray(points, dtype=np.float64)
    if closed:
        ext = np.concatenate([p[-1:], p, p[:2]])
        nseg = len(p)
    else:
        ext = np.concatenate([2 * p[:1] - p[1:2], p, 2 * p[-1:] - p[-2:-1]])
        nseg = len(p) - 1
    p0, p1, p2, p3 = (ext[i:i + nseg, None] for i in range(4))
    t = (np.arange(samples) / samples)[None, :, None]
    out = 0.5 * (2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) *
                 t**2 + (3 * p1 - p0 - 3 * p2 + p3) * t**3)
    out = out.reshape(-1, 2)
    if not closed:
        out = np.concatenate([out, p[-1:]])
    return out


def _fix(points: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(points) * _ONE).astype(np.int32)


def _fill(img: np.ndarray, points: np.ndarray, color) -> None:
    cv2.fillPoly(img, [_fix(points)], _color(color), cv2.LINE_AA, _SHIFT)


def _line(img, points, color, thickness, closed=False) -> None:
    cv2.polylines(img, [_fix(points)], closed, _color(color),
                  max(1, int(round(thickness))), cv2.LINE_AA, _SHIFT)


def _color(c) -> Tuple[float, ...]:
    c = np.asarray(c, dtype=np.float64).ravel()
    return tuple(float(v) for v in c)


def _roi(points: np.ndarray, pad: float, shape) -> Tuple[int, int, int, int]:
    x0, y0 = np.floor(points.min(0) - pad).astype(int)
    x1, y1 = np.ceil(points.max(0) + pad).astype(int)
    h, w = shape[:2]
    return max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)


def _draw_clipped(img: np.ndarray, clip_poly: np.ndarray, draw) -> None:
    """Run ``draw(patch, offset)`` on a copy of the ROI around ``clip_poly``
    and keep its result only inside the polygon (iris inside the eye,
    teeth inside the mouth)."""
    x0, y0, x1, y1 = _roi(clip_poly, 2, img.shape)
    if x1 <= x0 or y1 <= y0:
        return
    patch = img[y0:y1, x0:x1]
    drawn = patch.copy()
    off = np.array([x0, y0], dtype=np.float64)
    draw(drawn, off)
    mask = np.zeros(patch.shape[:2], np.uint8)
    cv2.fillPoly(mask, [_fix(clip_poly - off)], 255, cv2.LINE_AA, _SHIFT)
    a = (mask.astype(np.float32) / 255.)[..., None]
    patch[:] = (drawn * a + patch * (1 - a)).astype(np.uint8)


def render_face(img: np.ndarray, idn: FaceIdentity, expr: FaceExpression,
                pose: HeadPose, landmarks: np.ndarray) -> np.ndarray:
    """Draw the face in place on ``img`` (H, W, 3) uint8 BGR.

    ``landmarks`` are the projected :func:`face_landmarks_3d` (68, 2); every
    feature is drawn through them. Returns the head mask (H, W) float32 in
    [0, 1] (used for face shading by the caller).
    """
    s = pose.scale
    lm = landmarks
    outline = {k: project(v, pose)
               for k, v in head_outline_3d(idn, expr).items()}

    _fill(img, outline['shoulders'], idn.clothes)
    _fill(img, outline['neck'], idn.skin * 0.62)

    # head: the dense outline, with the jaw replaced by a spline through the
    # jaw landmarks so that the drawn contour passes through points 0..16
    head_poly = np.concatenate(
        [catmull_rom(lm[JAW], samples=4), outline['head']])
    mask = np.zeros(img.shape[:2], np.uint8)
    cv2.fillPoly(mask, [_fix(head_poly)], 255, cv2.LINE_AA, _SHIFT)
    _fill(img, head_poly, idn.skin)
    if idn.has_hair:
        _fill(img, outline['hair'], idn.hair)

    # brows: a band hanging from the landmark line (landmarks near its top)
    t = idn.brow_t * s
    for sl, taper in ((RIGHT_BROW, np.linspace(0.55, 1, 5)),
                      (LEFT_BROW, np.linspace(1, 0.55, 5))):
        b = lm[sl]
        d = _normals(b)
        poly = np.concatenate([b - 0.3 * t * taper[:, None] * d,
                               (b + 0.85 * t * taper[:, None] * d)[::-1]])
        _fill(img, catmull_rom(poly, 3, closed=True), idn.brow)

    # nose: bridge highlight, alar crease and nostrils
    skin = idn.skin
    _line(img, catmull_rom(lm[NOSE_BRIDGE], 4), np.minimum(skin * 1.07, 255),
          0.016 * s)
    _line(img, catmull_rom(lm[NOSE_BASE], 4), skin * 0.6, 0.012 * s)
    for a, b in ((31, 32), (34, 33)):
        c = lm[a] * 0.55 + lm[b] * 0.45 + (lm[30] - lm[33]) * 0.25
        axes = (max(1., 0.025 * s), max(1., 0.013 * s))
        ang = np.degrees(np.arctan2(*(lm[b] - lm[a])[::-1]))
        cv2.ellipse(img, tuple(_fix(c)), tuple(int(v * _ONE) for v in axes),
                    ang, 0, 360, _color(skin * 0.35), -1, cv2.LINE_AA, _SHIFT)

    # eyes: sclera through the six points, iris clipped to it, lid lines
    openness = 1 - np.clip(expr.blink, 0, 1)
    for sl, corner_a, corner_b in ((RIGHT_EYE, 0, 3), (LEFT_EYE, 0, 3)):
        e = lm[sl]
        upper = catmull_rom(e[[0, 1, 2, 3]], 5)
        lower = catmull_rom(e[[3, 4, 5, 0]], 5)
        eye_poly = np.concatenate([upper[:-1], lower[:-1]])
        if openness > 0.15:
            _fill(img, eye_poly, idn.sclera)
            centre = e.mean(0)
            span = (e[3] - e[0]) / 2
            normal = np.array([-span[1], span[0]]) / max(
                np.linalg.norm(span), 1e-6)
            iris_c = (centre + expr.gaze_x * 0.35 * span +
                      expr.gaze_y * 0.15 * idn.eye_h * s * normal)
            r = idn.iris_r * s

            def draw_iris(patch, off, iris_c=iris_c, r=r):
                c = tuple(_fix(iris_c - off))
                cv2.circle(patch, c, int(r * _ONE), _color(idn.iris), -1,
                           cv2.LINE_AA, _SHIFT)
                cv2.circle(patch, c, int(0.45 * r * _ONE), (10, 10, 10),
                           -1, cv2.LINE_AA, _SHIFT)
                cv2.circle(patch, tuple(_fix(iris_c - off - 0.3 * r)),
                           int(max(0.5, 0.15 * r) * _ONE),
                           (235, 240, 245), -1, cv2.LINE_AA, _SHIFT)

            _draw_clipped(img, eye_poly, draw_iris)
        lash = np.minimum(idn.brow, 60)
        _line(img, upper, lash, 0.022 * s)
        _line(img, lower, skin * 0.55, 0.008 * s)

    # lips: outer polygon, dark mouth opening with teeth, lip line
    _fill(img, catmull_rom(lm[OUTER_LIPS], 4, closed=True), idn.lips)
    inner = catmull_rom(lm[INNER_LIPS], 4, closed=True)
    gap = np.linalg.norm(lm[66] - lm[62])
    if gap > 1.5:
        _fill(img, inner, (25, 20, 45))
        teeth_h = min(gap * 0.45, 0.03 * s)

        def draw_teeth(patch, off):
            top = catmull_rom(lm[[60, 61, 62, 63, 64]], 4) - off
            d = _normals(top)
            _fill(patch, np.concatenate([top, (top + teeth_h * d)[::-1]]),
                  (205, 225, 235))

        _draw_clipped(img, inner, draw_teeth)
    _line(img, catmull_rom(lm[[60, 61, 62, 63, 64]], 4), idn.lips * 0.45,
          0.008 * s)
    _line(img, catmull_rom(lm[[64, 65, 66, 67, 60]], 4), idn.lips * 0.45,
          0.008 * s)
    return mask.astype(np.float32) * (1. / 255)


def _normals(curve: np.ndarray) -> np.ndarray:
    """Unit normals of an open polyline pointing to the image 'down' side of
    a left-to-right curve (y grows downwards)."""
    d = np.gradient(curve, axis=0)
    n = np.stack([-d[:, 1], d[:, 0]], 1)
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-6)
    # orient consistently: normals point away from the curve's ends' chord
    # to its "below" side in the curve's own frame
    if np.sign((curve[-1] - curve[0])[0]) < 0:
        n = -n
    return n
