"""Safe checkpoint loading: ``weights_only=True`` with an explicit allow-list.

torch >= 2.6 loads with ``weights_only=True`` by default, and mmengine 0.10.7
does not pass the argument. MMPose zoo checkpoints and MMEngine Runner
checkpoints carry numpy arrays (``meta['dataset_meta']``) and
``HistoryBuffer`` objects (``message_hub``), which the restricted unpickler
refuses. Falling back to ``weights_only=False`` would let a checkpoint run
arbitrary code (a ``__reduce__`` payload), so mmstable instead:

- allow-lists exactly the globals such files need (:data:`SAFE_GLOBAL_NAMES`);
- re-registers MMEngine's :class:`~mmengine.runner.CheckpointLoader` schemes
  (local paths, ``http(s)://``, ``openmmlab://``, ``torchvision://``,
  ``mmcls://``) so that *every* MMEngine load — ``load_from``, ``--resume``,
  ``init_cfg=dict(type='Pretrained')``, ``mmpose.apis.init_model`` and
  mmstable's own APIs — goes through :func:`safe_load`;
- raises :class:`UnsafeCheckpointError` naming the file and the refused global.
  Nothing falls back silently; a user who trusts a file can extend the list
  with :func:`add_safe_globals`.

This is the one place mmstable loads checkpoints; importing :mod:`mmstable`
installs it.
"""
import importlib
import inspect
import os
import os.path as osp
import pickle
from typing import Callable, Iterable, List, Optional, Union

import torch
from mmengine.dist import get_dist_info
from mmengine.runner.checkpoint import (CheckpointLoader, get_external_models,
                                        get_mmcls_models,
                                        get_torchvision_models)

# Globals a Runner / MMPose zoo checkpoint needs beyond torch's own
# allow-list. Names that do not exist in the installed numpy are skipped.
SAFE_GLOBAL_NAMES = (
    # numpy arrays, scalars and dtypes (numpy 1.x and 2.x module paths)
    'numpy.core.multiarray._reconstruct',
    'numpy._core.multiarray._reconstruct',
    'numpy.core.multiarray.scalar',
    'numpy._core.multiarray.scalar',
    'numpy.ndarray',
    'numpy.dtype',
    # empty numpy arrays pickle their (empty) buffer as ``bytes()``; MMPose's
    # dataset_meta has some (``sigmas`` of WFLW/300W)
    'builtins.bytes',
    # MMEngine's message hub (resume files)
    'mmengine.logging.history_buffer.HistoryBuffer',
)

_extra_safe_globals: List[Callable] = []


def _history_buffer_getattr(obj, name):
    """Stands in for ``builtins.getattr`` while unpickling.

    ``HistoryBuffer`` pickles its ``_statistics_methods`` (``min``, ``max``,
    ``mean``, ``current`` and any registered one) as ``getattr(HistoryBuffer,
    name)``. A general ``getattr`` would let a pickle walk from an allowed
    object to arbitrary code (``__globals__`` ...), so only that lookup is
    allowed: a public method defined on ``HistoryBuffer`` itself, or a
    registered statistics method. (``_statistics_methods`` fills lazily, so
    it may still be empty in a fresh process.)
    """
    from mmengine.logging import HistoryBuffer
    if obj is HistoryBuffer and (
            name in HistoryBuffer._statistics_methods or
            (not name.startswith('_') and
             inspect.isfunction(HistoryBuffer.__dict__.get(name)))):
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'refused getattr({obj!r}, {name!r}): mmstable only allows '
        'getattr(HistoryBuffer, <statistics method>)')


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint needs a global that is not on mmstable's allow-list."""


def _resolve(name: str):
    module, _, attr = name.rpartition('.')
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        return None


def get_safe_globals() -> List[Callable]:
    """The allow-list: :data:`SAFE_GLOBAL_NAMES`, numpy's dtype classes and
    anything added by :func:`add_safe_globals`."""
    safe = [g for g in map(_resolve, SAFE_GLOBAL_NAMES) if g is not None]
    import numpy as np
    dtypes = getattr(np, 'dtypes', None)  # numpy >= 1.25 pickles these
    if dtypes is not None:
        safe += [
            getattr(dtypes, n) for n in dir(dtypes)
            if n.endswith('DType') and isinstance(getattr(dtypes, n), type)
        ]
    safe.append((_history_buffer_getattr, 'builtins.getattr'))
    return safe + _extra_safe_globals


def add_safe_globals(globals_: Iterable[Callable]) -> None:
    """Trust more globals for every later :func:`safe_load` (explicit opt-in,
    e.g. for a checkpoint whose ``meta`` holds your own class)."""
    _extra_safe_globals.extend(globals_)


def safe_load(source: Union[str, Callable[[], dict]],
              map_location=None,
              name: Optional[str] = None):
    """``torch.load(source, weights_only=True)`` with the allow-list.

    Args:
        source: a file path / file object, or a zero-argument callable that
            performs the load (used for URLs: the callable downloads and
            loads with ``weights_only=True``).
        map_location: as in :func:`torch.load`.
        name: how to name the checkpoint in errors (defaults to ``source``).

    Raises:
        UnsafeCheckpointError: the file needs a global outside the allow-list
            (for example a pickled ``__reduce__`` payload). Nothing from the
            file has been executed.
    """
    name = name or str(source)
    try:
        with torch.serialization.safe_globals(get_safe_globals()):
            if callable(source):
                return source()
            return torch.load(
                source, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise UnsafeCheckpointError(
            f'mmstable refused to load the checkpoint {name!r}: it needs a '
            'Python global that is not on the allow-list in '
            'mmstable/utils/checkpoint.py, so loading it could run code. '
            f'torch says: {_reason(e)} If you trust this file, '
            'allow exactly that global with '
            'mmstable.utils.add_safe_globals([...]).') from e


def _reason(error: Exception) -> str:
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    for ln in lines:
        if 'Unsupported global' in ln or 'refused' in ln:
            return ln.split('Please use')[0].strip()
    return lines[0] if lines else repr(error)


def _load_local(filename, map_location=None):
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename} does not exist')
    return safe_load(filename, map_location)


def _load_url(url, map_location=None, model_dir=None):
    def load():
        return torch.hub.load_state_dict_from_url(
            url,
            model_dir=model_dir,
            map_location=map_location,
            progress=os.isatty(0),
            weights_only=True)

    # Same rank-0-downloads-first pattern as mmengine's load_from_http.
    rank, world_size = get_dist_info()
    if rank == 0:
        checkpoint = safe_load(load, name=url)
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            checkpoint = safe_load(load, name=url)
    return checkpoint


def _load_openmmlab(filename, map_location=None):
    prefix = 'open-mmlab://' if filename.startswith(
        'open-mmlab://') else 'openmmlab://'
    model_name = filename[len(prefix):]
    url = get_external_models()[model_name]
    if url.startswith(('http://', 'https://')):
        return _load_url(url, map_location)
    from mmengine.runner.checkpoint import _get_mmengine_home
    return _load_local(osp.join(_get_mmengine_home(), url), map_location)


def _load_torchvision(filename, map_location=None):
    model_name = filename.split('://', 1)[1]
    return _load_url(get_torchvision_models()[model_name], map_location)


def _load_mmcls(filename, map_location=None):
    from mmengine.runner.checkpoint import _process_mmcls_checkpoint
    checkpoint = _load_url(get_mmcls_models()[filename[8:]], map_location)
    return _process_mmcls_checkpoint(checkpoint)


def install_safe_checkpoint_loader() -> None:
    """Route MMEngine's checkpoint schemes through :func:`safe_load`."""
    for prefixes, loader in (
        ('', _load_local),
        (('http://', 'https://'), _load_url),
        (('open-mmlab://', 'openmmlab://'), _load_openmmlab),
        (('modelzoo://', 'torchvision://'), _load_torchvision),
        ('mmcls://', _load_mmcls),
    ):
        CheckpointLoader.register_scheme(prefixes, loader, force=True)
