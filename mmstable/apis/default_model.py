"""The project's default face model: the real-face model ``make demo`` builds.

``tools/demo.py`` (``make demo``) trains an image model on real-textured
faces (registry photos labelled by two teachers, issue 11) and a refiner on
top of it, into ``work_dirs/demo/real_refiner`` of the repository. Tools that
run "a face model" without being told which (``tools/demo_video.py`` without
``--config``) use it; until it is built they say so and stop -- never random
weights.
"""
import os.path as osp
from typing import Optional, Tuple

from mmengine.runner import find_latest_checkpoint

__all__ = [
    'DEFAULT_FACE_CONFIG', 'DEFAULT_FACE_WORK_DIR', 'default_face_model'
]

_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
#: the real-face refiner's config, relative to the repository
DEFAULT_FACE_CONFIG = 'configs/demo/real_jitter.py'
#: where ``make demo`` trains it, relative to the repository
DEFAULT_FACE_WORK_DIR = 'work_dirs/demo/real_refiner'


def default_face_model(root: Optional[str] = None) -> Tuple[str, str]:
    """``(config, checkpoint)`` paths of the default real-face model in
    ``root`` (default: this repository).

    Raises:
        FileNotFoundError: it has not been built (``make demo`` builds it);
            the message says so.
    """
    root = _ROOT if root is None else root
    config = osp.join(root, DEFAULT_FACE_CONFIG)
    work_dir = osp.join(root, DEFAULT_FACE_WORK_DIR)
    checkpoint = None
    if osp.isfile(osp.join(work_dir, 'last_checkpoint')):
        # MMEngine's record of the checkpoint it saved last
        checkpoint = find_latest_checkpoint(work_dir)
        if checkpoint and not osp.isabs(checkpoint):
            checkpoint = osp.join(root, checkpoint)
    if not osp.isfile(config) or not checkpoint or \
            not osp.isfile(checkpoint):
        raise FileNotFoundError(
            'the default real-face model has not been built yet (expected '
            f'{DEFAULT_FACE_CONFIG} and a checkpoint named by '
            f'{DEFAULT_FACE_WORK_DIR}/last_checkpoint): run `make demo` '
            '(about 15 min on 2 CPU cores, offline), or pass --config and '
            '--checkpoint')
    return config, checkpoint
