from .resumable_epoch_based_train_loop import ResumableEpochBasedTrainLoop
from .train_setup import (cpu_distributed, resolve_auto_resume,
                          resume_with_the_runs_seed, use_resumable_loop)

__all__ = [
    'ResumableEpochBasedTrainLoop', 'cpu_distributed', 'resolve_auto_resume',
    'resume_with_the_runs_seed', 'use_resumable_loop'
]
