"""Synthetic face videos (68 iBUG landmarks) for running mmstable with no
data and no internet: :mod:`.face_model` (parametric face and renderer) and
:mod:`.generator` (videos, COCO-style splits)."""
from .face_model import (NUM_KEYPOINTS, FaceExpression, FaceIdentity,
                         HeadPose, face_landmarks_3d, project, render_face,
                         sample_identity)
from .generator import (DEFAULT_SPLIT_SIZES, PRESETS, SPLITS,
                        FaceVideoGenerator, SyntheticVideo, default_ann_file,
                        preset_settings, video_key, write_split)

__all__ = [
    'NUM_KEYPOINTS', 'FaceExpression', 'FaceIdentity', 'HeadPose',
    'face_landmarks_3d', 'project', 'render_face', 'sample_identity',
    'DEFAULT_SPLIT_SIZES', 'PRESETS', 'preset_settings', 'SPLITS',
    'FaceVideoGenerator', 'SyntheticVideo', 'default_ann_file', 'video_key',
    'write_split'
]
