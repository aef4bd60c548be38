"""tools/train.py end to end on a tiny model and tiny synthetic data: a
2-epoch fine-tune killed with SIGKILL in the middle of epoch 2 and resumed
with ``--resume`` (and ``--cfg-options load_from=<image model>``, as
``tools/demo.py`` passes it) continues exactly like an uninterrupted run:
same per-iteration losses after the resume, same final weights, same
validation metrics; 2-process DDP (gloo, CPU) trains the refiner and leaves
the frozen image model untouched on every rank.

How a resumed run replays what the killed one would have drawn
(``ResumableEpochBasedTrainLoop``, which tools/train.py uses for every
epoch-based config, and ``RNGStateHook``):

- model / optimizer / LR scheduler / message hub: ``Runner.resume``;
- sample order: MMEngine's ``DefaultSampler`` shuffles with seed + epoch;
- augmentation in the data workers (``num_workers >= 1``): every epoch gets
  new workers seeded from (seed, epoch, rank, worker); the resumed run
  re-draws the epoch's first batches (loads and discards them) so the
  workers reach the state they had at the checkpoint (``persistent_workers``
  is turned off by the loop: the config below asks for it, as the demo's
  does, to prove that);
- the main process's torch / numpy / random state: reseeded from (seed,
  epoch) at each epoch start, and restored from the checkpoint
  (``rng_state``) when resuming mid-epoch.
"""
import copy
import glob
import json
import os
import os.path as osp
import signal
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

from mmpose.registry import DATASETS, MODELS
from mmstable.utils import safe_load
from test_freeze import TINY_MODEL  # the tiny HRNet + refiner of the tests

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
INPUT, HM, K = 64, 16, 68  # the synthetic faces have 300W's 68 landmarks
# the image model's weights; everything else under head. is the refiner's
IMAGE_MODEL = ('backbone.', 'neck.', 'head.base_head.')


def _is_refiner(key):
    return key.startswith('head.') and not key.startswith(IMAGE_MODEL)


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
            num_workers=1, persistent_workers=True,  # see module docstring
            sampler=dict(type='DefaultSampler', shuffle=True),
            collate_fn=dict(type='clip_collate'),
            dataset=dict(
                type='ImageSequenceDataset', clip_len=(2, 3),
                pipeline=pipeline,
                dataset=dict(type='SyntheticFaceVideoDataset',
                             **synthetic_data(data_root)))),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs,
                       val_interval=max_epochs),
        optim_wrapper=dict(optimizer=dict(type='Adam', lr=1e-2)),
        param_scheduler=[dict(type='MultiStepLR', milestones=[1],
                              gamma=0.5, by_epoch=True)],
        # a checkpoint after every iteration: a kill mid-epoch loses nothing
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', by_epoch=False,
                            interval=1),
            logger=dict(type='LoggerHook', interval=1)),
        log_processor=dict(window_size=1),  # log each iteration's own loss
        val_cfg=dict(),
        val_dataloader=dict(
            batch_size=4, num_workers=0,
            sampler=dict(type='VideoSampler'),
            dataset=dict(type='SyntheticFaceVideoDataset', test_mode=True,
                         pipeline=[
                             dict(type='LoadImage'),
                             dict(type='GetBBoxCenterScale', padding=1.25),
                             dict(type='TopdownAffine',
                                  input_size=(INPUT, INPUT)),
                             dict(type='PackClipInputs')],
                         **synthetic_data(data_root, 'test'))),
        val_evaluator=[dict(type='MCV'), dict(type='MAV')],
        log_level='WARNING',
    ))


def synthetic_data(data_root, split='train'):
    return dict(data_root=str(data_root), split=split,
                as_images=split == 'train', num_videos=2, num_frames=4,
                generator=dict(image_size=INPUT, face_size=(28., 40.)))


@pytest.fixture(scope='module')
def tiny_setup(tmp_path_factory):
    """Synthetic data (generated once), a checkpoint of the plain tiny image
    model (as a zoo checkpoint: ``head.final_layer...``), the config file."""
    root = tmp_path_factory.mktemp('tiny_train')
    for split in ('train', 'test'):
        DATASETS.build(dict(type='SyntheticFaceVideoDataset',
                            **synthetic_data(root / 'data', split)))
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


def _state(path):
    return safe_load(str(path))['state_dict']


def _frozen(state):
    return {k: v for k, v in state.items() if not _is_refiner(k)}


def _assert_frozen_is_image_model(state, image_state):
    frozen = _frozen(state)
    renamed = {k.replace('head.', 'head.base_head.', 1): v
               for k, v in image_state.items()}
    assert frozen.keys() == renamed.keys()
    for key, value in renamed.items():
        assert torch.equal(frozen[key], value), f'{key} changed'


# tools/train.py in a subprocess; KillAtIterHook ends the process with
# SIGKILL (no cleanup, no exception handling: a real `kill -9`) before the
# given 0-based global iteration runs.
_TRAIN = '''
import os, runpy, signal, sys
from mmengine.hooks import Hook
from mmpose.registry import HOOKS

@HOOKS.register_module()
class KillAtIterHook(Hook):
    def __init__(self, at_iter):
        self.at_iter = at_iter

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter == self.at_iter:
            os.kill(os.getpid(), signal.SIGKILL)

runpy.run_path({train!r})['main'](sys.argv[1:])
'''


def _train(script, *args, cwd):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1',
               PYTHONPATH=os.pathsep.join(
                   [REPO, os.environ.get('PYTHONPATH', '')]))
    return subprocess.Popen([sys.executable, str(script), *map(str, args)],
                            env=env, cwd=str(cwd), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _scalars(work_dir):
    """Every logged record of all the runs in ``work_dir`` (in run order):
    ``{iter: train record}``, ``{step: val record}``."""
    train, val = {}, {}
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                          'scalars.json'))):
        with open(path) as f:
            for line in f:
                rec = json.loads(line)
                if 'loss' in rec:
                    train.setdefault(rec['iter'], []).append(rec)
                else:
                    val.setdefault(rec['step'], []).append(rec)
    return train, val


def test_kill_9_mid_epoch_then_resume_continues_exactly(tiny_setup,
                                                        tmp_path):
    """2 epochs of 4 iterations; the killed run dies before iteration 7
    (epoch 2, its 3rd batch) with iter_6.pth written."""
    root, cfg = tiny_setup['root'], tiny_setup['cfg']
    script = tmp_path / 'train_with_kill.py'
    script.write_text(_TRAIN.format(train=osp.join(REPO, 'tools',
                                                   'train.py')))
    crash_cfg = tmp_path / 'tiny_jitter_crash.py'
    crash_cfg.write_text(f'_base_ = {cfg!r}\n'
                         "custom_hooks = [dict(type='KillAtIterHook', "
                         'at_iter=6)]\n')
    full_dir, crash_dir = tmp_path / 'full', tmp_path / 'crash'
    # the two runs are independent: run them side by side
    full = _train(script, cfg, '--work-dir', full_dir, cwd=tmp_path)
    crash = _train(script, crash_cfg, '--work-dir', crash_dir, cwd=tmp_path)
    out_full, _ = full.communicate(timeout=300)
    out_crash, _ = crash.communicate(timeout=300)
    assert full.returncode == 0, out_full[-5000:]
    assert crash.returncode == -signal.SIGKILL, out_crash[-5000:]
    assert (crash_dir / 'iter_6.pth').is_file()
    assert not (crash_dir / 'iter_7.pth').exists()

    # --resume with load_from=<image model>: resumes from iter_6.pth (the
    # run's own last checkpoint), not from the image model
    resumed = _train(script, cfg, '--work-dir', crash_dir, '--resume',
                     '--cfg-options', f'load_from={tiny_setup["image_ckpt"]}',
                     cwd=tmp_path)
    out_resumed, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out_resumed[-5000:]

    train_full, val_full = _scalars(full_dir)
    train_crash, val_crash = _scalars(crash_dir)
    assert sorted(train_full) == list(range(1, 9))
    # iterations 1-6 from the killed run, 7-8 from the resumed one, once each
    assert sorted(train_crash) == list(range(1, 9))
    assert all(len(recs) == 1 for recs in train_crash.values())
    for it in range(1, 9):
        got, expected = train_crash[it][0], train_full[it][0]
        assert got['loss'] == expected['loss'], (it, got, expected)
        assert got['lr'] == expected['lr'], (it, got, expected)
    # the losses differ from iteration to iteration (a replay of the wrong
    # batch or augmentation would show)
    losses = [train_full[it][0]['loss'] for it in range(1, 9)]
    assert len(set(losses)) == 8, losses

    # same final weights, bit for bit; the refiner did move in epoch 2
    expected = _state(full_dir / 'iter_8.pth')
    got = _state(crash_dir / 'iter_8.pth')
    assert got.keys() == expected.keys()
    differ = {k: (got[k] - expected[k]).abs().max().item() for k in expected
              if not torch.equal(got[k], expected[k])}
    assert not differ, differ
    epoch1 = _state(full_dir / 'iter_4.pth')
    refiner = [k for k in expected if _is_refiner(k)]
    assert refiner
    assert max((expected[k] - epoch1[k]).abs().max().item()
               for k in refiner) > 1e-3
    for state in (expected, got):
        _assert_frozen_is_image_model(state, tiny_setup['image_state'])

    # same validation metrics after epoch 2
    assert list(val_full) == [2] and list(val_crash) == [2], (val_full,
                                                             val_crash)
    metrics = {k: v for k, v in val_full[2][0].items()
               if k not in ('step', 'time', 'data_time')}
    assert {'MCV', 'MAV'} <= {k.split('/')[-1] for k in metrics}, metrics
    assert {k: val_crash[2][0][k] for k in metrics} == metrics


# Runs tools/train.py under torch.distributed.run on CPU (tools/train.py
# handles CPU DDP: gloo, no torch.cuda.set_device, device_ids=None); the
# launcher only saves each rank's weights after training.
_LAUNCHER = '''
import json, os.path as osp, runpy, sys
import torch
set_device = torch.cuda.set_device
runner = runpy.run_path({train!r})['main'](sys.argv[1:])
model = getattr(runner.model, 'module', runner.model)
torch.save(model.state_dict(), osp.join(runner.work_dir,
                                        f'rank{{runner.rank}}.pth'))
with open(osp.join(runner.work_dir, f'rank{{runner.rank}}.json'), 'w') as f:
    json.dump(dict(wrapper=type(runner.model).__name__,
                   world_size=runner.world_size,
                   set_device_restored=torch.cuda.set_device is set_device),
              f)
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
        '--work-dir', str(work_dir), '--no-validate', '--cfg-options',
        'train_cfg.max_epochs=1', 'experiment_name=ddp'
    ]
    proc = subprocess.run(cmd, env=env, cwd=str(tmp_path), timeout=240,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]

    for rank in (0, 1):
        info = json.loads((work_dir / f'rank{rank}.json').read_text())
        # the CPU-DDP bypass of torch.cuda.set_device ended with the run
        assert info == dict(wrapper='MMDistributedDataParallel', world_size=2,
                            set_device_restored=True)
    ckpt = _state((work_dir / 'last_checkpoint').read_text().strip())
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
