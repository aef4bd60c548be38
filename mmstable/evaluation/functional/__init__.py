"""Numpy functions behind mmstable's video metrics (no registries; motion_split
borrows the keypoint stage's similarity fit, in torch)."""
from .accuracy import ced_auc_fr, frame_nme, interocular_distance
from .flicker import face_scale, nmf, normalised_jitter
from .lag import lag_frames, motion_split
from .grouping import VideoTrack, group_tracks, scenario_label
from .stability import (acceleration_error, allan_deviation, allan_variance,
                        coefficient_of_variation, default_taus)

__all__ = [
    'coefficient_of_variation', 'allan_variance', 'allan_deviation',
    'default_taus', 'acceleration_error', 'frame_nme', 'interocular_distance',
    'ced_auc_fr', 'VideoTrack', 'group_tracks', 'scenario_label',
    'face_scale', 'normalised_jitter', 'nmf', 'motion_split', 'lag_frames'
]
