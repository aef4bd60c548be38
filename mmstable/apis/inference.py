"""Build an mmstable (or plain MMPose) face model for inference.

MMPose's :func:`mmpose.apis.init_model` does the work; this module only makes
sure that mmstable is registered and its safe checkpoint loader installed
first (``mmstable/__init__.py`` imports :mod:`mmstable.utils` before anything
else, so by the time this module runs, MMEngine's ``load_checkpoint`` --
which ``init_model`` calls -- goes through
:func:`mmstable.utils.checkpoint.safe_load`).
"""
import copy
from pathlib import Path
from typing import Optional, Union

import torch
from mmengine.config import Config
from torch import nn

import mmstable  # noqa: F401  registers modules, installs the safe loader

__all__ = ['init_model']


def init_model(config: Union[str, Path, Config],
               checkpoint: Optional[str] = None,
               device: Optional[str] = None,
               cfg_options: Optional[dict] = None) -> nn.Module:
    """:func:`mmpose.apis.init_model` for mmstable and MMPose face models.

    Differences from MMPose's function, all on the way in:

    - ``device=None`` picks ``'cuda:0'`` when CUDA is available, else
      ``'cpu'`` (MMPose defaults to ``'cuda:0'``);
    - the backbone's ``init_cfg`` is dropped even with ``cfg_options`` (MMPose
      drops it only without them): the weights come from ``checkpoint``, and
      a ``Pretrained`` init would try to download at every start.

    Args:
        config (str | Path | Config): model config, e.g. an mmstable config
            (``StableTopdownPoseEstimator`` + ``ConvLSTMRefineHead``) or a
            plain MMPose top-down heatmap config.
        checkpoint (str, optional): weights, loaded through mmstable's safe
            loader; ``None``: random weights.
        device (str, optional): see above.
        cfg_options (dict, optional): config overrides, as MMPose's.

    Returns:
        nn.Module: the model in eval mode, with ``cfg`` and ``dataset_meta``
        set (what :func:`mmpose.apis.inference_topdown` needs).
    """
    from mmpose.apis import init_model as mmpose_init_model

    if isinstance(config, (str, Path)):
        config = Config.fromfile(str(config))
    elif not isinstance(config, Config):
        raise TypeError('init_model: config must be a file name or a '
                        f'mmengine Config, got {type(config).__name__}')
    else:
        config = copy.deepcopy(config)  # never modify the caller's config
    if cfg_options:
        config.merge_from_dict(cfg_options)
    backbone = config.model.get('backbone')
    if isinstance(backbone, dict) and 'init_cfg' in backbone:
        backbone.init_cfg = None
    if device is None:
        device = 'cuda:0' if torch.cuda.is_available() else 'cpu'
    return mmpose_init_model(config, checkpoint, device=device)
