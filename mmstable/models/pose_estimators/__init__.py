from .stable_topdown import StableTopdownPoseEstimator

__all__ = ['StableTopdownPoseEstimator']
