"""The crop transform of a frame: image space → input space
(docs/conventions.md §2), as the affine matrix MMPose's ``TopdownAffine``
warped the frame with.

The refiner needs it to carry its recurrent state from one frame's crop into
the next one's (:mod:`mmstable.structures.track_state`). A pipeline may pack
it as metainfo ``crop_affine`` (2×3); otherwise it is rebuilt from what
MMPose's ``PackPoseInputs`` packs by default (``input_center``,
``input_scale``, ``input_size``, plus ``bbox_rotation`` when a pipeline
packs it) with MMPose's own :func:`get_warp_matrix` — exactly the call of
``TopdownAffine`` (non-UDP).
"""
from typing import Mapping, Optional, Sequence

import numpy as np

from mmpose.structures.bbox import get_warp_matrix


def crop_affine_from_metainfo(metainfo: Mapping) -> Optional[np.ndarray]:
    """Image → input-space affine of one frame, (2, 3) float64, or ``None``
    when the metainfo has neither ``crop_affine`` nor
    ``input_center`` / ``input_scale`` / ``input_size``."""
    if 'crop_affine' in metainfo:
        mat = np.asarray(metainfo['crop_affine'], dtype=np.float64)
        if mat.shape == (3, 3):
            mat = mat[:2]
        if mat.shape != (2, 3):
            raise ValueError(
                'metainfo "crop_affine" must be the 2x3 image -> input-space '
                f'matrix of the frame\'s crop; found shape {mat.shape}. Fix '
                'the transform that packs it (docs/conventions.md §2).')
        return mat
    if not all(k in metainfo
               for k in ('input_center', 'input_scale', 'input_size')):
        return None
    center = np.asarray(metainfo['input_center'], np.float64).reshape(-1)[:2]
    scale = np.asarray(metainfo['input_scale'], np.float64).reshape(-1)[:2]
    rot = metainfo.get('bbox_rotation', 0.)
    rot = float(np.asarray(rot, np.float64).reshape(-1)[0]) if np.size(
        rot) else 0.
    w, h = (int(v) for v in metainfo['input_size'])
    return get_warp_matrix(center, scale, rot, output_size=(w, h))


def heatmap_affine(crop_affine: Optional[np.ndarray],
                   input_size: Sequence[int],
                   heatmap_size: Sequence[int]) -> np.ndarray:
    """Image → heatmap-pixel affine (3, 3): the crop affine followed by the
    input → heatmap scale ``heatmap_size / input_size`` (conventions §2).
    ``crop_affine=None`` (a frame without crop info) is the identity crop:
    the image *is* the input."""
    mat = np.eye(3)
    if crop_affine is not None:
        mat[:2] = crop_affine
    scale = np.diag([
        heatmap_size[0] / input_size[0], heatmap_size[1] / input_size[1], 1.
    ])
    return scale @ mat
