from .clip import clip_indices, clip_mask, pad_clips, split_clips, unpad_clips

__all__ = [
    'clip_indices', 'clip_mask', 'pad_clips', 'split_clips', 'unpad_clips'
]
