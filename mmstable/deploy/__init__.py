"""Deployment: the streaming step as an ONNX graph and an ONNX Runtime
backend for :class:`mmstable.apis.StableFaceTracker` (issue 13)."""
from .stateful_step import StatefulStep

__all__ = ['StatefulStep']
