# Copyright (c) mmstable authors. All rights reserved.
from typing import Dict, Optional

import numpy as np

from mmpose.datasets.transforms import TopdownAffine
from mmpose.registry import TRANSFORMS
from mmpose.structures.bbox import get_udp_warp_matrix, get_warp_matrix


@TRANSFORMS.register_module()
class ShiftedTopdownAffine(TopdownAffine):
    """MMPose's :class:`TopdownAffine` followed by a translation of
    ``results['input_shift']`` input pixels, composed into the same warp.

    MMPose's crop warp is ``A(x) = L (x - c) + o`` (``c`` the bbox centre,
    ``L`` the 2x2 linear part, ``o`` the input-crop centre), so moving the
    centre to ``c' = c - L^-1 d`` gives ``A'(x) = A(x) + d``: the crop content
    and ``transformed_keypoints`` move by exactly ``d = [dx, dy]`` input
    pixels, and the crop is still sampled from the original image (no black
    border from a second warp). ``input_center`` in the packed metainfo is the
    shifted centre, so MMPose's decoding back to image space stays exact.

    Without ``input_shift`` (or with a zero shift) it is exactly
    ``TopdownAffine``.

    Required Keys: as ``TopdownAffine``, plus ``input_shift`` (optional,
    shape (2,), input pixels; see :class:`MakeShiftedClip`).

    Modified Keys: as ``TopdownAffine``, plus ``bbox_center``.

    Args:
        input_size (Tuple[int, int]): [w, h] of the model input.
        use_udp (bool): Use MMPose's UDP warp. Defaults to ``False``.
    """

    def transform(self, results: Dict) -> Optional[dict]:
        shift = results.get('input_shift')
        if shift is not None and np.any(np.asarray(shift) != 0):
            w, h = self.input_size
            center = results['bbox_center'][0]
            scale = self._fix_aspect_ratio(results['bbox_scale'],
                                           aspect_ratio=w / h)[0]
            rot = results['bbox_rotation'][0] \
                if 'bbox_rotation' in results else 0.
            get_mat = get_udp_warp_matrix if self.use_udp else get_warp_matrix
            linear = get_mat(center, scale, rot,
                             output_size=(w, h))[:, :2].astype(np.float64)
            offset = np.linalg.solve(linear, np.asarray(shift, np.float64))
            results['bbox_center'] = (results['bbox_center'] -
                                      offset[None]).astype(np.float32)
        return super().transform(results)
