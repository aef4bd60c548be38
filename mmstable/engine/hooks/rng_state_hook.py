import random
from typing import Optional

import numpy as np
import torch
from mmengine.hooks import Hook

from mmpose.registry import HOOKS


def get_rng_state() -> dict:
    """The main process's random states: torch (CPU and every CUDA device),
    numpy's and Python's global generators. Only tensors, numpy arrays and
    plain Python values, so :func:`mmstable.utils.safe_load` reads it back."""
    np_state = np.random.get_state()
    state = dict(
        torch=torch.get_rng_state(),
        numpy=(np_state[0], np_state[1], int(np_state[2]), int(np_state[3]),
               float(np_state[4])),
        random=random.getstate())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`get_rng_state` returned."""
    torch.set_rng_state(state['torch'])
    np.random.set_state(tuple(state['numpy']))
    version, internal, gauss = state['random']
    random.setstate((version, tuple(internal), gauss))
    cuda = state.get('cuda')
    if cuda is not None and torch.cuda.is_available() and \
            len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Saves the main process's random states in every checkpoint
    (``checkpoint['rng_state']``, see :func:`get_rng_state`) and keeps the
    ones of the last loaded checkpoint in :attr:`loaded_state`.

    :class:`~mmstable.engine.runner.ResumableEpochBasedTrainLoop` registers it
    and restores :attr:`loaded_state` when it resumes in the middle of an
    epoch, so what the main process draws after the resume (a data pipeline
    with ``num_workers=0``, dropout, ...) is what it drew in the run that
    wrote the checkpoint. Under DDP only rank 0 writes checkpoints (MMEngine's
    ``save_checkpoint`` runs on rank 0 alone, so the ranks cannot exchange
    their states there): rank 0's state is saved and restored on rank 0;
    the other ranks continue from their epoch seed and the re-drawn batches
    (exact unless their model draws random numbers, e.g. dropout).
    """
    priority = 'VERY_LOW'

    def __init__(self):
        self.loaded_state: Optional[dict] = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['rng_state'] = get_rng_state()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self.loaded_state = checkpoint.get('rng_state') \
            if runner.rank == 0 else None
