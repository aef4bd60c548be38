"""tools/train.py end to end on a tiny model and tiny synthetic data: a
fine-tune killed after an epoch resumes (``--resume``) to exactly the result
of an uninterrupted run; 2-process DDP (gloo, CPU) trains the refiner and
leaves the frozen image model untouched on every rank.

Reproducibility of a resumed run (what has to be replayed, and how):

- model / optimizer / LR scheduler / message hub: restored from the
  checkpoint by MMEngine's ``Runner.resume``;
- sample order: ``DefaultSampler`` shuffles with ``seed + epoch``
  (``DistSamplerSeedHook`` sets the epoch), so epoch 2 draws the same order
  in both runs;
- augmentation (flip, rotation / scale, pseudo-clip shifts, degradations,
  clip lengths: global ``np.random`` / ``random`` in the data pipeline):
  not in any checkpoint. With ``num_workers >= 1`` and
  ``persistent_workers=False`` every epoch starts new workers that MMEngine's
  ``worker_init_fn`` seeds with ``seed + worker_id (+ rank)``, so an epoch's
  draws do not depend on the epochs before it and a resumed run replays
  them. With ``num_workers=0`` the pipeline draws from the main process's
  RNG, which continues across epochs and is re-seeded (not restored) on
  resume: that setting is not resumable bit for bit, so the config here
  pins ``num_workers=1, persistent_workers=False``. (A side effect of
  MMEngine's seeding: every epoch replays the same augmentation stream, in a
  different sample order.)
- no dropout, and the frozen model runs in eval mode, so the main process's
  torch RNG plays no part after the weights are built (and resumed weights
  come from the checkpoint).
"""
import copy
import json
import os
import os.path as osp
import runpy
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook

from mmpose.registry import DATASETS, HOOKS, MODELS
from mmstable.utils import safe_load
from test_freeze import TINY_MODEL  # the tiny HRNet + refiner of the tests

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
INPUT, HM, K = 64, 16, 68  # the synthetic faces have 300W's 68 landmarks
REFINER = ('head.cell.', 'head.in_proj.', 'head.out_proj.')


def tiny_config(data_root, image_ckpt, max_epochs=2):
    """The recipe of configs/wflw_hrnet_jitter.py on a tiny HRNet at 64x64:
    frozen image model + ConvLSTM refiner + JitterLoss + PDCCodec, pseudo-
    clips of the synthetic training faces (ImageSequenceDataset)."""
    heatmap = dict(type='MSRAHeatmap', input_size=(INPUT, INPUT),
                   heatmap_size=(HM, HM), sigma=1.5)
    codec = dict(heatmap, type='PDCCodec', pdc_threshold=0.2)
    model = copy.deepcopy(TINY_MODEL)
    model['head']['base_head'].update(out_channels=K, decoder=heatmap)
    model['head'].update(decoder=codec)
    pipeline = [
        dict(type='LoadImage'),
        dict(type='GetBBoxCenterScale', padding=1.25),
        dict(type='RandomFlip', direction='horizontal'),
        dict(type='RandomBBoxTransform', shift_prob=0, rotate_factor=30,
             scale_factor=(0.75, 1.25)),
        dict(type='MakeShiftedClip', max_shift=2.0),
        dict(type='ApplyToFrames', transforms=[
            dict(type='ShiftedTopdownAffine', input_size=(INPUT, INPUT)),
            dict(type='VideoDegradation'),
            dict(type='GenerateTarget', encoder=codec)]),
        dict(type='PackClipInputs')
    ]
    return Config(dict(
        default_scope='mmpose',
        custom_imports=dict(imports=['mmstable'],
                            allow_failed_imports=False),
        randomness=dict(seed=0, deterministic=True),
        model=model,
        load_from=image_ckpt,
        train_dataloader=dict(
            batch_size=2,
            num_workers=1, persistent_workers=False,  # see module docstring
            sampler=dict(type='DefaultSampler', shuffle=True),
            collate_fn=dict(type='clip_collate'),
            dataset=dict(
                type='ImageSequenceDataset', clip_len=(2, 3),
                pipeline=pipeline,
                dataset=dict(type='SyntheticFaceVideoDataset',
                             **synthetic_data(data_root)))),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        optim_wrapper=dict(optimizer=dict(type='Adam', lr=1e-2)),
        param_scheduler=[dict(type='MultiStepLR', milestones=[1],
                              gamma=0.5, by_epoch=True)],
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=1),
            logger=dict(type='LoggerHook', interval=1)),
        log_level='WARNING',
    ))


def synthetic_data(data_root):
    return dict(data_root=str(data_root), split='train', as_images=True,
                num_videos=2, num_frames=4,
                generator=dict(image_size=INPUT, face_size=(28., 40.)))


@pytest.fixture(scope='module')
def tiny_setup(tmp_path_factory):
    """Synthetic data (generated once), a checkpoint of the plain tiny image
    model (as a zoo checkpoint: ``head.final_layer...``), the config file."""
    root = tmp_path_factory.mktemp('tiny_train')
    DATASETS.build(dict(type='SyntheticFaceVideoDataset',
                        **synthetic_data(root / 'data')))
    plain = copy.deepcopy(tiny_config(root / 'data', None).model)
    plain['type'] = 'TopdownPoseEstimator'
    plain['head'] = plain['head']['base_head']
    torch.manual_seed(0)
    # PyTorch's default init, not MMPose's std=0.001 head (whose ~1e-13
    # heatmaps would leave the refiner nothing to learn from)
    image_model = MODELS.build(plain)
    image_ckpt = str(root / 'image_model.pth')
    torch.save(dict(state_dict=image_model.state_dict()), image_ckpt)
    cfg_file = str(root / 'tiny_jitter.py')
    tiny_config(root / 'data', image_ckpt).dump(cfg_file)
    return dict(root=root, cfg=cfg_file, image_ckpt=image_ckpt,
                image_state=image_model.state_dict())


@pytest.fixture
def restore_torch_determinism():
    # randomness.deterministic=True flips a process-wide torch switch
    before = torch.are_deterministic_algorithms_enabled()
    yield
    torch.use_deterministic_algorithms(before)


class _Killed(RuntimeError):
    pass


@HOOKS.register_module(force=True)
class KillAtEpochHook(Hook):
    """Simulates a crash: raises at the first iteration of ``epoch``
    (0-based), i.e. after the checkpoint of the epoch before was written."""

    def __init__(self, epoch):
        self.epoch = epoch

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.epoch == self.epoch:
            raise _Killed(f'killed at epoch {runner.epoch + 1}')


def _state(path):
    return safe_load(str(path))['state_dict']


def _frozen(state):
    return {k: v for k, v in state.items() if not k.startswith(REFINER)}


def _assert_frozen_is_image_model(state, image_state):
    frozen = _frozen(state)
    renamed = {k.replace('head.', 'head.base_head.', 1): v
               for k, v in image_state.items()}
    assert frozen.keys() == renamed.keys()
    for key, value in renamed.items():
        assert torch.equal(frozen[key], value), f'{key} changed'


def test_resume_after_a_crash_equals_an_uninterrupted_run(
        tiny_setup, monkeypatch, restore_torch_determinism):
    train_main = runpy.run_path(osp.join(REPO, 'tools', 'train.py'))['main']
    monkeypatch.setattr(sys, 'argv', list(sys.argv))  # main() rewrites it
    root, cfg = tiny_setup['root'], tiny_setup['cfg']

    full = train_main([cfg, '--work-dir', str(root / 'full'), '--cfg-options',
                       'experiment_name=full'])
    assert full.iter == 8  # 2 epochs of 4 iterations

    crash_cfg = root / 'tiny_jitter_crash.py'
    crash_cfg.write_text(f'_base_ = {cfg!r}\n'
                         "custom_hooks = [dict(type='KillAtEpochHook', "
                         'epoch=1)]\n')
    with pytest.raises(_Killed):
        train_main([str(crash_cfg), '--work-dir', str(root / 'crash'),
                    '--cfg-options', 'experiment_name=crash'])
    assert (root / 'crash' / 'epoch_1.pth').is_file()
    assert not (root / 'crash' / 'epoch_2.pth').exists()

    resumed = train_main([cfg, '--work-dir', str(root / 'crash'), '--resume',
                          '--cfg-options', 'experiment_name=resumed'])
    assert resumed.iter == 8 and resumed.epoch == 2

    epoch1 = _state(root / 'full' / 'epoch_1.pth')
    expected = _state(root / 'full' / 'epoch_2.pth')
    got = _state(root / 'crash' / 'epoch_2.pth')
    refiner = [k for k in expected if k.startswith(REFINER)]
    assert refiner
    # not trivially equal: epoch 2 moved the refiner far more than the
    # tolerance (so replaying other samples / draws would show)
    moved = max((expected[k] - epoch1[k]).abs().max().item() for k in refiner)
    assert moved > 1e-3, moved
    for key in refiner:
        torch.testing.assert_close(got[key], expected[key], rtol=1e-6,
                                   atol=1e-7, msg=lambda m, k=key: f'{k}: {m}')
    for state in (expected, got):
        _assert_frozen_is_image_model(state, tiny_setup['image_state'])


# Runs tools/train.py under torch.distributed.run on CPU (tools/train.py
# handles CPU DDP: gloo, no torch.cuda.set_device, device_ids=None); the
# launcher only saves each rank's weights after training.
_LAUNCHER = '''
import json, os.path as osp, runpy, sys
import torch
runner = runpy.run_path({train!r})['main'](sys.argv[1:])
model = getattr(runner.model, 'module', runner.model)
torch.save(model.state_dict(), osp.join(runner.work_dir,
                                        f'rank{{runner.rank}}.pth'))
with open(osp.join(runner.work_dir, f'rank{{runner.rank}}.json'), 'w') as f:
    json.dump(dict(wrapper=type(runner.model).__name__,
                   world_size=runner.world_size), f)
'''


def test_ddp_two_processes_gloo_cpu(tiny_setup, tmp_path):
    launcher = tmp_path / 'launch_train.py'
    launcher.write_text(
        _LAUNCHER.format(train=osp.join(REPO, 'tools', 'train.py')))
    work_dir = tmp_path / 'ddp'
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1',
               PYTHONPATH=os.pathsep.join(
                   [REPO, os.environ.get('PYTHONPATH', '')]))
    cmd = [
        sys.executable, '-m', 'torch.distributed.run', '--standalone',
        '--nproc_per_node', '2',
        str(launcher), tiny_setup['cfg'], '--launcher', 'pytorch',
        '--work-dir', str(work_dir), '--cfg-options',
        'train_cfg.max_epochs=1', 'experiment_name=ddp'
    ]
    proc = subprocess.run(cmd, env=env, cwd=str(tmp_path), timeout=240,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]

    for rank in (0, 1):
        info = json.loads((work_dir / f'rank{rank}.json').read_text())
        assert info == dict(wrapper='MMDistributedDataParallel', world_size=2)
    ckpt = _state(work_dir / 'epoch_1.pth')
    ranks = [torch.load(work_dir / f'rank{r}.pth', weights_only=True)
             for r in (0, 1)]
    for key, value in ckpt.items():
        for state in ranks:  # DDP kept the ranks in step
            assert torch.equal(state[key], value), key
    _assert_frozen_is_image_model(ckpt, tiny_setup['image_state'])
    image_init = MODELS.build(
        Config.fromfile(tiny_setup['cfg']).model).state_dict()
    assert any(not torch.equal(ckpt[k], image_init[k])
               for k in ckpt if k.startswith('head.out_proj.')), \
        'the refiner did not train'
