"""Build an mmstable (or plain MMPose) face model for inference.

MMPose's :func:`mmpose.apis.init_model` builds the model; the checkpoint is
then loaded as MMPose loads it (MMEngine's ``load_checkpoint``,
``dataset_meta`` from the checkpoint before the config's), with two
mmstable guards: the safe loader (``mmstable/__init__.py`` installs
:func:`mmstable.utils.checkpoint.safe_load` for every MMEngine load before
anything else) and the fit check
(:func:`mmstable.utils.checkpoint.install_checkpoint_fit_check`), which the
one-call MMPose function leaves no room for.
"""
import copy
import os.path as osp
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
               cfg_options: Optional[dict] = None,
               allow_partial_load: Optional[bool] = None,
               onnx_threads: Optional[int] = None) -> nn.Module:
    """:func:`mmpose.apis.init_model` for mmstable and MMPose face models.

    Differences from MMPose's function, all on the way in:

    - ``device=None`` picks ``'cuda:0'`` when CUDA is available, else
      ``'cpu'`` (MMPose defaults to ``'cuda:0'``);
    - the backbone's ``init_cfg`` is dropped even with ``cfg_options`` (MMPose
      drops it only without them): the weights come from ``checkpoint``, and
      a ``Pretrained`` init would try to download at every start;
    - a checkpoint that does not fit the model (another shape, missing
      weights of the image model, e.g. 98-landmark weights for a 68-landmark
      config) raises :class:`~mmstable.utils.checkpoint.
      CheckpointMismatchError` naming the keys, for plain MMPose models too
      (MMPose only warns and keeps random weights), unless
      ``allow_partial_load``.

    Args:
        config (str | Path | Config): model config, e.g. an mmstable config
            (``StableTopdownPoseEstimator`` + ``ConvLSTMRefineHead``) or a
            plain MMPose top-down heatmap config.
        checkpoint (str, optional): weights, loaded through mmstable's safe
            loader; ``None``: random weights.
        device (str, optional): see above.
        cfg_options (dict, optional): config overrides, as MMPose's.
        allow_partial_load (bool, optional): load a checkpoint that does not
            fit anyway (MMEngine's warning, random weights where it does not
            fit); ``None``: the config key ``allow_partial_load`` (default
            False).
        onnx_threads (int, optional): ``config`` an exported ``.onnx``
            file (``tools/deploy/export_onnx.py``): ONNX Runtime's intra-op
            threads; such a file returns a
            :class:`~mmstable.deploy.OnnxTopdownModel` (no checkpoint, no
            cfg_options), which :class:`StableFaceTracker` drives like the
            torch model.

    Raises:
        FileNotFoundError: ``config`` is a path that does not exist.
        mmstable.utils.checkpoint.CheckpointError: the checkpoint is
            missing, corrupt, unsafe, or does not fit the model; the message
            names the file (or the keys) and the fix.

    Returns:
        nn.Module: the model in eval mode, with ``cfg`` and ``dataset_meta``
        set (what :func:`mmpose.apis.inference_topdown` needs).
    """
    if isinstance(config, (str, Path)) and str(config).endswith('.onnx'):
        # an exported model (tools/deploy/export_onnx.py) in ONNX Runtime
        if checkpoint is not None or cfg_options:
            raise ValueError(
                f'init_model: {config} is an exported ONNX model; it takes '
                'no checkpoint or cfg_options (export again to change them)')
        if not osp.isfile(str(config)):
            raise FileNotFoundError(f'init_model: {config} does not exist')
        from mmstable.deploy import OnnxTopdownModel
        return OnnxTopdownModel(str(config), threads=onnx_threads)
    from mmengine.runner import load_checkpoint
    from mmpose.apis import init_model as mmpose_init_model

    from mmstable.utils.checkpoint import (allow_partial_load as allow_partial,
                                           install_checkpoint_fit_check)

    if isinstance(config, (str, Path)):
        if not osp.isfile(str(config)):
            raise FileNotFoundError(f'init_model: config {config} does not '
                                    'exist')
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
    if allow_partial_load is None:
        allow_partial_load = bool(config.get('allow_partial_load', False))
    # MMPose builds and loads in one call; build first so that the fit check
    # guards the load, then load as MMPose does (dataset_meta: checkpoint >
    # config)
    model = mmpose_init_model(config, None, device='cpu')
    if checkpoint is not None:
        install_checkpoint_fit_check(model)
        with allow_partial(allow_partial_load):
            ckpt = load_checkpoint(model, checkpoint, map_location='cpu')
        meta = ckpt.get('meta') or {}
        if 'dataset_meta' in meta:
            model.dataset_meta = meta['dataset_meta']
    return model.to(device)
