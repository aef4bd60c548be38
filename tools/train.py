"""Train (fine-tune) a model: ``python tools/train.py CONFIG [MMPose's flags]``.

The flags are MMPose's own (``--work-dir``, ``--resume [CKPT]``, ``--amp``,
``--no-validate``, ``--cfg-options``, ``--launcher none|pytorch|slurm|mpi``):
this script parses them with MMPose's ``tools/train.py``. Importing mmstable
registers its modules and routes every checkpoint load (``load_from``,
``--resume``, ``init_cfg=Pretrained``) through the safe loader.

mmstable's additions (logic in :mod:`mmstable.engine.runner`):

- epoch-based training runs in ``ResumableEpochBasedTrainLoop``, so
  ``--resume`` continues exactly, also from a checkpoint written mid-epoch;
- ``--resume`` (no path) resumes from the work dir's last checkpoint even
  when ``load_from`` is set, and starts from ``load_from`` when there is none;
  a config without ``randomness.seed`` resumes with the seed of the run;
- a checkpoint that does not fit the model is an error (config key
  ``allow_partial_load=True`` loads it anyway);
- ``--launcher pytorch`` without a GPU trains with DDP on CPU (gloo);
- a missing / corrupt / unsafe / unfitting checkpoint: one line, exit 1.
"""
import contextlib
import os.path as osp
import sys

import torch
from mmengine.config import Config
from mmengine.runner import Runner

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import mmstable  # noqa: E402,F401
from mmstable.engine.runner import (cpu_distributed,  # noqa: E402
                                    resolve_auto_resume,
                                    resume_with_the_runs_seed,
                                    use_resumable_loop)
from mmstable.utils import (CheckpointError,  # noqa: E402
                            CheckpointMismatchError, allow_partial_load,
                            install_checkpoint_fit_check)
from mmstable.utils.mmpose_tools import load_mmpose_tool  # noqa: E402


def main(argv=None):
    mmpose_train = load_mmpose_tool('train')
    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    args = mmpose_train.parse_args()
    cfg = mmpose_train.merge_args(Config.fromfile(args.config), args)
    resolve_auto_resume(cfg, args.resume)
    use_resumable_loop(cfg)
    distributed = (cpu_distributed(cfg) if args.launcher != 'none'
                   and not torch.cuda.is_available() else
                   contextlib.nullcontext())
    try:
        resume_with_the_runs_seed(cfg)
        with distributed, allow_partial_load(
                cfg.get('allow_partial_load', False)):
            runner = Runner.from_cfg(cfg)
            install_checkpoint_fit_check(runner.model)
            runner.train()
    except CheckpointError as e:
        where = f'{cfg.load_from}: ' if isinstance(
            e, CheckpointMismatchError) else ''  # the others name the file
        sys.exit(f'tools/train.py: error: {where}{e}')
    return runner


if __name__ == '__main__':
    main()
