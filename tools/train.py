"""Train (fine-tune) a model: ``python tools/train.py CONFIG [MMPose's flags]``.

The flags are MMPose's own (``--work-dir``, ``--resume [CKPT]``, ``--amp``,
``--no-validate``, ``--cfg-options``, ``--launcher none|pytorch|slurm|mpi``):
this script parses them with MMPose's ``tools/train.py``. Importing mmstable
registers its modules and routes every checkpoint load (``load_from``,
``--resume``, ``init_cfg=Pretrained``) through the safe loader.
"""
import os.path as osp
import sys

import torch
from mmengine.config import Config
from mmengine.runner import Runner

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import mmstable  # noqa: E402,F401
from mmstable.utils.mmpose_tools import load_mmpose_tool  # noqa: E402


def main(argv=None):
    mmpose_train = load_mmpose_tool('train')
    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    args = mmpose_train.parse_args()
    cfg = mmpose_train.merge_args(Config.fromfile(args.config), args)
    if args.launcher != 'none' and not torch.cuda.is_available():
        _cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def _cpu_distributed(cfg):
    """MMEngine's DDP on CPU (gloo): MMEngine 0.10.7 calls
    ``torch.cuda.set_device(LOCAL_RANK)`` in ``init_dist`` and wraps the model
    with ``device_ids=[LOCAL_RANK]``; both fail without a GPU."""
    torch.cuda.set_device = lambda device: None
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


if __name__ == '__main__':
    main()
