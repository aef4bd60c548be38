# Copyright (c) mmstable authors. All rights reserved.
import copy
from typing import Dict, List, Optional

import numpy as np
from mmcv.transforms import BaseTransform

from mmpose.registry import TRANSFORMS


@TRANSFORMS.register_module()
class MakeShiftedClip(BaseTransform):
    """Make a pseudo video clip of T frames from one image (paper §4.2).

    "We shift each original image and the corresponding landmarks by a few
    pixels, both horizontally and vertically, to construct a sequence with
    5-8 frames." Each frame is a copy of ``results`` that carries its own
    ``input_shift``: a translation in **input space** (pixels of the
    ``TopdownAffine`` crop, see docs/conventions.md §2). The shift is applied
    later, per frame, by :class:`ShiftedTopdownAffine`, which composes it into
    the crop warp so that the image and the keypoints move by exactly
    ``input_shift`` and no black border appears.

    Clip-level augmentations (``RandomFlip``, ``RandomBBoxTransform``) go
    *before* this transform so that all frames share one augmentation;
    per-frame transforms go after it inside :class:`ApplyToFrames`.

    Required Keys:

        - clip_len (int, T; set by :class:`ImageSequenceDataset`)
        - clip_seed (optional; when present the shifts are drawn from
          ``np.random.default_rng(clip_seed)``, which makes test-mode clips
          reproducible; otherwise from the global ``np.random``)

    Added Keys:

        - frames (list[dict]): T shallow copies of ``results`` (the image
          array is shared, every other value deep-copied), each with
          ``frame_id`` (0..T-1), ``input_shift`` (np.ndarray (2,),
          float32, [dx, dy] in input pixels) and ``pseudo_clip`` (True: the
          motion is drawn, not filmed; the refiner's keypoint stage does
          not learn from it, see ``ConvLSTMRefineHead``)

    Args:
        max_shift (float): Bound of one draw, in input pixels. With the
            default 256x256 input and 64x64 heatmaps, 4 input pixels are one
            heatmap pixel. Defaults to 4.0.
        mode (str): ``'independent'``: every frame's shift is an independent
            draw (jitter around the augmented crop);
            ``'random_walk'``: frame 0 is unshifted and every further frame
            adds one independent draw to the previous frame's shift (a slow
            drift). Defaults to ``'independent'``.
        distribution (str): ``'uniform'`` in ``[-max_shift, max_shift]`` per
            axis, or ``'normal'`` with ``std = max_shift / 2`` clipped to
            ``±max_shift``. Defaults to ``'uniform'``.
    """

    modes = ('independent', 'random_walk')
    distributions = ('uniform', 'normal')

    def __init__(self,
                 max_shift: float = 4.0,
                 mode: str = 'independent',
                 distribution: str = 'uniform') -> None:
        super().__init__()
        if mode not in self.modes:
            raise ValueError(f'MakeShiftedClip.mode must be one of '
                             f'{self.modes}, got {mode!r}')
        if distribution not in self.distributions:
            raise ValueError(f'MakeShiftedClip.distribution must be one of '
                             f'{self.distributions}, got {distribution!r}')
        if max_shift < 0:
            raise ValueError(
                f'MakeShiftedClip.max_shift must be >= 0, got {max_shift}')
        self.max_shift = float(max_shift)
        self.mode = mode
        self.distribution = distribution

    def _draw(self, rng, num: int) -> np.ndarray:
        if self.distribution == 'uniform':
            d = rng.uniform(-self.max_shift, self.max_shift, size=(num, 2))
        else:
            d = rng.normal(0., self.max_shift / 2, size=(num, 2))
            d = np.clip(d, -self.max_shift, self.max_shift)
        return d

    def sample_shifts(self,
                      clip_len: int,
                      seed: Optional[object] = None) -> np.ndarray:
        """Draw the (T, 2) input-space shifts of one clip."""
        rng = np.random if seed is None else np.random.default_rng(seed)
        if self.mode == 'independent':
            shifts = self._draw(rng, clip_len)
        else:
            steps = self._draw(rng, clip_len - 1)
            shifts = np.concatenate(
                [np.zeros((1, 2)), np.cumsum(steps, axis=0)], axis=0)
        return shifts.astype(np.float32)

    def frame_updates(self, results: Dict, clip_len: int) -> List[Dict]:
        """The per-frame keys of one clip: T dicts merged into the T frame
        copies of ``results``. Subclasses (:class:`MakeMotionClip`) override
        it to draw other per-frame geometry."""
        shifts = self.sample_shifts(clip_len, results.get('clip_seed'))
        return [dict(input_shift=shift) for shift in shifts]

    def transform(self, results: Dict) -> Dict:
        if 'clip_len' not in results:
            raise KeyError(
                f'{self.__class__.__name__} needs results["clip_len"] (T), '
                'which ImageSequenceDataset sets; use it inside an '
                'ImageSequenceDataset pipeline.')
        clip_len = int(results['clip_len'])
        updates = self.frame_updates(results, clip_len)
        frames = []
        for t in range(clip_len):
            # The image is only read by the per-frame warp; everything else
            # is copied so per-frame transforms cannot leak into each other.
            frame = {
                k: (v if k == 'img' else copy.deepcopy(v))
                for k, v in results.items()
            }
            frame['frame_id'] = t
            frame['pseudo_clip'] = True
            frame.update(updates[t])
            frames.append(frame)
        results['frames'] = frames
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(max_shift={self.max_shift}, '
                f'mode={self.mode!r}, distribution={self.distribution!r})')
