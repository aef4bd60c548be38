"""Video metrics: stability (MCV, MAV + extras, NMF), accuracy (VideoNME),
the filter sweep (ParetoSweep)."""
from .base_video_metric import BaseVideoMetric
from .mav import MAV
from .mcv import MCV
from .nmf import NMF
from .pareto_sweep import ParetoSweep
from .video_nme import VideoNME

__all__ = ['BaseVideoMetric', 'MCV', 'MAV', 'VideoNME', 'NMF',
           'ParetoSweep']
