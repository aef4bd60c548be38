"""Issue 12, items 3, 10 (checkpoints) and 11: a checkpoint that does not fit
the model is an error naming the keys; empty / truncated / non-checkpoint /
unsafe files are refused with one line naming the file; the tools turn these
into one line and a non-zero exit; the CPU-DDP bypass of
``torch.cuda.set_device`` is scoped; ``--resume`` with ``load_from``."""
import os
import os.path as osp
import runpy
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import load_checkpoint

from mmpose.registry import MODELS
from test_train_resume_ddp import tiny_setup  # noqa: F401  (fixture)
from mmstable.utils import (CheckpointError, CheckpointMismatchError,
                            CorruptCheckpointError, UnsafeCheckpointError,
                            allow_partial_load, install_checkpoint_fit_check,
                            safe_load)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO_IMAGE = osp.join(REPO, 'configs', 'demo', 'synthetic_image_model.py')
DEMO_JITTER = osp.join(REPO, 'configs', 'demo', 'synthetic_jitter.py')


# ------------------------------------------------------------ bad files
class _SystemPayload:
    """``os.system('touch MARKER')`` when unpickled."""
    marker = None

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


@pytest.fixture
def bad_checkpoints(tmp_path):
    marker = tmp_path / 'payload_ran'
    _SystemPayload.marker = str(marker)
    files = dict(
        empty=tmp_path / 'empty.pth',
        truncated=tmp_path / 'truncated.pth',
        text=tmp_path / 'notes.pth',
        payload=tmp_path / 'evil.pth')
    files['empty'].write_bytes(b'')
    torch.save(dict(state_dict={'w': torch.ones(1000)}),
               files['truncated'])
    data = files['truncated'].read_bytes()
    files['truncated'].write_bytes(data[:len(data) // 2])
    files['text'].write_text('these are not weights\n')
    torch.save(dict(state_dict={'w': torch.ones(1)}, meta=_SystemPayload()),
               files['payload'])
    assert not marker.exists()
    return files, marker


def test_empty_and_truncated_checkpoints_say_so(bad_checkpoints):
    files, _ = bad_checkpoints
    for kind in ('empty', 'truncated'):
        with pytest.raises(CorruptCheckpointError) as e:
            safe_load(str(files[kind]))
        msg = str(e.value)
        assert str(files[kind]) in msg and 'empty or truncated' in msg
        assert '\n' not in msg


def test_text_file_is_not_a_checkpoint_not_an_unsafe_global(
        bad_checkpoints):
    files, _ = bad_checkpoints
    with pytest.raises(CorruptCheckpointError) as e:
        safe_load(str(files['text']))
    msg = str(e.value)
    assert 'notes.pth' in msg and 'not a PyTorch checkpoint' in msg
    assert 'global' not in msg and not isinstance(e.value,
                                                  UnsafeCheckpointError)


def test_os_system_payload_names_the_global_and_never_runs(bad_checkpoints):
    files, marker = bad_checkpoints
    with pytest.raises(UnsafeCheckpointError) as e:
        load_checkpoint(torch.nn.Linear(1, 1), str(files['payload']))
    msg = str(e.value)
    assert 'evil.pth' in msg
    # os.system pickles as posix.system (nt.system on Windows)
    assert f'{os.system.__module__}.system' in msg, msg
    assert 'will likely succeed' not in msg and 'weights_only' not in msg
    assert '\n' not in msg
    assert not marker.exists()


def test_tools_print_one_line_and_exit_non_zero(bad_checkpoints, tmp_path,
                                                tiny_setup):
    """tools/train.py (``load_from``) in a fresh process: no traceback."""
    files, marker = bad_checkpoints
    # (empty / text files: the safe_load tests above and tools/test.py
    # below; every Runner build costs seconds)
    expected = {'payload': f'{os.system.__module__}.system'}
    env = dict(os.environ, OMP_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='')
    # a driver that runs main() per file and prints how it exited
    driver = tmp_path / 'drive.py'
    driver.write_text(
        'import runpy, sys\n'
        f'main = runpy.run_path({osp.join(REPO, "tools", "train.py")!r})'
        "['main']\n"
        'for ckpt in sys.argv[1:]:\n'
        '    try:\n'
        f'        main([{tiny_setup["cfg"]!r}, "--work-dir", '
        f'{str(tmp_path)!r},\n'
        '              "--cfg-options", "load_from=" + ckpt])\n'
        '    except SystemExit as e:\n'
        '        print("EXIT", e.code, file=sys.stderr)\n')
    proc = subprocess.run(
        [sys.executable, str(driver), *(str(files[k]) for k in expected)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    out = proc.stdout + proc.stderr
    assert 'Traceback' not in out, out[-3000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith('EXIT')]
    assert len(lines) == len(expected), out[-3000:]
    for line, kind in zip(lines, expected):
        assert line.startswith('EXIT tools/train.py: error: '), line
        assert str(files[kind]) in line and expected[kind] in line, line
    assert not marker.exists()


# ------------------------------------------------- checkpoint fits the model
@pytest.fixture(scope='module')
def demo_checkpoints(tmp_path_factory):
    """Weights of the demo's image model with 98 and with 68 landmarks."""
    root = tmp_path_factory.mktemp('fit')
    paths = {}
    for k in (98, 68):
        cfg = Config.fromfile(DEMO_IMAGE)
        cfg.model.head.out_channels = k
        torch.manual_seed(k)
        model = MODELS.build(cfg.model)
        paths[k] = str(root / f'image_{k}.pth')
        torch.save(dict(state_dict=model.state_dict()), paths[k])
    return paths


def _jitter_model():
    return MODELS.build(Config.fromfile(DEMO_JITTER).model)


def test_98_point_weights_in_68_point_demo_config_is_an_error(
        demo_checkpoints):
    model = _jitter_model()  # StableTopdownPoseEstimator: checks by itself
    with pytest.raises(CheckpointMismatchError) as e:
        load_checkpoint(model, demo_checkpoints[98])
    msg = str(e.value)
    for key in ('head.base_head.final_layer.weight',
                'head.base_head.final_layer.bias'):
        assert key in msg, msg
    assert '[98, 64, 1, 1]' in msg and '[68, 64, 1, 1]' in msg, msg
    assert 'allow_partial_load' in msg
    # the same through torch's own load_state_dict
    with pytest.raises(CheckpointMismatchError):
        model.load_state_dict(safe_load(demo_checkpoints[98])['state_dict'],
                              strict=False)


def test_image_model_weights_into_refiner_model_is_the_fine_tune_case(
        demo_checkpoints):
    model = _jitter_model()
    load_checkpoint(model, demo_checkpoints[68])  # refiner keys missing: ok
    expected = safe_load(demo_checkpoints[68])['state_dict']
    assert torch.equal(model.head.base_head.final_layer.weight,
                       expected['head.final_layer.weight'])


def test_missing_image_model_weights_are_an_error(demo_checkpoints,
                                                  tmp_path):
    state = safe_load(demo_checkpoints[68])['state_dict']
    del state['backbone.conv1.weight']
    path = tmp_path / 'no_stem.pth'
    torch.save(state, path)
    # a plain MMPose model (no refiner) guarded by the tools' call
    model = install_checkpoint_fit_check(
        MODELS.build(Config.fromfile(DEMO_IMAGE).model))
    with pytest.raises(CheckpointMismatchError, match='backbone.conv1.weight'):
        load_checkpoint(model, str(path))


def test_allow_partial_load_is_the_explicit_way_out(demo_checkpoints):
    model = _jitter_model()
    before = model.head.base_head.final_layer.weight.clone()
    with allow_partial_load():
        load_checkpoint(model, demo_checkpoints[98])
    # MMEngine's partial load: the mismatched layer keeps its init
    assert torch.equal(model.head.base_head.final_layer.weight, before)
    with pytest.raises(CheckpointMismatchError):  # the block has ended
        load_checkpoint(model, demo_checkpoints[98])


def test_tools_test_refuses_weights_that_do_not_fit(demo_checkpoints,
                                                    bad_checkpoints,
                                                    monkeypatch, tmp_path):
    main = runpy.run_path(osp.join(REPO, 'tools', 'test.py'))['main']
    monkeypatch.setattr(sys, 'argv', list(sys.argv))  # main() rewrites it
    monkeypatch.chdir(REPO)  # the demo config's data_root is relative
    files, marker = bad_checkpoints
    for ckpt, expected in ((demo_checkpoints[98],
                            'head.base_head.final_layer.weight'),
                           (str(files['empty']), 'empty or truncated')):
        with pytest.raises(SystemExit) as e:
            main([DEMO_JITTER, ckpt, '--work-dir', str(tmp_path)])
        msg = str(e.value.code)
        assert msg.startswith('tools/test.py: error: '), msg
        assert ckpt in msg, msg
        assert expected in msg and '\n' not in msg, msg
    assert not marker.exists()


def test_init_model_refuses_weights_that_do_not_fit(demo_checkpoints):
    from mmstable.apis import init_model
    with pytest.raises(CheckpointError, match='final_layer'):
        init_model(DEMO_JITTER, demo_checkpoints[98], device='cpu')


# ---------------------------------------------------------------- train tool
def test_cpu_distributed_patch_is_scoped():
    from mmstable.engine.runner import cpu_distributed
    original = torch.cuda.set_device
    cfg = Config(dict(env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    with cpu_distributed(cfg):
        assert torch.cuda.set_device is not original
        torch.cuda.set_device(3)  # a no-op inside
    assert torch.cuda.set_device is original
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.model_wrapper_cfg.device_ids is None
    with pytest.raises(ValueError):
        with cpu_distributed(Config()):
            raise ValueError('build failed')
    assert torch.cuda.set_device is original  # also after an error


def test_auto_resume_prefers_the_runs_own_checkpoint(tmp_path):
    from mmstable.engine.runner import resolve_auto_resume
    cfg = Config(dict(work_dir=str(tmp_path), load_from='image.pth',
                      resume=True))
    resolve_auto_resume(cfg, 'auto')  # nothing of this run yet
    assert cfg.resume is False and cfg.load_from == 'image.pth'
    (tmp_path / 'iter_6.pth').write_bytes(b'x')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_6.pth'))
    cfg = Config(dict(work_dir=str(tmp_path), load_from='image.pth',
                      resume=True))
    resolve_auto_resume(cfg, 'auto')
    assert cfg.resume is True
    assert cfg.load_from == str(tmp_path / 'iter_6.pth')
    cfg = Config(dict(work_dir=str(tmp_path), load_from='given.pth',
                      resume=True))
    resolve_auto_resume(cfg, 'given.pth')  # --resume PATH: untouched
    assert cfg.load_from == 'given.pth' and cfg.resume is True


def test_epoch_based_configs_train_in_the_resumable_loop():
    from mmstable.engine.runner import use_resumable_loop
    cfg = Config(dict(train_cfg=dict(by_epoch=True, max_epochs=3,
                                     val_interval=2)))
    use_resumable_loop(cfg)
    assert cfg.train_cfg == dict(type='ResumableEpochBasedTrainLoop',
                                 max_epochs=3, val_interval=2)
    cfg = Config(dict(train_cfg=dict(by_epoch=False, max_iters=10)))
    use_resumable_loop(cfg)
    assert cfg.train_cfg == dict(by_epoch=False, max_iters=10)


def test_unseeded_resume_takes_the_runs_seed(tmp_path):
    from mmstable.engine.runner import resume_with_the_runs_seed
    ckpt = tmp_path / 'iter_6.pth'
    torch.save(dict(state_dict={}, meta=dict(seed=123, iter=6)), ckpt)
    cfg = Config(dict(resume=True, load_from=str(ckpt),
                      randomness=dict(seed=None, deterministic=True)))
    resume_with_the_runs_seed(cfg)
    assert cfg.randomness == dict(seed=123, deterministic=True)
    cfg = Config(dict(resume=True, load_from=str(ckpt),
                      randomness=dict(seed=5)))
    resume_with_the_runs_seed(cfg)  # an explicit seed stays
    assert cfg.randomness.seed == 5
    cfg = Config(dict(resume=False, load_from=str(ckpt)))
    resume_with_the_runs_seed(cfg)  # not a resume: nothing read
    assert cfg.get('randomness') is None
