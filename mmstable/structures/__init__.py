from .clip import clip_indices, clip_mask, pad_clips, split_clips, unpad_clips
from .crop import crop_affine_from_metainfo, heatmap_affine
from .track_state import (MOTION_MODES, TrackState, apply_affine,
                          fit_similarity, fit_translation, motion_matrix,
                          nonrigid_velocity, predicted_motion, shift_maps,
                          warp_maps)

__all__ = [
    'clip_indices', 'clip_mask', 'pad_clips', 'split_clips', 'unpad_clips',
    'crop_affine_from_metainfo', 'heatmap_affine', 'MOTION_MODES',
    'TrackState', 'apply_affine', 'fit_similarity', 'fit_translation',
    'motion_matrix', 'nonrigid_velocity', 'predicted_motion', 'shift_maps',
    'warp_maps'
]
