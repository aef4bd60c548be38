# Copyright (c) mmstable authors. All rights reserved.
from typing import List, Sequence

import torch
from mmengine.registry import FUNCTIONS


@FUNCTIONS.register_module()
def clip_collate(data_batch: Sequence[dict]) -> dict:
    """Flatten a batch of B clips into B·T frames, clip-major
    (docs/conventions.md §1).

    Configs use it as ``collate_fn=dict(type='clip_collate')``.

    Args:
        data_batch (Sequence[dict]): Dataset items, each either a clip
            ``dict(inputs=Tensor(T, C, h, w), data_samples=list of T
            PoseDataSample)`` or a single frame ``dict(inputs=Tensor(C, h, w),
            data_samples=PoseDataSample)``; T may differ between clips.

    Returns:
        dict: ``inputs`` (list of Σ T tensors (C, h, w)) and ``data_samples``
        (list of Σ T PoseDataSample), clip 0 frames 0..T0-1, then clip 1, ...
        This is the layout of MMEngine's ``pseudo_collate``, so MMPose's
        ``PoseDataPreprocessor`` stacks it into a (Σ T, C, h, w) batch.
    """
    inputs: List[torch.Tensor] = []
    data_samples: list = []
    for i, item in enumerate(data_batch):
        x, samples = item['inputs'], item['data_samples']
        if isinstance(samples, (list, tuple)):
            if x.dim() != 4 or x.shape[0] != len(samples):
                raise ValueError(
                    f'clip_collate: item {i} is a clip of {len(samples)} data '
                    f'samples but its inputs have shape {tuple(x.shape)}; '
                    'expected (T, C, h, w) with T = len(data_samples) '
                    '(pack clips with PackClipInputs).')
            inputs.extend(x.unbind(0))
            data_samples.extend(samples)
        else:
            if x.dim() != 3:
                raise ValueError(
                    f'clip_collate: item {i} is a single frame but its inputs '
                    f'have shape {tuple(x.shape)}; expected (C, h, w).')
            inputs.append(x)
            data_samples.append(samples)
    return dict(inputs=inputs, data_samples=data_samples)
