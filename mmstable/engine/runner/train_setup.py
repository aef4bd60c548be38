"""What ``tools/train.py`` does to a config before it builds the Runner
(kept here, in the package, so the tool only parses and prints)."""
import contextlib
import os.path as osp

import torch
from mmengine.runner import find_latest_checkpoint


def use_resumable_loop(cfg) -> None:
    """An epoch-based ``train_cfg`` (``by_epoch=True`` or MMEngine's
    ``EpochBasedTrainLoop``) becomes
    :class:`~mmstable.engine.runner.ResumableEpochBasedTrainLoop`, so that
    ``--resume`` continues exactly. Other loops are left alone."""
    train_cfg = cfg.get('train_cfg')
    if not train_cfg:
        return
    train_cfg = dict(train_cfg)
    if train_cfg.pop('by_epoch', None) is True and 'type' not in train_cfg:
        cfg.train_cfg = dict(type='ResumableEpochBasedTrainLoop', **train_cfg)
    elif train_cfg.get('type') in ('EpochBasedTrainLoop',
                                   'mmengine.EpochBasedTrainLoop'):
        cfg.train_cfg = dict(train_cfg, type='ResumableEpochBasedTrainLoop')


def resolve_auto_resume(cfg, resume_arg) -> None:
    """``--resume`` without a path means "continue this run": resume from
    the last checkpoint of ``cfg.work_dir`` even when ``load_from`` is set
    (``--cfg-options load_from=<image model>``, as ``tools/demo.py`` passes
    it, is where the run *started*; MMEngine would resume from it and fail
    on the optimizer's parameter groups). With no checkpoint in the work
    dir yet, the run starts from ``load_from`` as a fresh run."""
    if resume_arg != 'auto':
        return
    latest = find_latest_checkpoint(cfg.work_dir) if osp.isdir(
        cfg.work_dir) else None
    if latest is not None:
        cfg.resume, cfg.load_from = True, latest
    elif cfg.get('load_from'):
        cfg.resume = False  # nothing of this run yet: start from load_from


def resume_with_the_runs_seed(cfg) -> None:
    """A resumed run without ``randomness.seed`` takes the seed of the run it
    continues (``meta['seed']`` of the checkpoint): MMEngine picks a random
    seed otherwise and builds the data sampler with it before
    ``Runner.resume`` reads the old one, so the sample order would change."""
    randomness = dict(cfg.get('randomness') or {})
    if not cfg.get('resume') or not cfg.get('load_from') or \
            randomness.get('seed') is not None:
        return
    from mmstable.utils import safe_load
    seed = (safe_load(cfg.load_from, map_location='cpu').get('meta')
            or {}).get('seed')
    if seed is not None:
        cfg.randomness = dict(randomness, seed=seed)


@contextlib.contextmanager
def cpu_distributed(cfg):
    """MMEngine's DDP on CPU (gloo). Edits ``cfg`` (gloo backend,
    ``device_ids=None`` for the wrapper) and, inside the block only, makes
    ``torch.cuda.set_device`` a no-op: MMEngine 0.10.7 calls
    ``torch.cuda.set_device(LOCAL_RANK)`` in ``init_dist`` and there is no
    option to skip it. Scoped (not a process-wide patch) so that nothing
    else in the process loses the real function; restored on exit, also
    after an error."""
    env_cfg = dict(cfg.get('env_cfg') or {})
    dist_cfg = dict(env_cfg.get('dist_cfg') or {})
    if dist_cfg.get('backend', 'nccl') == 'nccl':
        dist_cfg['backend'] = 'gloo'
    env_cfg['dist_cfg'] = dist_cfg
    cfg.env_cfg = env_cfg
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel')
    wrapper.setdefault('device_ids', None)
    cfg.model_wrapper_cfg = wrapper
    original = torch.cuda.set_device
    torch.cuda.set_device = lambda device: None
    try:
        yield
    finally:
        torch.cuda.set_device = original
