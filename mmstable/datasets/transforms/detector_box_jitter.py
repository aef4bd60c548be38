# Copyright (c) mmstable authors. All rights reserved.
from typing import Dict, Optional

import numpy as np
from mmcv.transforms import BaseTransform

from mmpose.registry import TRANSFORMS

from .make_motion_clip import MakeMotionClip


@TRANSFORMS.register_module()
class DetectorBoxJitter(BaseTransform):
    """Detector-like boxes for the frames of a real video clip.

    A detector's box moves a little from frame to frame even on a still
    face. Per clip a detector quality ``q`` is drawn uniformly from [0, 1];
    every frame's box centre then moves by independent Gaussian offsets of
    σ = ``q · center`` % of the face size per axis, and its size by σ =
    ``q · size`` % (the rule of :class:`MakeMotionClip`'s detector jitter,
    for clips of real videos, whose motion is their own). The face size is
    ``sqrt(w · h)`` of the frame's visible GT landmarks' extent, or the box's
    ``sqrt(w · h) / 1.25`` with fewer than two (``GetBBoxCenterScale``'s
    default padding).

    Use it on a clip (``frames``, e.g. from :class:`VideoClipDataset`) after
    ``ApplyToFrames([LoadImage, GetBBoxCenterScale])`` and before the
    per-frame ``TopdownAffine``.

    Required Keys: frames (list of dicts with bbox_center (1, 2),
    bbox_scale (1, 2), keypoints (optional), keypoints_visible (optional)).

    Modified Keys: every frame's bbox_center, bbox_scale.

    Args:
        center (float): Highest σ of the centre jitter per axis, % of the
            face size. Defaults to 3.0.
        size (float): Highest σ of the size jitter, % of the face size.
            Defaults to 3.0.
        exact_prob (float): Probability that a clip keeps its exact boxes
            (q = 0). Defaults to 0.0.
    """

    def __init__(self,
                 center: float = 3.,
                 size: float = 3.,
                 exact_prob: float = 0.) -> None:
        super().__init__()
        for name, value in (('center', center), ('size', size)):
            if not np.isfinite(value) or value < 0:
                raise ValueError(f'DetectorBoxJitter: {name} must be a '
                                 f'finite number >= 0, got {value!r}')
        if not 0. <= exact_prob <= 1.:
            raise ValueError('DetectorBoxJitter: exact_prob must be in [0, '
                             f'1], got {exact_prob!r}')
        self.center = float(center)
        self.size = float(size)
        self.exact_prob = float(exact_prob)

    #: the face size of a frame, as :class:`MakeMotionClip` measures it
    face_size = staticmethod(MakeMotionClip.face_size)

    def transform(self, results: Dict) -> Optional[Dict]:
        if 'frames' not in results:
            raise KeyError('DetectorBoxJitter: expected a clip (results '
                           "with 'frames', e.g. from VideoClipDataset); got "
                           f'keys {sorted(results)}')
        quality = 0. if np.random.rand() < self.exact_prob else \
            np.random.uniform(0., 1.)
        for frame in results['frames']:
            if 'bbox_center' not in frame or 'bbox_scale' not in frame:
                raise KeyError('DetectorBoxJitter: every frame needs '
                               'bbox_center and bbox_scale; put '
                               'GetBBoxCenterScale (in ApplyToFrames) '
                               'before it')
            unit = quality * self.face_size(frame) / 100.
            center = np.asarray(frame['bbox_center'], np.float32)
            scale = np.asarray(frame['bbox_scale'], np.float32)
            frame['bbox_center'] = (center + np.random.normal(
                0., 1., size=center.shape) * unit * self.center).astype(
                    np.float32)
            frame['bbox_scale'] = np.maximum(
                scale + np.random.normal(0., 1.) * unit * self.size,
                1.).astype(np.float32)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(center={self.center}, '
                f'size={self.size}, exact_prob={self.exact_prob})')
