# Copyright (c) mmstable authors. All rights reserved.
"""300VW broken-frame lists: ``{video_id: [1-based frame numbers]}``.

The one format mmstable reads is JSON (a dict, or a ``.json`` file). Nothing
here unpickles: a pickled ``.npy`` (an object array, as MMPose ships
``broken_frames.npy``) is refused, because ``np.load(..., allow_pickle=...)``
runs whatever ``__reduce__`` the file holds. :func:`read_pickled_broken_frames`
converts such a file once by walking its pickle opcodes with
:mod:`pickletools` (no global is imported, nothing is called) and accepting
only the exact shape of a broken-frame list; the tool
``tools/dataset_converters/broken_frames_to_json.py`` wraps it.
"""
import json
import os.path as osp
import pickletools
from typing import Dict, Iterable, Union

import numpy as np

CONVERT_TOOL = 'tools/dataset_converters/broken_frames_to_json.py'

# The only globals an object-array .npy of a broken-frame dict refers to
# (numpy >= 2 writes numpy._core). They are never imported: the walk below
# only checks their names.
_RECONSTRUCT = {('numpy.core.multiarray', '_reconstruct'),
                ('numpy._core.multiarray', '_reconstruct')}
_NDARRAY = ('numpy', 'ndarray')
_DTYPE = ('numpy', 'dtype')


def _convert_hint(path: str) -> str:
    return (f'Convert it once with `python {CONVERT_TOOL} {path} '
            f'{osp.splitext(path)[0]}.json` (it reads the list without '
            'running the pickle) and point broken_frames / --broken-frames '
            'at the .json file.')


def _npy_is_pickled(path: str) -> bool:
    """Whether a .npy file holds an object array (a pickle), from its header
    only."""
    with open(path, 'rb') as f:
        _, dtype = _read_npy_header(f, path)
    return dtype.hasobject


def _read_npy_header(f, path: str) -> tuple:
    """(shape, dtype) from an open .npy file's header, leaving ``f`` at the
    data; the data itself is never unpickled here."""
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
    except ValueError as e:
        raise ValueError(f'{path} is not a valid .npy file ({e}).') from None
    return shape, dtype


def _check_broken_frames(data: object, source: str) -> Dict[str, set]:
    if not isinstance(data, dict):
        raise ValueError(f'{source} must hold a dict {{video_id: [1-based '
                         f'frame numbers]}}, found {type(data).__name__}.')
    out = {}
    for video, frames in data.items():
        if not isinstance(video, (str, int)) or isinstance(video, bool):
            raise ValueError(f'{source}: video ids must be strings, found '
                             f'{video!r}.')
        if isinstance(frames, (str, bytes)) or not isinstance(
                frames, Iterable):
            raise ValueError(f'{source}: video {video!r} must list 1-based '
                             f'frame numbers, found {frames!r}.')
        numbers = set()
        for f in frames:
            if isinstance(f, bool) or not isinstance(f, (int, np.integer)) \
                    or f < 1:
                raise ValueError(f'{source}: video {video!r} lists {f!r}; '
                                 'expected 1-based frame numbers (ints >= '
                                 '1).')
            numbers.add(int(f))
        out[str(video)] = numbers
    return out


def load_broken_frames(
        broken_frames: Union[None, str, dict]) -> Dict[str, set]:
    """300VW broken frames as ``{video_id: {1-based frame numbers}}``.

    Args:
        broken_frames: ``None``, a dict ``{video_id: [1-based frames]}`` or a
            ``.json`` file holding it.

    Raises:
        ValueError: for a pickled ``.npy`` (refused unread, with the command
            that converts it), any other file type, malformed JSON (file,
            line and column) or a value that is not such a dict.
        FileNotFoundError: when the file does not exist.
    """
    if broken_frames is None:
        return {}
    if isinstance(broken_frames, dict):
        return _check_broken_frames(broken_frames, 'broken_frames')
    if not isinstance(broken_frames, str):
        raise ValueError('broken_frames must be None, a dict or a .json file '
                         f'path, found {type(broken_frames).__name__}.')
    path = broken_frames
    if not osp.isfile(path):
        raise FileNotFoundError(f'broken_frames file {path} does not exist.')
    if path.endswith('.npy'):
        if _npy_is_pickled(path):
            raise ValueError(
                f'Refusing to load {path}: it is a pickled .npy (object '
                'array), and unpickling a data file can run arbitrary code. '
                + _convert_hint(path))
        raise ValueError(f'{path} is a numeric .npy array; broken_frames '
                         'must be a .json file {"video_id": [1-based frame '
                         'numbers]}.')
    if not path.endswith('.json'):
        raise ValueError(f'broken_frames must be a .json file '
                         f'{{"video_id": [1-based frame numbers]}}, found '
                         f'{path!r}.')
    with open(path) as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f'{path}:{e.lineno}:{e.colno}: not valid JSON '
                             f'({e.msg}).') from None
    return _check_broken_frames(data, path)


class _Array:
    """Stand-in for ``numpy.core.multiarray._reconstruct(ndarray, ...)``."""

    def __init__(self):
        self.state = None


def read_pickled_broken_frames(path: str) -> Dict[str, list]:
    """Read a pickled broken-frame ``.npy`` (MMPose's ``broken_frames.npy``)
    WITHOUT unpickling it.

    The pickle's opcodes are walked with :func:`pickletools.genops`; the only
    accepted content is a 0-d object array (``_reconstruct(ndarray, ...)``
    with an ``'O8'`` dtype) holding a dict of strings to lists of ints. Any
    other global, call or opcode is an error, so a crafted file can never run
    code here.

    Returns:
        dict: ``{video_id: sorted list of 1-based frame numbers}``.
    """
    with open(path, 'rb') as f:
        shape, dtype = _read_npy_header(f, path)
        payload = f.read()
    if not dtype.hasobject or shape != ():
        raise ValueError(f'{path}: expected a pickled 0-d object array '
                         f'holding a dict, found dtype {dtype} shape {shape}.')

    def bad(what):
        return ValueError(f'{path}: {what}; a broken-frame list holds only a '
                          'dict of video ids to frame numbers. Refusing the '
                          'file (nothing in it was run).')

    stack, marks, memo, result = [], [], {}, None

    def pop_mark():
        if not marks:
            raise bad('malformed pickle (no MARK)')
        start = marks.pop()
        items = stack[start:]
        del stack[start:]
        return items

    try:
        ops = list(pickletools.genops(payload))
    except ValueError as e:
        raise bad(f'malformed pickle ({e})') from None
    try:
        for op, arg, _ in ops:
            name = op.name
            if name in ('PROTO', 'FRAME'):
                continue
            if name == 'STOP':
                result = stack.pop() if stack else None
                break
            if name == 'MARK':
                marks.append(len(stack))
            elif name in ('GLOBAL', 'STACK_GLOBAL'):
                if name == 'GLOBAL':
                    module, qualname = arg.split(' ', 1)
                else:
                    qualname, module = stack.pop(), stack.pop()
                ref = (module, qualname)
                if ref not in _RECONSTRUCT | {_NDARRAY, _DTYPE}:
                    raise bad(f'it refers to {module}.{qualname}')
                stack.append(('global', ref))
            elif name in ('BINPUT', 'LONG_BINPUT', 'PUT'):
                memo[arg] = stack[-1]
            elif name == 'MEMOIZE':
                memo[len(memo)] = stack[-1]
            elif name in ('BINGET', 'LONG_BINGET', 'GET'):
                stack.append(memo[arg])
            elif name in ('BININT', 'BININT1', 'BININT2', 'LONG1', 'LONG',
                          'INT', 'BINUNICODE', 'SHORT_BINUNICODE', 'UNICODE',
                          'BINUNICODE8', 'SHORT_BINBYTES', 'BINBYTES',
                          'SHORT_BINSTRING', 'BINSTRING', 'STRING'):
                stack.append(arg)
            elif name == 'NONE':
                stack.append(None)
            elif name in ('NEWTRUE', 'NEWFALSE'):
                stack.append(name == 'NEWTRUE')
            elif name == 'EMPTY_TUPLE':
                stack.append(())
            elif name in ('TUPLE1', 'TUPLE2', 'TUPLE3'):
                n = int(name[-1])
                items = tuple(stack[-n:])
                del stack[-n:]
                stack.append(items)
            elif name == 'TUPLE':
                stack.append(tuple(pop_mark()))
            elif name == 'EMPTY_LIST':
                stack.append([])
            elif name == 'EMPTY_DICT':
                stack.append({})
            elif name == 'APPEND':
                value = stack.pop()
                stack[-1].append(value)
            elif name == 'APPENDS':
                items = pop_mark()
                stack[-1].extend(items)
            elif name in ('SETITEM', 'SETITEMS'):
                items = [stack.pop(), stack.pop()][::-1] if name == 'SETITEM' \
                    else pop_mark()
                if len(items) % 2 or not isinstance(stack[-1], dict):
                    raise bad('malformed dict')
                for k, v in zip(items[::2], items[1::2]):
                    if not isinstance(k, (str, bytes, int)):
                        raise bad(f'a dict key is {type(k).__name__}')
                    stack[-1][k.decode() if isinstance(k, bytes) else k] = v
            elif name == 'REDUCE':
                args, func = stack.pop(), stack.pop()
                if not (isinstance(func, tuple) and func[:1] == ('global', )):
                    raise bad('it calls something other than numpy')
                if func[1] in _RECONSTRUCT:
                    if args[:1] != (('global', _NDARRAY), ):
                        raise bad('it reconstructs something other than an '
                                  'ndarray')
                    stack.append(_Array())
                elif func[1] == _DTYPE:
                    if args[:1] != ('O8', ):
                        raise bad(f'it holds dtype {args[:1]}')
                    stack.append(('dtype', 'O8'))
                else:
                    raise bad(f'it calls {".".join(func[1])}')
            elif name == 'BUILD':
                state = stack.pop()
                if isinstance(stack[-1], _Array):
                    stack[-1].state = state
                elif stack[-1] != ('dtype', 'O8'):
                    raise bad('it sets the state of an unexpected object')
            else:
                raise bad(f'it uses the pickle opcode {name}')
    except (AttributeError, IndexError, KeyError, TypeError) as e:
        raise bad(f'malformed pickle ({type(e).__name__})') from None
    if not isinstance(result, _Array) or not isinstance(
            result.state, tuple) or len(result.state) != 5:
        raise bad('it does not hold one object array')
    items = result.state[4]
    if not isinstance(items, list) or len(items) != 1:
        raise bad('it does not hold exactly one object')
    checked = _check_broken_frames(items[0], path)
    return {video: sorted(frames) for video, frames in checked.items()}


def convert_broken_frames(src: str, dst: str) -> Dict[str, list]:
    """Write the pickled broken-frame list ``src`` (``.npy``) as JSON to
    ``dst``, read with :func:`read_pickled_broken_frames` (no code runs).
    """
    if osp.abspath(src) == osp.abspath(dst):
        raise ValueError(f'the output {dst} must differ from the input.')
    data = read_pickled_broken_frames(src)
    with open(dst, 'w') as f:
        json.dump(data, f, indent=0, sort_keys=True)
    return data
