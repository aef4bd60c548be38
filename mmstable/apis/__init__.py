"""Inference APIs: build a face model, run it on a video frame by frame.

Modelled on :mod:`mmpose.apis` (``init_model``, ``inference_topdown``), which
they call.
"""
from .default_model import default_face_model
from .face_detectors import HaarFaceDetector, MMDetFaceDetector
from .frame_source import FrameSource
from .image_input import check_boxes, check_image
from .inference import init_model
from .stable_face_tracker import StableFaceTracker, TrackResult

__all__ = [
    'init_model', 'StableFaceTracker', 'TrackResult', 'HaarFaceDetector',
    'MMDetFaceDetector', 'FrameSource', 'check_image', 'check_boxes',
    'default_face_model'
]
