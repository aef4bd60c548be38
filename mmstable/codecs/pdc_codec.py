"""Probability Density Centralization (PDC) heatmap codec.

Sun et al., "A Backbone Replaceable Fine-tuning Framework for Stable Face
Alignment", §3.3 and Algorithm 1. Coordinate spaces and the meaning of
``pdc_threshold`` are fixed in ``docs/conventions.md`` §2–3.
"""
import functools
import math
from typing import List, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmpose.codecs import MSRAHeatmap
from mmpose.registry import KEYPOINT_CODECS
from torch import Tensor

THRESHOLD_MODES = ('absolute', 'relative')


def _check_pdc_args(threshold: float, mode: str, owner: str) -> None:
    """Raise a ``ValueError`` naming ``owner`` for a bad PDC threshold."""
    if mode not in THRESHOLD_MODES:
        raise ValueError(
            f'{owner}: threshold mode must be one of {THRESHOLD_MODES}, '
            f'got {mode!r}')
    if not isinstance(threshold, (int, float)) or isinstance(
            threshold, bool) or not math.isfinite(threshold):
        raise ValueError(f'{owner}: pdc_threshold must be a finite number, '
                         f'got {threshold!r}')
    if threshold < 0:
        # Algorithm 1 zeroes values *below* the threshold; a negative one
        # would keep negative heatmap values, whose "mass" can cancel and put
        # the centre of mass outside the map.
        raise ValueError(f'{owner}: pdc_threshold must be >= 0, '
                         f'got {threshold}')
    if mode == 'relative' and threshold > 1:
        raise ValueError(
            f'{owner}: a relative pdc_threshold is a fraction of each map\'s '
            f'maximum and must be in [0, 1], got {threshold}')


def pdc_centre_of_mass(heatmaps: Tensor,
                       threshold: float = 0.2,
                       mode: str = 'absolute') -> Tensor:
    """Differentiable PDC centre of mass (Algorithm 1), in heatmap pixels.

    This is the single implementation of Algorithm 1 in mmstable:
    :meth:`PDCCodec.batch_decode` (and so :meth:`PDCCodec.decode`) runs the
    same code (``_pdc``, which also returns the peaks) under
    ``torch.no_grad()``, and :class:`mmstable.models.losses.JitterLoss`
    calls it with gradients for ``u_t`` (eq. 6). The threshold is compared
    in the dtype of ``heatmaps``.

    Per map :math:`\\phi` (after non-finite values are set to 0):

    1. threshold :math:`\\theta = ` ``threshold`` (``mode='absolute'``) or
       ``threshold * max(phi)`` (``mode='relative'``), then clamped at 0;
    2. kept mass :math:`m = \\phi \\cdot [\\phi \\ge \\theta]` (Algorithm 1
       line 1: values *less than* the threshold are set to 0). Negative
       values are never mass: with a threshold of 0 they are zeroed exactly
       as line 1 says, and a negative relative threshold (map max < 0) is
       clamped to 0 for the same effect;
    3. :math:`x = \\sum m \\cdot i / \\sum m`, :math:`y = \\sum m \\cdot j
       / \\sum m` with 0-based column / row indices ``i``, ``j``.
       Algorithm 1 uses ``(i + 1)``; the result here is the paper's value
       minus 1, i.e. heatmap space with pixel centres at integer
       coordinates (``docs/conventions.md`` §2).

    Fallback: a map whose kept mass sums to 0 (everything below the
    threshold, all values <= 0, or all NaN) returns the argmax of the map
    (NaN read as 0; the first pixel in row-major order on ties, so an
    all-NaN or all-zero map gives ``(0, 0)``). The argmax is piecewise
    constant, so the gradient w.r.t. such a map is exactly 0 (finite).

    Gradient: the mask ``[phi >= theta]`` is piecewise constant, so the
    gradient flows through the kept values only; it is 0 for removed pixels
    and for non-finite entries.

    Args:
        heatmaps (Tensor): Heatmaps in shape (..., H, W), floating point
        threshold (float): :math:`\\Theta_{PDC}` (``docs/conventions.md`` §3).
            Defaults to 0.2
        mode (str): ``'absolute'`` or ``'relative'`` (threshold times each
            map's maximum). Defaults to ``'absolute'``

    Returns:
        Tensor: Centres of mass ``[x, y]`` in heatmap pixels, shape
        (..., 2), same dtype as ``heatmaps``; never NaN.
    """
    return _pdc(heatmaps, threshold, mode)[0]


@functools.lru_cache(maxsize=None)
def _keep_above(threshold: float, dtype: torch.dtype) -> float:
    """The ``t`` for which ``F.threshold(phi, t, 0)`` keeps exactly
    ``phi >= threshold`` in ``dtype`` (Algorithm 1, line 1: values *less
    than* the threshold become 0), using one fused op whose gradient is the
    kept mask. ``F.threshold`` keeps ``phi > t``, so ``t`` is the next
    representable value below a positive threshold; a threshold of 0 is used
    as is (zeros carry no mass, and this drops negative denormals)."""
    if threshold == 0:
        return 0.
    return torch.nextafter(
        torch.tensor(threshold, dtype=dtype),
        torch.tensor(-float('inf'), dtype=dtype)).item()


def _profiles(maps: Tensor, t: float, mode: str,
              clean: bool) -> Tuple[Tensor, Tensor, Tensor]:
    """Peaks (N,), column sums (N, W) and row sums (N, H) of the kept mass
    of maps (N, H, W)."""
    if clean:
        # The backward of nan_to_num is 0 at the cleaned entries.
        maps = torch.nan_to_num(maps, nan=0., posinf=0., neginf=0.)
    with torch.no_grad():
        peak = maps.detach().amax(dim=(-2, -1))
    if mode == 'relative':
        # threshold * peak is compared on maps divided by their (detached,
        # positive) peak: the centre of mass and its gradient are invariant
        # to scaling a map, and one scalar threshold serves every map. Maps
        # with peak <= 0 have no mass either way.
        scale = torch.where(peak > 0, peak, torch.ones_like(peak))
        maps = maps / scale[:, None, None]
    mass = F.threshold(maps, t, 0.)  # negative values are never kept
    return peak, mass.sum(dim=-2), mass.sum(dim=-1)


def _pdc(heatmaps: Tensor,
         threshold: float,
         mode: str,
         chunk_size: Optional[int] = None) -> Tuple[Tensor, Tensor]:
    """Algorithm 1; returns (centres (..., 2), peaks (...)). See
    :func:`pdc_centre_of_mass`; peaks are the NaN-cleaned map maxima.

    ``chunk_size`` (maps per step, for decoding without gradients) only
    changes memory traffic: the full-size intermediates of a large batch
    stay in cache instead of being allocated (and paged in) at full size.
    """
    _check_pdc_args(threshold, mode, 'pdc_centre_of_mass')
    if heatmaps.ndim < 2:
        raise ValueError('pdc_centre_of_mass expects heatmaps of shape '
                         f'(..., H, W), got {tuple(heatmaps.shape)}')
    if not heatmaps.is_floating_point():
        heatmaps = heatmaps.float()
    lead, (H, W) = heatmaps.shape[:-2], heatmaps.shape[-2:]
    maps = heatmaps.reshape(-1, H, W)
    t = _keep_above(threshold, maps.dtype)
    N = maps.shape[0]
    step = N if not chunk_size else max(1, chunk_size)

    def profiles(clean):
        parts = [
            _profiles(maps[i:i + step], t, mode, clean)
            for i in range(0, N, step)
        ]
        if len(parts) == 1:
            return parts[0]
        return tuple(torch.cat(p) for p in zip(*parts))

    # NaN / inf would poison every sum. Cleaning costs a full pass, so it is
    # redone with cleaning only when the sums or peaks are not finite.
    # An exported graph (mmstable.deploy) cannot branch on data: it always
    # cleans and always carries the argmax fallback.
    exporting = torch.onnx.is_in_onnx_export()
    peak, col, row = profiles(clean=exporting)
    total = row.sum(dim=-1)
    if not exporting and not (torch.isfinite(total).all()
                              and torch.isfinite(peak).all()):
        peak, col, row = profiles(clean=True)
        total = row.sum(dim=-1)

    xs = torch.arange(W, dtype=maps.dtype, device=maps.device)
    ys = torch.arange(H, dtype=maps.dtype, device=maps.device)
    has_mass = (total > 0) & torch.isfinite(total)
    # Dividing by 1 where there is no mass keeps the unused branch (and so
    # its gradient) finite.
    safe_total = torch.where(has_mass, total, torch.ones_like(total))
    com = torch.stack((col @ xs, row @ ys), dim=-1) / safe_total[:, None]
    valid = has_mass & torch.isfinite(com).all(dim=-1)
    if exporting or not bool(valid.all()):
        with torch.no_grad():  # argmax fallback, only for empty maps
            argmax = torch.nan_to_num(
                maps.detach(), nan=0., posinf=0.,
                neginf=0.).flatten(-2).argmax(dim=-1)
            fallback = torch.stack((argmax % W, argmax // W),
                                   dim=-1).to(com)
        com = torch.where(valid[:, None], com, fallback)
    return com.reshape(lead + (2, )), peak.reshape(lead)


@KEYPOINT_CODECS.register_module()
class PDCCodec(MSRAHeatmap):
    """MSRA heatmaps decoded by Probability Density Centralization (PDC).

    Encoding is :class:`mmpose.codecs.MSRAHeatmap`'s (same generators, same
    ``unbiased`` switch, same ``label_mapping_table`` /
    ``field_mapping_table``), so zoo targets are unchanged. Decoding is
    Algorithm 1 of Sun et al. (§3.3) via :func:`pdc_centre_of_mass`, the same
    function :class:`mmstable.models.losses.JitterLoss` uses for ``u_t``.

    Note:

        - instance number: N (always 1, as in MSRAHeatmap)
        - keypoint number: K
        - keypoint dimension: D (2)
        - batch size: B
        - image size: [w, h]
        - heatmap size: [W, H]

    Encoded:

        - heatmaps (np.ndarray): The generated heatmap in shape (K, H, W)
            where [W, H] is the ``heatmap_size``
        - keypoint_weights (np.ndarray): The target weights in shape (N, K)

    Coordinates (``docs/conventions.md`` §2): the centre of mass is computed
    in heatmap pixels, 0-based, pixel centres at integer coordinates
    (Algorithm 1 is 1-based; PDC here returns the paper's value − 1). The
    decoded keypoints are in input space: heatmap px × ``input_size /
    heatmap_size``, exactly as ``MSRAHeatmap.decode``.

    Scores are each map's peak value (its maximum; NaN / inf read as 0).

    Degenerate maps (see :func:`pdc_centre_of_mass`): negative values are
    never mass (HRNetV2 emits them, §4); NaN / inf values count as 0; a map
    with no kept mass falls back to its argmax (an all-NaN map gives pixel
    (0, 0) and score 0). This differs from MMPose's ``get_heatmap_maximum``,
    which returns -1 for maps with a non-positive maximum: a finite in-map
    point is needed by the Jitter loss, and the score (a peak below the
    threshold) still marks the keypoint as unreliable. Outputs are never
    NaN.

    Args:
        input_size (tuple): Image size in [w, h]
        heatmap_size (tuple): Heatmap size in [W, H]
        sigma (float): The sigma value of the Gaussian heatmap
        unbiased (bool): Whether to use the unbiased (DarkPose) heatmap
            generator in encoding, as in MSRAHeatmap. Decoding is PDC either
            way. Defaults to ``False``
        blur_kernel_size (int): Kept for config compatibility with
            MSRAHeatmap (it only affects DARK decoding, which PDC replaces).
            Defaults to 11
        pdc_threshold (float): :math:`\\Theta_{PDC}` of Algorithm 1, >= 0
            (paper Table 4 picks 0.2). Defaults to 0.2
        threshold_mode (str): ``'absolute'`` (heatmap value units) or
            ``'relative'`` (fraction in [0, 1] of each map's maximum).
            Defaults to ``'absolute'``
    """

    # batch_decode works through the maps in steps of about this many pixels
    # (2 MiB of float32, so a step and its thresholded copy stay in a 2 MiB
    # L2; 2**18-2**19 were fastest of 2**16..2**22 for (32, 98, 64, 64) on
    # CPU) instead of allocating full-batch intermediates; results do not
    # depend on it.
    decode_chunk_elements = 2**19

    def __init__(self,
                 input_size: Tuple[int, int],
                 heatmap_size: Tuple[int, int],
                 sigma: float,
                 unbiased: bool = False,
                 blur_kernel_size: int = 11,
                 pdc_threshold: float = 0.2,
                 threshold_mode: str = 'absolute') -> None:
        super().__init__(
            input_size=input_size,
            heatmap_size=heatmap_size,
            sigma=sigma,
            unbiased=unbiased,
            blur_kernel_size=blur_kernel_size)
        _check_pdc_args(pdc_threshold, threshold_mode,
                        f'{self.__class__.__name__} (codec config)')
        self.pdc_threshold = pdc_threshold
        self.threshold_mode = threshold_mode

    def decode(self, encoded: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Decode keypoint coordinates from heatmaps by PDC. The decoded
        keypoint coordinates are in the input image space.

        Args:
            encoded (np.ndarray): Heatmaps in shape (K, H, W)

        Returns:
            tuple:
            - keypoints (np.ndarray): Decoded keypoint coordinates in shape
                (N, K, D)
            - scores (np.ndarray): The keypoint scores (map peaks) in shape
                (N, K)
        """
        if encoded.ndim != 3:
            raise ValueError(f'{self.__class__.__name__}.decode expects '
                             f'heatmaps (K, H, W), got {encoded.shape}')
        heatmaps = torch.from_numpy(np.ascontiguousarray(encoded))
        keypoints, scores = self.batch_decode(heatmaps[None])
        return keypoints[0], scores[0]

    def batch_decode(self, batch_heatmaps: Union[Tensor, np.ndarray]
                     ) -> Tuple[List[np.ndarray], List[np.ndarray]]:
        """Decode a batch of heatmaps by PDC, vectorised over the batch (the
        form ``BaseHead.decode`` calls when ``support_batch_decoding``).

        Args:
            batch_heatmaps (Tensor): Heatmaps in shape (B, K, H, W)

        Returns:
            tuple:
            - batch_keypoints (List[np.ndarray]): B arrays of decoded keypoint
                coordinates (input space), each in shape (N, K, D)
            - batch_scores (List[np.ndarray]): B arrays of keypoint scores
                (map peaks), each in shape (N, K)
        """
        batch_heatmaps = torch.as_tensor(batch_heatmaps)
        if batch_heatmaps.ndim != 4:
            raise ValueError(
                f'{self.__class__.__name__}.batch_decode expects heatmaps '
                f'(B, K, H, W), got {tuple(batch_heatmaps.shape)}')
        with torch.no_grad():
            heatmaps = batch_heatmaps.detach()
            if not heatmaps.is_floating_point():
                heatmaps = heatmaps.float()
            H, W = heatmaps.shape[-2:]
            centres, scores = _pdc(
                heatmaps, self.pdc_threshold, self.threshold_mode,
                max(1, self.decode_chunk_elements // (H * W)))
        keypoints = centres.float().cpu().numpy() * self.scale_factor
        scores = scores.float().cpu().numpy()
        # (B, K, ...) -> B views of (N=1, K, ...)
        return list(keypoints[:, None]), list(scores[:, None])
