# Copyright (c) mmstable authors. All rights reserved.
from typing import Dict, Optional

import cv2
import numpy as np
from mmcv.transforms import BaseTransform

from mmpose.registry import TRANSFORMS


@TRANSFORMS.register_module()
class VideoDegradation(BaseTransform):
    """Per-frame video degradations: brightness change, Gaussian blur, motion
    blur, Gaussian noise and JPEG compression (paper §1 and Fig. 8 attribute
    jitter to "random noise and motion blur").

    Meant for the input crop, per frame, inside :class:`ApplyToFrames` after
    ``TopdownAffine`` (cheap on a 256x256 crop; independent draws per frame).
    Each degradation is a dict with ``prob`` and a strength range drawn
    uniformly; set one to ``None`` to disable it. They are applied in the
    order of a camera: brightness, optical (Gaussian) blur, motion blur,
    sensor noise, compression. Keypoints are unchanged (no geometry).

    Required Keys: img (uint8 or float, H x W x C)

    Modified Keys: img

    Args:
        brightness (dict, optional): ``prob``; ``delta`` (low, high) added to
            every pixel, in pixel values. Defaults to
            ``dict(prob=0.2, delta=(-20, 20))``.
        gaussian_blur (dict, optional): ``prob``; ``sigma`` (low, high) in
            pixels. Defaults to ``dict(prob=0.2, sigma=(0.5, 1.5))``.
        motion_blur (dict, optional): ``prob``; ``length`` (low, high) in
            pixels (integer, line kernel at a uniform random angle). Defaults
            to ``dict(prob=0.2, length=(3, 7))``. Or, **tied to speed**:
            ``prob``; ``exposure`` (low, high), the fraction of the frame
            interval the shutter is open: the kernel has length
            ``exposure * |v|`` and the direction of ``v``, the frame's
            velocity ``image_velocity`` (image px per frame, set by
            :class:`MakeMotionClip`) mapped into the crop by ``crop_affine``
            (set by :class:`ShiftedTopdownAffine`); a frame without
            ``image_velocity`` is still (no blur).
        gaussian_noise (dict, optional): ``prob``; ``sigma`` (low, high) in
            pixel values. Defaults to ``dict(prob=0.2, sigma=(2, 8))``.
        jpeg (dict, optional): ``prob``; ``quality`` (low, high), OpenCV
            JPEG quality 0-100. Defaults to ``dict(prob=0.2,
            quality=(40, 90))``.
    """

    _alternative_keys = dict(motion_blur='exposure')
    _strength_keys = dict(brightness='delta',
                          gaussian_blur='sigma',
                          motion_blur='length',
                          gaussian_noise='sigma',
                          jpeg='quality')

    def __init__(self,
                 brightness: Optional[dict] = dict(prob=0.2, delta=(-20, 20)),
                 gaussian_blur: Optional[dict] = dict(prob=0.2,
                                                      sigma=(0.5, 1.5)),
                 motion_blur: Optional[dict] = dict(prob=0.2, length=(3, 7)),
                 gaussian_noise: Optional[dict] = dict(prob=0.2, sigma=(2, 8)),
                 jpeg: Optional[dict] = dict(prob=0.2, quality=(40, 90))):
        super().__init__()
        self.cfgs = {}
        for name, cfg in (('brightness', brightness),
                          ('gaussian_blur', gaussian_blur), ('motion_blur',
                                                             motion_blur),
                          ('gaussian_noise', gaussian_noise), ('jpeg', jpeg)):
            if cfg is None:
                continue
            key = self._strength_keys[name]
            if set(cfg) == {'prob', self._alternative_keys.get(name)}:
                key = self._alternative_keys[name]
            elif set(cfg) != {'prob', key}:
                alt = self._alternative_keys.get(name)
                alt = f' or dict(prob=..., {alt}=(low, high))' if alt else ''
                raise ValueError(
                    f'VideoDegradation.{name} must be dict(prob=..., '
                    f'{key}=(low, high)){alt} or None, got {cfg}')
            low, high = cfg[key]
            if not 0 <= cfg['prob'] <= 1 or low > high:
                raise ValueError(
                    f'VideoDegradation.{name}: need 0 <= prob <= 1 and '
                    f'low <= high, got {cfg}')
            self.cfgs[name] = dict(prob=float(cfg['prob']), low=low, high=high,
                                   key=key)

    @staticmethod
    def motion_blur_kernel(length: int, angle: float) -> np.ndarray:
        """A normalised line kernel of ``length`` pixels at ``angle`` degrees,
        centred on the anchor of ``cv2.filter2D`` (so blur never shifts the
        image: an even length gets an odd kernel with half-weight ends)."""
        size = length + 1 - length % 2
        kernel = np.zeros((size, size), np.float32)
        kernel[size // 2, :] = 1.
        if size != length:
            kernel[size // 2, [0, -1]] = 0.5
        rot = cv2.getRotationMatrix2D(((size - 1) / 2, (size - 1) / 2),
                                      angle, 1.)
        kernel = cv2.warpAffine(kernel, rot, (size, size))
        return kernel / max(kernel.sum(), 1e-6)

    @classmethod
    def motion_blur(cls, img: np.ndarray, length: float,
                    angle: float) -> np.ndarray:
        """Blur ``img`` along a line of ``length`` pixels (rounded; < 2 is
        no blur) at ``angle`` degrees (counter-clockwise on screen, x right,
        y down)."""
        length = int(round(length))
        if length < 2:
            return img
        return cv2.filter2D(img, -1, cls.motion_blur_kernel(length, angle))

    @staticmethod
    def speed_blur(results: Dict, exposure: float) -> tuple:
        """(length, angle) of the motion blur of a frame moving at
        ``results['image_velocity']`` (image px per frame), in the crop."""
        velocity = results.get('image_velocity')
        if velocity is None:
            return 0., 0.
        if 'crop_affine' not in results:
            raise KeyError(
                'VideoDegradation: motion_blur=dict(exposure=...) maps the '
                'frame\'s image_velocity into the crop with '
                'results["crop_affine"]; put ShiftedTopdownAffine (which sets '
                'it) before VideoDegradation in the per-frame pipeline.')
        v = np.asarray(results['crop_affine'], np.float64)[:, :2] @ \
            np.asarray(velocity, np.float64).reshape(2)
        return exposure * float(np.hypot(*v)), float(
            np.degrees(np.arctan2(-v[1], v[0])))

    def _apply(self, name: str, img: np.ndarray, value) -> np.ndarray:
        if name == 'brightness':
            return img + value
        if name == 'gaussian_blur':
            return cv2.GaussianBlur(img, (0, 0), value)
        if name == 'motion_blur':
            return self.motion_blur(img, value, np.random.uniform(0, 180))
        if name == 'gaussian_noise':
            return img + np.random.normal(0, value, img.shape)
        # jpeg
        ok, buf = cv2.imencode('.jpg',
                               np.clip(img, 0, 255).astype(np.uint8),
                               [cv2.IMWRITE_JPEG_QUALITY,
                                int(round(value))])
        return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED).reshape(
            img.shape).astype(np.float32)

    def transform(self, results: Dict) -> Dict:
        img = results['img']
        dtype = img.dtype
        out = img.astype(np.float32)  # a copy: never modify a shared image
        applied = []
        for name, cfg in self.cfgs.items():
            if np.random.rand() >= cfg['prob']:
                continue
            value = np.random.uniform(cfg['low'], cfg['high'])
            if cfg['key'] == 'exposure':
                length, angle = self.speed_blur(results, value)
                out = self.motion_blur(out, length, angle)
            else:
                out = self._apply(name, out, value)
            applied.append(name)
        if dtype == np.uint8:
            out = np.clip(np.round(out), 0, 255).astype(np.uint8)
        results['img'] = out
        results['video_degradation'] = applied
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}({self.cfgs})'
