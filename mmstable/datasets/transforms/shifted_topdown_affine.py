# Copyright (c) mmstable authors. All rights reserved.
from typing import Dict, Optional

import numpy as np

from mmpose.datasets.transforms import TopdownAffine
from mmpose.registry import TRANSFORMS
from mmpose.structures.bbox import get_udp_warp_matrix, get_warp_matrix


def _homogeneous(mat: np.ndarray) -> np.ndarray:
    out = np.eye(3)
    out[:2] = np.asarray(mat, np.float64).reshape(2, 3)
    return out


@TRANSFORMS.register_module()
class ShiftedTopdownAffine(TopdownAffine):
    """MMPose's :class:`TopdownAffine` for one frame of a pseudo-clip: an
    optional translation of the crop in input space (``input_shift``), an
    optional similarity motion of the face in the source image
    (``face_warp``), and the frame's crop transform packed as
    ``crop_affine``.

    **input_shift.** MMPose's crop warp is ``A(x) = L (x - c) + o`` (``c``
    the bbox centre, ``L`` the 2x2 linear part, ``o`` the input-crop centre),
    so moving the centre to ``c' = c - L^-1 d`` gives ``A'(x) = A(x) + d``:
    the crop content and ``transformed_keypoints`` move by exactly
    ``d = [dx, dy]`` input pixels, and the crop is still sampled from the
    original image (no black border from a second warp). ``input_center`` in
    the packed metainfo is the shifted centre, so MMPose's decoding back to
    image space stays exact.

    **face_warp** (2x3 similarity ``F``, set by :class:`MakeMotionClip`): the
    frame's image is the source warped by ``F`` (the face moved in the
    image), and the bbox (``bbox_center`` / ``bbox_scale`` /
    ``bbox_rotation``) is the frame's detector box *in that warped image*.
    Cropping the warped image with box ``B`` is the crop of the source with
    the box ``F^-1(B)`` (centre ``F^-1(c)``, scale ``/ s_F``, rotation
    ``- θ_F``), so it costs one warp, as ``TopdownAffine``. Afterwards the
    frame is described in its own (warped) image: ``keypoints = F(x)``,
    ``bbox_*``, ``input_center`` and ``input_scale`` are the box in the
    warped image, and ``crop_affine`` maps ``keypoints`` onto
    ``transformed_keypoints``. The refiner is told the crop (``crop_affine``)
    but not ``F``: it must follow the face's own motion from the heatmaps.

    Without ``input_shift`` and ``face_warp`` it is exactly ``TopdownAffine``
    plus ``crop_affine``.

    Required Keys: as ``TopdownAffine``, plus ``input_shift`` (optional,
    shape (2,), input pixels; see :class:`MakeShiftedClip`) and
    ``face_warp`` (optional, (2, 3), source image -> frame image, a
    similarity; see :class:`MakeMotionClip`).

    Modified Keys: as ``TopdownAffine``, plus ``bbox_center`` (and, with
    ``face_warp``, ``keypoints``, ``bbox`` (the GT box, moved with the face
    and scaled by ``F``'s scale), ``bbox_scale``, ``bbox_rotation``).

    Added Keys: ``crop_affine`` (np.ndarray (2, 3) float64: the frame's image
    -> input-space pixels, the exact matrix the crop was warped with;
    docs/conventions.md §2), as :class:`PackClipInputs` packs it.

    Args:
        input_size (Tuple[int, int]): [w, h] of the model input.
        use_udp (bool): Use MMPose's UDP warp. Defaults to ``False``.
    """

    def _warp_matrix(self, center, scale, rot) -> np.ndarray:
        w, h = self.input_size
        get_mat = get_udp_warp_matrix if self.use_udp else get_warp_matrix
        return get_mat(center, scale, rot,
                       output_size=(w, h)).astype(np.float64)

    @staticmethod
    def _rotation(results) -> float:
        return float(results['bbox_rotation'][0]) \
            if 'bbox_rotation' in results else 0.

    @staticmethod
    def _check_similarity(mat: np.ndarray) -> tuple:
        """(scale, angle in degrees) of a 2x3 similarity ``[sR | t]``."""
        if mat.shape != (2, 3):
            raise ValueError(
                'ShiftedTopdownAffine: expected results["face_warp"] of '
                f'shape (2, 3) (source -> frame image), found {mat.shape}; '
                'MakeMotionClip sets it.')
        (a, b), (c, d) = mat[:, :2]
        scale = np.hypot(a, c)
        if not (scale > 0 and np.allclose([a, b], [d, -c], atol=1e-6 *
                                          max(scale, 1.))):
            raise ValueError(
                'ShiftedTopdownAffine: results["face_warp"] must be a '
                'similarity [[s cos, -s sin, tx], [s sin, s cos, ty]] with '
                f's > 0, found {mat.tolist()}')
        return scale, np.degrees(np.arctan2(c, a))

    def transform(self, results: Dict) -> Optional[dict]:
        face_warp = results.get('face_warp')
        if face_warp is not None:
            warp = _homogeneous(face_warp)
            warp_scale, warp_angle = self._check_similarity(warp[:2])
            inv = np.linalg.inv(warp)
            # the frame's box in the warped image -> the same crop's box in
            # the source (get_warp_matrix rotates its box by -rot)
            center = results['bbox_center'][0].astype(np.float64)
            results['bbox_center'] = (inv[:2, :2] @ center +
                                      inv[:2, 2])[None].astype(np.float32)
            results['bbox_scale'] = (results['bbox_scale'] /
                                     warp_scale).astype(np.float32)
            results['bbox_rotation'] = np.array(
                [self._rotation(results) - warp_angle], np.float32)

        shift = results.get('input_shift')
        if shift is not None and np.any(np.asarray(shift) != 0):
            w, h = self.input_size
            scale = self._fix_aspect_ratio(results['bbox_scale'],
                                           aspect_ratio=w / h)[0]
            linear = self._warp_matrix(results['bbox_center'][0], scale,
                                       self._rotation(results))[:, :2]
            offset = np.linalg.solve(linear, np.asarray(shift, np.float64))
            results['bbox_center'] = (results['bbox_center'] -
                                      offset[None]).astype(np.float32)
        results = super().transform(results)
        # the matrix TopdownAffine warped with (same call, same arguments)
        crop = _homogeneous(
            self._warp_matrix(results['bbox_center'][0],
                              results['bbox_scale'][0],
                              self._rotation(results)))
        if face_warp is not None:
            crop = crop @ inv
            center = results['bbox_center'][0].astype(np.float64)
            results['bbox_center'] = (warp[:2, :2] @ center +
                                      warp[:2, 2])[None].astype(np.float32)
            results['bbox_scale'] = (results['bbox_scale'] *
                                     warp_scale).astype(np.float32)
            results['bbox_rotation'] = np.array(
                [self._rotation(results) + warp_angle], np.float32)
            results['input_center'] = results['bbox_center'][0]
            results['input_scale'] = results['bbox_scale'][0]
            if np.ndim(results.get('bbox')) == 2:
                # the GT box (NME's 'bbox_size' norm) follows the face:
                # centre mapped by F, sides scaled by its scale
                box = results['bbox'].astype(np.float64)
                centre = (box[:, :2] + box[:, 2:]) / 2
                half = (box[:, 2:] - box[:, :2]) / 2 * warp_scale
                centre = centre @ warp[:2, :2].T + warp[:2, 2]
                results['bbox'] = np.concatenate(
                    [centre - half, centre + half], axis=1).astype(np.float32)
            if np.ndim(results.get('keypoints')) == 3:
                kpts = results['keypoints'].astype(np.float64)
                kpts = kpts @ warp[:2, :2].T + warp[:2, 2]
                results['keypoints'] = kpts.astype(np.float32)
        results['crop_affine'] = crop[:2]
        return results
