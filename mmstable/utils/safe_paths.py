"""No output path may equal or contain an input path (docs/conventions.md,
safety rules).

A tool that writes ``<out-dir>/<name>.mp4`` while it still reads
``<name>.mp4`` destroys its input (issue 12, item 2). Tools therefore list
every file they will write and every file or folder they read, and call
:func:`check_no_overwrite` before they open any writer or create any folder.
Paths are compared after resolving symlinks (``os.path.realpath``, every
component) and, where both exist, by inode (hard links).
"""
import os
import os.path as osp
from typing import Mapping, Optional

__all__ = ['OutputOverwritesInputError', 'check_no_overwrite']


class OutputOverwritesInputError(ValueError):
    """An output path equals an input path, lies inside an input folder, or
    is a folder that contains an input."""


def _real(path) -> str:
    return osp.realpath(osp.abspath(osp.expanduser(os.fspath(path))))


def _real_noresolve(path) -> str:
    return osp.abspath(osp.expanduser(os.fspath(path)))


def _inside(path: str, folder: str) -> bool:
    """``path`` is ``folder`` or lies below it (both real paths)."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _same_file(a: str, b: str) -> bool:
    try:
        return osp.samefile(a, b)  # hard links, bind mounts
    except OSError:  # one of them does not exist (yet)
        return False


def check_no_overwrite(outputs: Mapping[str, Optional[str]],
                       inputs: Mapping[str, Optional[str]],
                       hint: str = '') -> None:
    """Refuse outputs that would overwrite (or write into) an input.

    Args:
        outputs: label -> path of everything the caller will write (files,
            or folders it will fill); ``None`` entries are ignored.
        inputs: label -> path of everything it reads (files or folders);
            ``None`` entries (e.g. a camera) are ignored.
        hint: how to fix it, appended to the message (e.g. ``'pass another
            --out-dir'``).

    Raises:
        OutputOverwritesInputError: one line naming both paths: an output is
            the same file as an input (after resolving symlinks, or the same
            inode), lies inside an input folder, or is a folder that contains
            an input.
    """
    for out_label, out in outputs.items():
        if out is None:
            continue
        out_real = _real(out)
        for in_label, src in inputs.items():
            if src is None:
                continue
            src_real = _real(src)
            if out_real == src_real or _same_file(out_real, src_real):
                why = 'is the same file as'
            elif _inside(out_real, src_real):
                why = 'lies inside'
            elif _inside(src_real, out_real):
                why = 'is a folder that contains'
            else:
                continue
            real = '' if src_real == _real_noresolve(src) else \
                f' (real path {src_real})'
            raise OutputOverwritesInputError(
                f'refusing to write the {out_label} {out}: it {why} the '
                f'input {in_label} {src}{real}; an output never overwrites '
                f'an input{"; " + hint if hint else ""}')
