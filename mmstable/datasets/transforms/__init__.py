from .apply_to_frames import ApplyToFrames
from .detector_box_jitter import DetectorBoxJitter
from .make_motion_clip import MakeMotionClip
from .make_shifted_clip import MakeShiftedClip
from .pack_clip_inputs import PackClipInputs
from .shifted_topdown_affine import ShiftedTopdownAffine
from .video_degradation import VideoDegradation

__all__ = [
    'ApplyToFrames', 'DetectorBoxJitter', 'MakeMotionClip', 'MakeShiftedClip', 'PackClipInputs',
    'ShiftedTopdownAffine', 'VideoDegradation'
]
