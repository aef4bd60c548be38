# Copyright (c) mmstable authors. All rights reserved.
import inspect
from typing import Dict

import numpy as np
import torch

from mmpose.datasets.transforms import PackPoseInputs
from mmpose.registry import TRANSFORMS

_MMPOSE_META_KEYS = inspect.signature(
    PackPoseInputs).parameters['meta_keys'].default

#: Clip metainfo added to MMPose's meta keys (docs/conventions.md §1).
CLIP_META_KEYS = ('video_id', 'frame_id', 'clip_len', 'input_shift', 'scenario',
                  'crop_affine', 'bbox_rotation', 'pseudo_clip', 'identity')


@TRANSFORMS.register_module()
class PackClipInputs(PackPoseInputs):
    """Pack a clip (or a single video frame) with MMPose's
    :class:`PackPoseInputs`.

    - A clip (results with ``frames``, T per-frame results dicts) becomes
      ``dict(inputs=Tensor(T, C, h, w), data_samples=list[PoseDataSample])``
      (the clip layout of docs/conventions.md §1); every frame is packed by
      ``PackPoseInputs.transform``.
    - A single frame (no ``frames``; whole-video test items) becomes the
      ordinary MMPose item ``dict(inputs=Tensor(C, h, w),
      data_samples=PoseDataSample)``.

    Args:
        meta_keys (Sequence[str]): Defaults to MMPose's meta keys plus
            ``video_id``, ``frame_id``, ``clip_len``, ``input_shift`` (the
            input-space shift drawn by :class:`MakeShiftedClip`, when any),
            ``scenario``, ``crop_affine`` (2x3, the frame's image -> input
            pixels, set by :class:`ShiftedTopdownAffine`; absent after plain
            ``TopdownAffine``, where ``input_center`` / ``input_scale``
            describe the crop), ``bbox_rotation`` and ``pseudo_clip``
            (frames of :class:`MakeShiftedClip` / :class:`MakeMotionClip`).
        pack_transformed (bool): Pack ``transformed_keypoints`` (input space)
            into ``gt_instances``; the refine head needs them. Defaults to
            ``True`` (MMPose's default is ``False``).
    """

    def __init__(self,
                 meta_keys=_MMPOSE_META_KEYS + CLIP_META_KEYS,
                 pack_transformed: bool = True) -> None:
        super().__init__(meta_keys=meta_keys,
                         pack_transformed=pack_transformed)

    @staticmethod
    def _drop_empty_transformed(results: Dict) -> Dict:
        # At inference there are no keypoints and MMPose's TopdownAffine sets
        # ``transformed_keypoints = np.zeros([])``: nothing to pack (packing a
        # 0-d array breaks InstanceData).
        if np.ndim(results.get('transformed_keypoints', 1)) == 0:
            results.pop('transformed_keypoints', None)
        return results

    def transform(self, results: Dict) -> Dict:
        if 'frames' not in results:
            return super().transform(self._drop_empty_transformed(results))
        frames = [self._drop_empty_transformed(f) for f in results['frames']]
        clip_len = len(frames)
        for t, frame in enumerate(frames):
            missing = [
                k for k in ('video_id', 'frame_id', 'clip_len')
                if k not in frame
            ]
            if missing:
                raise KeyError(
                    f'PackClipInputs: frame {t} of the clip lacks {missing}; '
                    'clip datasets (ImageSequenceDataset, VideoClipDataset) '
                    'set them, see docs/conventions.md §1.')
            if frame['clip_len'] != clip_len:
                raise ValueError(
                    f'PackClipInputs: frame {t} says clip_len='
                    f'{frame["clip_len"]} but the clip has {clip_len} frames.')
        packed = [super(PackClipInputs, self).transform(f) for f in frames]
        shapes = {tuple(p['inputs'].shape) for p in packed}
        if len(shapes) != 1:
            raise ValueError(
                f'PackClipInputs: frames of one clip have different input '
                f'shapes {sorted(shapes)}; put the same TopdownAffine '
                'input_size for every frame.')
        return dict(inputs=torch.stack([p['inputs'] for p in packed]),
                    data_samples=[p['data_samples'] for p in packed])
