"""Reuse MMPose's own command-line tools (``tools/train.py``, ``tools/test.py``).

mmstable's tools keep MMPose's flags by importing MMPose's scripts, which the
pip/mim package ships under ``mmpose/.mim/tools`` (a source checkout has them
in ``<repo>/tools``), instead of copying them.
"""
import importlib.util
import os.path as osp
from types import ModuleType


def load_mmpose_tool(name: str) -> ModuleType:
    """Import MMPose's ``tools/<name>.py`` as a module.

    Raises:
        FileNotFoundError: neither the installed package nor a source checkout
            provides the script.
    """
    import mmpose
    root = osp.dirname(mmpose.__file__)
    candidates = [
        osp.join(root, '.mim', 'tools', f'{name}.py'),
        osp.join(osp.dirname(root), 'tools', f'{name}.py'),
    ]
    for path in candidates:
        if osp.isfile(path):
            spec = importlib.util.spec_from_file_location(
                f'mmpose_tools_{name}', path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    raise FileNotFoundError(
        f'MMPose tools/{name}.py not found (looked in {candidates}); '
        'install mmpose with pip/mim or from a source checkout.')
