"""ResumableEpochBasedTrainLoop + RNGStateHook in one process, data loaded
in the main process (``num_workers=0``) by a pipeline that draws from numpy's
global RNG and a model with dropout (torch's RNG): a run stopped after an
iteration checkpoint -- in the middle of an epoch, or at its end -- and
resumed gives the same losses and weights as an uninterrupted run. (The
kill -9 / data-worker case: tests/test_train_resume_ddp.py.)"""
import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner

from mmstable.utils import safe_load


class _DropoutToy(BaseModel):

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 1)
        self.drop = nn.Dropout(0.5)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.fc(self.drop(torch.stack(inputs)))
        if mode == 'loss':
            return dict(loss=(out**2).mean())
        return out


class _NoisyDataset(torch.utils.data.Dataset):
    """Each item: its index plus numpy noise (an 'augmentation')."""

    def __len__(self):
        return 8

    def __getitem__(self, i):
        noise = np.random.normal(0, 1, 4).astype(np.float32)
        return dict(inputs=torch.from_numpy(noise + i / 8))


class _Stop(RuntimeError):
    pass


class _Record(Hook):
    """Records each iteration's loss; raises before ``stop_at`` (0-based
    global iteration) to end the run."""

    def __init__(self, stop_at=None):
        self.losses, self.stop_at = {}, stop_at

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter == self.stop_at:
            raise _Stop()

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.losses[runner.iter] = outputs['loss'].item()


def _run(work_dir, stop_at=None, resume=False, by_epoch=False):
    record = _Record(stop_at)
    torch.manual_seed(0)  # the same initial weights in every run
    runner = Runner(
        model=_DropoutToy(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=_NoisyDataset(),
            sampler=dict(type='DefaultSampler', shuffle=True),
            batch_size=2,
            num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(type='ResumableEpochBasedTrainLoop', max_epochs=2),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook',
                                           by_epoch=by_epoch, interval=1)),
        custom_hooks=[record],
        randomness=dict(seed=7),
        default_scope='mmpose',
        resume=resume,
        experiment_name=f'loop_{work_dir.name}_{stop_at}_{resume}')
    try:
        runner.train()
    except _Stop:
        pass
    return record.losses


@pytest.mark.parametrize('stop_at,by_epoch', [
    (6, False),  # iteration checkpoint in the middle of epoch 2
    (4, False),  # iteration checkpoint after the last batch of epoch 1
    (4, True),  # epoch checkpoint (no RNG restored: epoch 2 is reseeded)
])
def test_stop_and_resume_equals_uninterrupted(tmp_path, stop_at, by_epoch):
    full = _run(tmp_path / 'full', by_epoch=by_epoch)
    assert sorted(full) == list(range(8))
    assert len(set(full.values())) == 8  # every iteration draws differently

    first = _run(tmp_path / 'cut', stop_at=stop_at, by_epoch=by_epoch)
    assert sorted(first) == list(range(stop_at))
    rest = _run(tmp_path / 'cut', resume=True, by_epoch=by_epoch)
    assert sorted(rest) == list(range(stop_at, 8))  # no batch twice
    assert {**first, **rest} == full

    name = 'epoch_2.pth' if by_epoch else 'iter_8.pth'
    expected = safe_load(str(tmp_path / 'full' / name))
    got = safe_load(str(tmp_path / 'cut' / name))
    for key, value in expected['state_dict'].items():
        assert torch.equal(got['state_dict'][key], value), key
    assert set(got['rng_state']) >= {'torch', 'numpy', 'random'}


def test_epochs_draw_differently(tmp_path):
    """Per-epoch seeds: epoch 2 is not a replay of epoch 1's draws."""
    losses = _run(tmp_path / 'a')
    assert sorted(losses[i] for i in range(4)) != sorted(
        losses[i] for i in range(4, 8))
