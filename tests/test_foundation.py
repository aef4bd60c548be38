"""Issue 2 (foundation): registration, config resolution, safe checkpoints."""
import os
import os.path as osp
import shutil

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.runner import CheckpointLoader, Runner, load_checkpoint

from mmstable.utils import UnsafeCheckpointError, safe_load

DATA = osp.join(osp.dirname(__file__), 'data')


def test_config_with_mmpose_base_builds_face_model_and_runs_forward():
    from mmpose.registry import MODELS
    cfg = Config.fromfile(osp.join(DATA, 'tiny_wflw_hrnet.py'))
    assert cfg.default_scope == 'mmpose'
    assert cfg.custom_imports.imports == ['mmstable']
    model = MODELS.build(cfg.model).eval()
    with torch.no_grad():
        heatmaps = model(torch.rand(1, 3, 256, 256), None, mode='tensor')
    assert tuple(heatmaps.shape) == (1, 98, 64, 64)


class _ToyModel(nn.Module):
    """A BaseModel with a BatchNorm, so the checkpoint has buffers too."""

    def __new__(cls, *args, **kwargs):
        from mmengine.model import BaseModel

        class Toy(BaseModel):

            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(2, 1)
                self.bn = nn.BatchNorm1d(1)

            def forward(self, inputs, data_samples=None, mode='tensor'):
                out = self.bn(self.fc(torch.stack(inputs)))
                if mode == 'loss':
                    return dict(loss=(out**2).mean())
                return out

        return Toy()


class _ToyDataset(torch.utils.data.Dataset):

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return dict(inputs=torch.full((2, ), float(i)))


def _runner(work_dir, max_epochs, **kwargs):
    return Runner(
        model=_ToyModel(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=_ToyDataset(),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=4,
            num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='Adam', lr=0.01)),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1)),
        default_scope='mmpose',
        experiment_name=f'toy{max_epochs}_{osp.basename(str(work_dir))}',
        **kwargs)


def test_runner_checkpoint_with_meta_and_message_hub_resumes(tmp_path):
    runner = _runner(tmp_path / 'a', max_epochs=1)
    runner.train()
    ckpt = tmp_path / 'a' / 'epoch_1.pth'
    # the file really needs the allow-list: plain weights_only loading fails
    with pytest.raises(Exception):
        torch.load(ckpt, weights_only=True)
    raw = safe_load(str(ckpt))
    assert 'message_hub' in raw and 'meta' in raw
    # add numpy objects as MMPose's dataset_meta has them
    raw['meta']['dataset_meta'] = dict(sigmas=np.ones(3, np.float32),
                                       flip_indices=[0, 2, 1],
                                       seed=np.int64(3))
    torch.save(raw, ckpt)

    resumed = _runner(tmp_path / 'b', max_epochs=2, resume=True,
                      load_from=str(ckpt))
    resumed.train()
    assert resumed.epoch == 2
    assert resumed.iter == 4
    # resume restored the message hub and optimizer state
    assert 'train/loss' in resumed.message_hub.log_scalars


class _Payload:
    marker = None

    def __reduce__(self):
        return (open, (self.marker, 'w'))


@pytest.mark.parametrize('scheme', ['local', 'https'])
def test_reduce_payload_is_refused_and_never_runs(tmp_path, monkeypatch,
                                                  scheme):
    marker = tmp_path / 'pwned'
    _Payload.marker = str(marker)
    path = tmp_path / 'evil.pth'
    torch.save(dict(state_dict={'w': torch.ones(1)}, meta=_Payload()), path)
    assert not marker.exists()
    filename = str(path)
    if scheme == 'https':
        # Serve the file as a "download" without network.
        def fake_download(url, dst, *args, **kwargs):
            shutil.copy(path, dst)

        monkeypatch.setattr(torch.hub, 'download_url_to_file', fake_download)
        monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'hub'))
        filename = 'https://example.invalid/evil-0123abcd.pth'
    with pytest.raises(UnsafeCheckpointError, match='builtins.open|open'):
        CheckpointLoader.load_checkpoint(filename)
    assert not marker.exists()


def test_init_cfg_pretrained_and_load_checkpoint_use_safe_loader(tmp_path):
    from mmpose.registry import MODELS
    src = nn.Linear(3, 2)
    path = tmp_path / 'zoo.pth'
    torch.save(
        dict(state_dict=src.state_dict(),
             meta=dict(dataset_meta=dict(sigmas=np.full(2, .1)))), path)
    dst = nn.Linear(3, 2)
    load_checkpoint(dst, str(path))
    assert torch.equal(dst.weight, src.weight)

    # init_cfg=Pretrained (MMEngine's PretrainedInit) goes the same way
    from mmengine.model import BaseModule

    class M(BaseModule):

        def __init__(self):
            super().__init__(
                init_cfg=dict(type='Pretrained', checkpoint=str(path)))
            self.lin = nn.Linear(3, 2)

    m = M()
    sd = {f'lin.{k}': v for k, v in src.state_dict().items()}
    torch.save(dict(state_dict=sd, meta=dict(x=np.zeros(1))), path)
    m.init_weights()
    assert torch.equal(m.lin.weight, src.weight)
    del MODELS


def test_missing_checkpoint_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        CheckpointLoader.load_checkpoint(str(tmp_path / 'nope.pth'))


def test_registries_hold_mmstable_modules():
    """Every registered name of the design card resolves in MMPose's scope."""
    from mmpose.registry import (DATASETS, KEYPOINT_CODECS, METRICS, MODELS)
    expected = [(KEYPOINT_CODECS, 'PDCCodec'), (MODELS, 'JitterLoss'),
                (MODELS, 'ConvLSTMRefineHead'), (METRICS, 'MCV'),
                (METRICS, 'MAV'), (DATASETS, 'ImageSequenceDataset'),
                (DATASETS, 'VideoClipDataset')]
    missing = [name for reg, name in expected if reg.get(name) is None]
    assert not missing, f'not registered: {missing}'


class _GetattrPayload:
    """Reaches for a method through ``getattr`` on an allowed class."""

    def __reduce__(self):
        return (getattr, (np.ndarray, 'tofile'))


def test_getattr_is_only_allowed_for_history_buffer_statistics(tmp_path):
    path = tmp_path / 'getattr.pth'
    torch.save(dict(meta=_GetattrPayload()), path)
    with pytest.raises(UnsafeCheckpointError, match='getattr'):
        safe_load(str(path))


def test_empty_numpy_arrays_load(tmp_path):
    """MMPose's WFLW/300W dataset_meta carries shape-(0,) arrays."""
    path = tmp_path / 'empty.pth'
    torch.save(dict(meta=dict(sigmas=np.zeros(0), colors=np.zeros((0, 3)))),
               path)
    meta = safe_load(str(path))['meta']
    assert meta['sigmas'].shape == (0, ) and meta['colors'].shape == (0, 3)


def test_runner_checkpoint_loads_in_a_fresh_process(tmp_path, monkeypatch):
    """``HistoryBuffer._statistics_methods`` fills lazily: a process that has
    not built a HistoryBuffer yet (``tools/train.py`` with ``load_from``)
    must still load a Runner checkpoint."""
    from mmengine.logging import HistoryBuffer
    runner = _runner(tmp_path / 'a', max_epochs=1)
    runner.train()
    monkeypatch.setattr(HistoryBuffer, '_statistics_methods', {})
    ckpt = safe_load(str(tmp_path / 'a' / 'epoch_1.pth'))
    assert 'message_hub' in ckpt


# ------------------------------------------ MMPose test data: skip vs fail
def test_missing_mmpose_testdata_skips_locally_and_fails_in_ci(monkeypatch):
    from conftest import missing_testdata_outcome
    monkeypatch.delenv('CI', raising=False)
    outcome, msg = missing_testdata_outcome()
    assert outcome is pytest.skip
    assert 'MMPose test data not found' in msg
    for value in ('true', 'True', '1'):
        monkeypatch.setenv('CI', value)
        assert missing_testdata_outcome()[0] is pytest.fail


def test_ci_run_without_mmpose_testdata_fails(tmp_path):
    """The whole chain in a pytest subprocess: a test that needs the data,
    CI=true, data absent -> the test FAILS (not skipped)."""
    import subprocess
    import sys
    repo = osp.dirname(osp.dirname(osp.abspath(__file__)))
    test = tmp_path / 'test_needs_data.py'
    test.write_text('def test_uses_data(mmpose_testdata):\n'
                    '    pass\n')
    # reuse tests/conftest.py: put the test file next to a copy of it
    shutil.copy(osp.join(repo, 'tests', 'conftest.py'), tmp_path)
    env = dict(os.environ, CI='true', OMP_NUM_THREADS='1',
               MMSTABLE_TESTDATA=str(tmp_path / 'absent'))
    proc = subprocess.run(
        [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider',
         str(test)], cwd=str(tmp_path), env=env, capture_output=True,
        text=True, timeout=120)
    # a failure in a fixture is reported as an error: exit code 1
    assert proc.returncode == 1, proc.stdout[-2000:]
    assert '1 error' in proc.stdout and ' skipped' not in proc.stdout[-200:]
    assert 'MMPose test data not found' in proc.stdout, proc.stdout[-2000:]
