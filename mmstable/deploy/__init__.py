"""Deployment: the streaming step as an ONNX graph and an ONNX Runtime
backend for :class:`mmstable.apis.StableFaceTracker` (issue 13)."""
from .onnx_export import export_onnx, read_metadata
from .onnx_topdown_model import OnnxTopdownModel, OnnxTrackStates
from .profile import profile_onnx
from .realtime import LoopStats, RealtimeFaceLoop
from .stateful_step import StatefulStep

__all__ = [
    'StatefulStep', 'export_onnx', 'read_metadata', 'OnnxTopdownModel',
    'OnnxTrackStates', 'RealtimeFaceLoop', 'LoopStats', 'profile_onnx'
]
