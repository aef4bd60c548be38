# Copyright (c) mmstable authors. All rights reserved.
import random
from typing import Dict, List, Optional, Union

import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.dataset import Compose

from mmpose.registry import TRANSFORMS


@TRANSFORMS.register_module()
class ApplyToFrames(BaseTransform):
    """Apply ordinary (single-image) MMPose transforms to every frame of a
    clip.

    A clip is a results dict with ``frames`` (list of per-frame results
    dicts), made by :class:`MakeShiftedClip` or by
    :class:`VideoClipDataset`. Without ``frames`` (a single test frame) the
    transforms are applied to ``results`` itself, so one pipeline serves
    clips and whole-video test frames.

    Args:
        transforms (list[dict | callable]): The per-frame transforms, e.g.
            ``[dict(type='ShiftedTopdownAffine', input_size=(256, 256)),
            dict(type='VideoDegradation'), dict(type='GenerateTarget',
            encoder=codec)]``.
        shared_random (bool): Replay the same random draws for every frame
            (the ``np.random`` and ``random`` states are restored before each
            frame), so random transforms such as ``RandomFlip`` or
            ``RandomBBoxTransform`` make one choice for the whole clip. Use it
            for clip-level geometric augmentation of real video frames; leave
            it ``False`` for per-frame noise. Defaults to ``False``.

    If a transform returns ``None`` for any frame, the whole clip is
    ``None`` (the dataset then refetches another item in training).
    """

    def __init__(self,
                 transforms: List[Union[dict, callable]],
                 shared_random: bool = False) -> None:
        super().__init__()
        self.transforms = Compose(transforms)
        self.shared_random = shared_random

    def transform(self, results: Dict) -> Optional[Dict]:
        if 'frames' not in results:
            return self.transforms(results)
        if self.shared_random:
            np_state, py_state = np.random.get_state(), random.getstate()
        frames = []
        for frame in results['frames']:
            if self.shared_random:
                np.random.set_state(np_state)
                random.setstate(py_state)
            frame = self.transforms(frame)
            if frame is None:
                return None
            frames.append(frame)
        results['frames'] = frames
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(transforms={self.transforms}, '
                f'shared_random={self.shared_random})')
