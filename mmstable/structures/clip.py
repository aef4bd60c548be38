"""Clip helpers: recover the clips of a flat frame batch and move between the
flat (B·T, ...) layout and the padded (B, Tmax, ...) layout.

The clip layout (clip-major frame order, ``clip_len`` / ``video_id`` /
``frame_id`` metainfo) is defined once in ``docs/conventions.md`` §1; every
mmstable module that needs clips (heads, losses, datasets) goes through these
functions instead of re-deriving it.
"""
from typing import List, Optional, Sequence, Tuple

import torch
from torch import Tensor

Clip = Tuple[int, int]  # (index of the clip's first frame, clip length T)


def split_clips(batch_data_samples: Sequence,
                default_clip_len: Optional[int] = None) -> List[Clip]:
    """Recover the clips of a clip-major frame batch.

    A clip starts at frame ``i`` and spans ``metainfo['clip_len']`` of frame
    ``i`` frames (docs/conventions.md §1).

    Args:
        batch_data_samples (Sequence[PoseDataSample]): the B·T frames, clip
            major (clip 0 frames 0..T0-1, clip 1 frames 0..T1-1, ...).
        default_clip_len (int, optional): clip length of a frame without
            ``clip_len`` (e.g. ``1`` for a plain MMPose image test set).
            ``None`` (default) makes a missing ``clip_len`` an error.

    Returns:
        list[tuple[int, int]]: ``(start, length)`` of each clip, in batch
        order; the lengths sum to ``len(batch_data_samples)``.
    """
    n = len(batch_data_samples)
    clips = []
    i = 0
    while i < n:
        length = _clip_len(batch_data_samples[i], i, default_clip_len)
        if i + length > n:
            raise ValueError(
                f'frame {i} starts a clip of clip_len={length}, but the batch '
                f'has only {n - i} frames left. Frames must be ordered clip '
                'major with every clip complete (docs/conventions.md §1); '
                "check that the dataloader uses collate_fn=dict(type='"
                "clip_collate') and the dataset's clip_len metainfo.")
        for j in range(i + 1, i + length):
            other = _clip_len(batch_data_samples[j], j, default_clip_len)
            if other != length:
                raise ValueError(
                    f'frame {j} has clip_len={other}, but it lies in the clip '
                    f'that starts at frame {i} with clip_len={length}. Every '
                    'frame of a clip must carry the clip\'s length '
                    '(docs/conventions.md §1).')
        clips.append((i, length))
        i += length
    return clips


def _clip_len(data_sample, index: int, default: Optional[int]) -> int:
    metainfo = data_sample.metainfo
    if 'clip_len' not in metainfo:
        if default is None:
            raise KeyError(
                f'frame {index} has no "clip_len" in its metainfo (found keys '
                f'{sorted(metainfo)}). Clip datasets set it '
                '(docs/conventions.md §1); for a pipeline that ends in '
                "PackPoseInputs add 'clip_len', 'video_id', 'frame_id' to its "
                'meta_keys.')
        return default
    length = int(metainfo['clip_len'])
    if length < 1:
        raise ValueError(
            f'frame {index} has clip_len={length}; expected >= 1.')
    return length


def clip_indices(clips: Sequence[Clip],
                 device: Optional[torch.device] = None) -> Tuple[Tensor, int]:
    """Flat positions of the frames in a padded (B, Tmax) grid.

    Returns:
        tuple: ``(index, t_max)``; ``index[n] = b * t_max + t`` for frame ``n``
        being frame ``t`` of clip ``b``.
    """
    t_max = max(length for _, length in clips)
    index = torch.cat([
        torch.arange(length, device=device) + b * t_max
        for b, (_, length) in enumerate(clips)
    ])
    return index, t_max


def pad_clips(x: Tensor, clips: Sequence[Clip],
              padding_value: float = 0.) -> Tensor:
    """(B·T, ...) frames → (B, Tmax, ...) clips.

    Shorter clips are padded at the end with ``padding_value``. The result is
    a view of ``x`` when all clips have the same length; otherwise a new
    tensor (differentiable w.r.t. ``x``).

    Args:
        x (Tensor): frames in clip-major order, shape (N, ...), N = ΣT_b.
        clips (Sequence[tuple[int, int]]): from :func:`split_clips`.

    Returns:
        Tensor: shape (B, Tmax, ...).
    """
    n = sum(length for _, length in clips)
    if x.shape[0] != n:
        raise ValueError(f'expected {n} frames (sum of clip lengths), got a '
                         f'tensor of shape {tuple(x.shape)}')
    lengths = {length for _, length in clips}
    if len(lengths) == 1:
        return x.view(len(clips), lengths.pop(), *x.shape[1:])
    index, t_max = clip_indices(clips, x.device)
    out = x.new_full((len(clips) * t_max, *x.shape[1:]), padding_value)
    out = out.index_copy(0, index, x)
    return out.view(len(clips), t_max, *x.shape[1:])


def unpad_clips(x: Tensor, clips: Sequence[Clip]) -> Tensor:
    """(B, Tmax, ...) clips → (B·T, ...) frames; inverse of :func:`pad_clips`
    (padded frames are dropped)."""
    if x.shape[0] != len(clips):
        raise ValueError(f'expected {len(clips)} clips, got a tensor of '
                         f'shape {tuple(x.shape)}')
    lengths = {length for _, length in clips}
    if len(lengths) == 1 and x.shape[1] == next(iter(lengths)):
        return x.flatten(0, 1)
    index, _ = clip_indices(clips, x.device)
    return x.flatten(0, 1).index_select(0, index)


def clip_mask(clips: Sequence[Clip],
              device: Optional[torch.device] = None) -> Tensor:
    """Bool (B, Tmax): True for real frames, False for padding."""
    t_max = max(length for _, length in clips)
    lengths = torch.tensor([length for _, length in clips], device=device)
    return torch.arange(t_max, device=device)[None] < lengths[:, None]
