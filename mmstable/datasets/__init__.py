from .collate import clip_collate
from .image_sequence_dataset import ImageSequenceDataset
from .synthetic_face_dataset import SyntheticFaceVideoDataset
from .real_face_video_dataset import RealFaceVideoDataset
from .samplers import *  # noqa: F401,F403
from .transforms import *  # noqa: F401,F403
from .video_clip_dataset import SCENARIO_VIDEOS, VideoClipDataset

__all__ = [
    'clip_collate', 'ImageSequenceDataset', 'VideoClipDataset',
    'SCENARIO_VIDEOS', 'SyntheticFaceVideoDataset', 'RealFaceVideoDataset'
]
