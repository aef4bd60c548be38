import copy
import random
from functools import partial

import numpy as np
import torch
from mmengine.logging import print_log
from mmengine.runner import EpochBasedTrainLoop

from mmpose.registry import LOOPS
from ..hooks.rng_state_hook import RNGStateHook, set_rng_state


def epoch_seed(seed: int, *keys: int) -> int:
    """A 32-bit seed derived from ``seed`` and ``keys`` (epoch, rank, ...)
    that does not collide with the seeds of neighbouring keys."""
    return int(np.random.SeedSequence([int(seed) % 2**32, *map(
        int, keys)]).generate_state(1)[0])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _seed_worker(worker_id: int, seed: int) -> None:
    seed_everything(epoch_seed(seed, worker_id))


@LOOPS.register_module()
class ResumableEpochBasedTrainLoop(EpochBasedTrainLoop):
    """:class:`~mmengine.runner.EpochBasedTrainLoop` that resumes exactly,
    also from a checkpoint written in the middle of an epoch
    (``CheckpointHook(by_epoch=False, interval=N)``).

    Every random draw of an epoch is a function of the run's seed, the epoch
    and the position in it, never of what happened before the run started:

    - at the start of epoch e the main process's ``torch`` / ``numpy`` /
      ``random`` generators are seeded from (seed, e, rank), and each data
      worker from (seed, e, rank, worker id) -- new workers every epoch
      (``persistent_workers`` is turned off: a persistent worker's generator
      would carry over from epochs a resumed run never ran);
    - the sampler's order depends on (seed, e) only (MMEngine's samplers);
    - a run resumed at iteration i of epoch e re-draws the first i batches
      of the epoch (loads and discards them, as MMEngine's iteration-based
      loop does), so the data workers reach the state they had, then restores
      the main process's random state saved in the checkpoint
      (:class:`~mmstable.engine.hooks.RNGStateHook`).

    Model, optimizer, scheduler and message hub are restored by
    ``Runner.resume``. Arguments are those of ``EpochBasedTrainLoop``; all
    epochs must have the same number of iterations.
    """

    def __init__(self, runner, dataloader, *args, **kwargs):
        if isinstance(dataloader, dict) and dataloader.get(
                'persistent_workers', False):
            dataloader = copy.deepcopy(dataloader)
            dataloader['persistent_workers'] = False
            print_log(
                f'{type(self).__name__}: persistent_workers=False (new, '
                'freshly seeded data workers every epoch, for an exact '
                'resume)', 'current')
        super().__init__(runner, dataloader, *args, **kwargs)
        hooks = [h for h in runner.hooks if isinstance(h, RNGStateHook)]
        if hooks:
            self.rng_hook = hooks[0]
        else:
            self.rng_hook = RNGStateHook()
            runner.register_hook(self.rng_hook)

    def _seed_epoch(self) -> None:
        seed = self.runner.seed if self.runner.seed is not None else 0
        rank = self.runner.rank
        seed_everything(epoch_seed(seed, self._epoch, rank))
        if getattr(self.dataloader, 'num_workers', 0) > 0:
            # DataLoader reads worker_init_fn when an epoch's iterator starts
            self.dataloader.worker_init_fn = partial(
                _seed_worker, seed=epoch_seed(seed, self._epoch, rank, 1))

    def run_epoch(self) -> None:
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        self._seed_epoch()
        # > 0 only in the first epoch of a run resumed mid-epoch
        skip = self._iter - self._epoch * len(self.dataloader)
        rng_state, self.rng_hook.loaded_state = \
            self.rng_hook.loaded_state, None
        if skip >= len(self.dataloader):
            # the checkpoint was written after the epoch's last iteration:
            # nothing to re-draw (the next epoch starts new workers)
            if rng_state is not None:
                set_rng_state(rng_state)
        else:
            if skip > 0:
                print_log(
                    f'resumed in the middle of epoch {self._epoch + 1}: '
                    f're-drawing its first {skip} batches', 'current')
            for idx, data_batch in enumerate(self.dataloader):
                if idx < skip:
                    if idx == skip - 1 and rng_state is not None:
                        set_rng_state(rng_state)
                    continue
                self.run_iter(idx, data_batch)
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1
