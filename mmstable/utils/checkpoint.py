"""Safe checkpoint loading: ``weights_only=True`` with an explicit allow-list.

torch >= 2.6 loads with ``weights_only=True`` by default, and mmengine 0.10.7
does not pass the argument. MMPose zoo checkpoints and MMEngine Runner
checkpoints carry numpy arrays (``meta['dataset_meta']``) and
``HistoryBuffer`` objects (``message_hub``), which the restricted unpickler
refuses. Falling back to unrestricted unpickling would let a checkpoint run
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

Every expected failure raises a :class:`CheckpointError` whose message is one
line naming the file: missing (:class:`MissingCheckpointError`), empty /
truncated / not a PyTorch checkpoint (:class:`CorruptCheckpointError`),
unsafe (:class:`UnsafeCheckpointError`, naming the refused global), or not
fitting the model (:class:`CheckpointMismatchError`, see
:func:`install_checkpoint_fit_check`).

This is the one place mmstable loads checkpoints; importing :mod:`mmstable`
installs it.
"""
import contextlib
import contextvars
import importlib
import inspect
import os
import os.path as osp
import pickle
import re
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


class CheckpointError(Exception):
    """Base of the expected checkpoint failures; the message is one line that
    names the file and what to do. Tools print it and exit non-zero."""


class MissingCheckpointError(CheckpointError, FileNotFoundError):
    """The checkpoint file does not exist."""


class CorruptCheckpointError(CheckpointError, ValueError):
    """The file is empty, truncated, or not a PyTorch checkpoint at all."""


class UnsafeCheckpointError(CheckpointError, pickle.UnpicklingError):
    """A checkpoint needs a global that is not on mmstable's allow-list."""


class CheckpointMismatchError(CheckpointError, RuntimeError):
    """A checkpoint's weights do not fit the model (shapes, missing keys)."""


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


# A PyTorch checkpoint is a zip archive (torch >= 1.6) or a pickle (legacy
# format; protocol 2+ pickles start with the PROTO opcode 0x80).
_ZIP_MAGIC = b'PK\x03\x04'
_PICKLE_PROTO = b'\x80'


def _check_header(path: str) -> None:
    """Refuse, before unpickling anything, a file that cannot be a PyTorch
    checkpoint: empty, or neither a zip archive nor a pickle."""
    size = osp.getsize(path)
    if size == 0:
        raise CorruptCheckpointError(
            f'checkpoint {path!r} is empty or truncated (0 bytes); '
            'save or download it again.')
    with open(path, 'rb') as f:
        head = f.read(4)
    if not (head.startswith(_ZIP_MAGIC) or head.startswith(_PICKLE_PROTO)):
        raise CorruptCheckpointError(
            f'{path!r} is not a PyTorch checkpoint (a .pth file is a zip '
            f'archive or a pickle; this one starts with {head!r}); '
            'pass the weights file written by torch.save / MMEngine.')


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
        MissingCheckpointError: ``source`` is a path that does not exist.
        CorruptCheckpointError: the file is empty, truncated or not a
            PyTorch checkpoint.
        UnsafeCheckpointError: the file needs a global outside the allow-list
            (for example a pickled ``__reduce__`` payload); the message names
            the global. Nothing from the file has been executed.
    """
    name = name or str(source)
    if isinstance(source, (str, os.PathLike)):
        if not osp.isfile(source):
            raise MissingCheckpointError(
                f'checkpoint {name!r} does not exist; check the path.')
        _check_header(str(source))
    try:
        with torch.serialization.safe_globals(get_safe_globals()):
            if callable(source):
                return source()
            return torch.load(
                source, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        refused = _refused_global(e)
        if refused is None:
            raise CorruptCheckpointError(
                f'{name!r} is not a PyTorch checkpoint or is damaged '
                f'({_first_line(e)}); save or download it again.') from None
        raise UnsafeCheckpointError(
            f'mmstable refused to load the checkpoint {name!r}: it needs '
            f'the Python global {refused}, which is not on the allow-list '
            'in mmstable/utils/checkpoint.py, so loading it could run code '
            '(nothing from the file was run). If you trust this file, '
            'allow exactly that global with '
            'mmstable.utils.add_safe_globals([...]).') from None
    except (EOFError, RuntimeError) as e:
        # EOFError: a legacy pickle cut short; RuntimeError: torch's zip
        # reader ("failed finding central directory", ...)
        raise CorruptCheckpointError(
            f'checkpoint {name!r} is empty or truncated '
            f'({type(e).__name__}: {_first_line(e)}); save or download it '
            'again.') from None
    except (KeyError, ValueError, TypeError, AttributeError) as e:
        raise CorruptCheckpointError(
            f'{name!r} is not a PyTorch checkpoint or is damaged '
            f'({type(e).__name__}: {_first_line(e)}); save or download it '
            'again.') from None


def _first_line(error: Exception) -> str:
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    return lines[0].split('. ')[0][:200] if lines else repr(error)


def _refused_global(error: Exception) -> Optional[str]:
    """The global torch's restricted unpickler (or mmstable's ``getattr``
    guard) refused, e.g. ``'posix.system'``; ``None`` when the error is not
    a refused global (the file is simply not a checkpoint)."""
    text = str(error)
    found = re.search(r'GLOBAL ([\w.]+)', text)
    if found:
        return found.group(1)
    found = re.search(r'(refused getattr\([^\n]*?\))', text)
    if found:
        return f'builtins.getattr ({found.group(1)})'
    return None


def _load_local(filename, map_location=None):
    return safe_load(osp.expanduser(filename), map_location)


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


# ------------------------------------------------------- does it fit the model
_allow_partial_load = contextvars.ContextVar('mmstable_allow_partial_load',
                                             default=False)

_SIZE_MISMATCH = re.compile(
    r'size mismatch for (?P<key>\S+): copying a param with shape '
    r'(?:torch\.Size\()?(?P<ckpt>\[[^\]]*\])\)? from checkpoint, the shape in '
    r'current model is (?:torch\.Size\()?(?P<model>\[[^\]]*\])')


@contextlib.contextmanager
def allow_partial_load(allow: bool = True):
    """Within this block, a checkpoint that does not fit a model guarded by
    :func:`install_checkpoint_fit_check` loads anyway (MMEngine's default:
    mismatched / missing weights keep their initial values, with a warning).
    Tools turn it on with the config key ``allow_partial_load=True``
    (``--cfg-options allow_partial_load=True``)."""
    token = _allow_partial_load.set(bool(allow))
    try:
        yield
    finally:
        _allow_partial_load.reset(token)


def optional_checkpoint_prefixes(model) -> tuple:
    """Key prefixes a checkpoint may lack: the refiner's own weights
    (``head.<name>.`` for every child of a head that wraps a ``base_head``,
    other than the base head), so an image-model checkpoint loads into a
    refiner model, the normal fine-tune case. Everything else -- backbone,
    neck, the (base) head -- is the image model and must be there."""
    head = getattr(model, 'head', None)
    if head is None or not isinstance(getattr(head, 'base_head', None),
                                      torch.nn.Module):
        return ()
    own = [n for n in (*head._modules, *head._parameters, *head._buffers)
           if n != 'base_head']
    return tuple(f'head.{n}.' if n in head._modules else f'head.{n}'
                 for n in own)


def _summarise(items: List[str], limit: int = 6) -> str:
    more = len(items) - limit
    return ', '.join(items[:limit]) + (f' and {more} more' if more > 0 else '')


def _fit_pre_hook(module, state_dict, prefix, local_metadata, strict,
                  missing_keys, unexpected_keys, error_msgs):
    # The lists are shared by the whole load (torch's and MMEngine's
    # load_state_dict); the post hook reads what the children added.
    module._mmstable_fit_lists = (prefix, missing_keys, error_msgs,
                                  len(error_msgs))


def _fit_post_hook(module, incompatible_keys):
    lists = module.__dict__.pop('_mmstable_fit_lists', None)
    if lists is None or _allow_partial_load.get():
        return
    prefix, missing_keys, error_msgs, start = lists
    optional = optional_checkpoint_prefixes(module)
    missing = [
        k[len(prefix):] for k in missing_keys
        if k.startswith(prefix) and not k.endswith('num_batches_tracked')
        and not k[len(prefix):].startswith(optional)
    ]
    mismatched = []
    for msg in error_msgs[start:]:
        found = _SIZE_MISMATCH.search(msg)
        if found:
            key = found['key'][len(prefix):] if found['key'].startswith(
                prefix) else found['key']
            mismatched.append(f'{key} (checkpoint {found["ckpt"]}, model '
                              f'{found["model"]})')
    if not (missing or mismatched):
        return
    parts = []
    if mismatched:
        parts.append(f'{len(mismatched)} shape mismatch(es): '
                     f'{_summarise(mismatched)}')
    if missing:
        parts.append(f'{len(missing)} weight(s) of the image model missing '
                     f'from the checkpoint: {_summarise(missing)}')
    raise CheckpointMismatchError(
        f'the checkpoint does not fit the {type(module).__name__} of the '
        f'config: {"; ".join(parts)}. Use weights of the same model (the '
        'same number of landmarks, backbone and head), or load them '
        'partially on purpose with the config key allow_partial_load=True '
        '(--cfg-options allow_partial_load=True).')


def install_checkpoint_fit_check(model):
    """Make loading a checkpoint that does not fit ``model`` an error.

    A load whose weights have another shape than the model's, or that lacks
    weights of the image model (backbone, neck, head / base head), raises
    :class:`CheckpointMismatchError` naming the keys and shapes instead of
    MMEngine's warning (which leaves those layers at random init and lets a
    tool write garbage). The refiner's own weights may be missing
    (:func:`optional_checkpoint_prefixes`); extra keys are ignored. Inside
    :func:`allow_partial_load` the check is off.

    Works for every load of ``model`` (MMEngine's ``load_checkpoint`` /
    ``Runner.load_checkpoint`` / ``resume``, ``torch``'s
    ``load_state_dict``): it is a ``load_state_dict`` pre/post hook pair on
    the model itself. Idempotent; returns ``model`` (unwrapped from
    DDP-style wrappers).
    """
    from mmengine.model import is_model_wrapper
    while is_model_wrapper(model):
        model = model.module
    if not getattr(model, '_mmstable_fit_check', False):
        model._register_load_state_dict_pre_hook(_fit_pre_hook,
                                                 with_module=True)
        model.register_load_state_dict_post_hook(_fit_post_hook)
        model._mmstable_fit_check = True
    return model


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
