"""Jitter loss (Sun et al., §3.2, eq. 2–8)."""
from typing import Optional, Tuple

import torch
import torch.nn as nn
from mmpose.registry import MODELS
from torch import Tensor

from mmstable.codecs.pdc_codec import _check_pdc_args, pdc_centre_of_mass


def _safe_l2(vec: Tensor) -> Tensor:
    """L2 norm over the last dim with gradient 0 (not NaN) at the origin.

    ``sqrt`` has an infinite derivative at 0, which happens whenever the
    prediction error is identical in two frames (``e_t == e_{t-1}``) or the
    GT does not move (``c_{t-1,t} == 0``).
    """
    sq = vec.pow(2).sum(dim=-1)
    nonzero = sq > 0
    root = torch.sqrt(torch.where(nonzero, sq, torch.ones_like(sq)))
    return torch.where(nonzero, root, torch.zeros_like(sq))


@MODELS.register_module()
class JitterLoss(nn.Module):
    """Jitter loss for clips of heatmaps (Sun et al., §3.2).

    Per pixel of frame ``t``, landmark ``k`` (eq. 2, 7, 8)::

        L = w * (lambda_pixel + Psi) * GM(s - s_hat),
        GM(d) = d^2 / (d^2 + Theta^2)                                (eq. 7)
        Psi_t = min(||e_t - e_{t-1}||_2 / (||u_hat_t - u_hat_{t-1}||_2 + xi),
                    Theta)                                        (eq. 3/4)
        e_t = u_t - u_hat_t,  u_t = PDC(s_t)                         (eq. 6)

    with ``Psi_0 = 0`` (no previous frame). The paper's eq. 2 is
    ``Psi * GM``; eq. 8 adds the plain pixel term ``lambda * GM``, which
    keeps the first frame and static clips (``Psi = 0``) supervised. The
    loss is the mean over the K·H·W elements of every real frame, like
    MMPose's ``KeypointMSELoss``, times ``loss_weight``: with a ``mask``,
    a frame whose mask is 0 everywhere (a padded frame of a shorter clip in
    the batch) is neither summed nor counted; without one, all B·T frames
    count.

    Units and defaults (one table: ``docs/conventions.md`` §3): ``u``,
    ``u_hat`` and ``xi`` are heatmap pixels (0-based, ``docs/conventions.md``
    §2); ``Theta`` is in heatmap value units inside GM and unitless as the
    cap of ``Psi``; ``Psi`` is computed by :func:`mmstable.codecs.
    pdc_centre_of_mass`, the same Algorithm 1 code as ``PDCCodec``.

    ``psi_grad`` defaults to ``True``: eq. 8 and Fig. 5(b, e) treat
    ``||e_t - e_{t-1}||`` as part of the loss surface, whose gradient pulls
    the prediction toward ``e_t = e_{t-1}`` (the "stable" axis); with
    ``psi_grad=False`` ``Psi`` is a detached per-landmark weight and only
    the GM pixel term is optimised (Fig. 5(a, d) reweighted). The gradient
    through ``Psi`` reaches the heatmaps via the PDC centre of mass (kept
    pixels only) and is 0 where ``Psi`` is capped at ``Theta``, where
    ``e_t == e_{t-1}`` (subgradient 0 of the norm) and for maps that fall
    back to argmax.

    Weights: with ``use_target_weight`` the keypoint weight ``w_t`` masks
    frame ``t``'s loss; ``Psi_t`` is also set to 0 where ``w_{t-1} == 0``,
    because ``u_hat_{t-1}`` of an invisible (or padded) landmark is not a
    valid position. Unlike ``KeypointMSELoss`` (which applies any given
    ``target_weights``), weights are ignored when ``use_target_weight`` is
    ``False``.

    Note:
        - clips per batch: B
        - frames per clip: T (``docs/conventions.md`` §1)
        - keypoints: K
        - heatmap size: [W, H]

    Args:
        jitter_threshold (float): Theta, the GM scale (eq. 7) and the cap of
            Psi (eq. 3). Defaults to 1.0
        xi (float): xi of eq. 3, in heatmap pixels (the paper gives no
            value). Defaults to 0.5
        lambda_pixel (float): lambda of eq. 8 (the paper adapts it; we fix
            it). Defaults to 1.0
        pdc_threshold (float): Theta_PDC for ``u_t`` (Algorithm 1).
            Defaults to 0.2
        pdc_threshold_mode (str): ``'absolute'`` or ``'relative'``, as
            ``PDCCodec.threshold_mode``. Defaults to ``'absolute'``
        psi_grad (bool): Whether the gradient flows through Psi (see above).
            Defaults to ``True``
        use_target_weight (bool): Whether to weight the loss by the keypoint
            weights. Defaults to ``True``
        loss_weight (float): Weight of the loss. Defaults to 1.0
    """

    def __init__(self,
                 jitter_threshold: float = 1.0,
                 xi: float = 0.5,
                 lambda_pixel: float = 1.0,
                 pdc_threshold: float = 0.2,
                 pdc_threshold_mode: str = 'absolute',
                 psi_grad: bool = True,
                 use_target_weight: bool = True,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if not jitter_threshold > 0:
            raise ValueError('JitterLoss: jitter_threshold (Theta) must be '
                             f'> 0, got {jitter_threshold}')
        if not xi > 0:
            # xi regularises the denominator of eq. 3; 0 divides by zero for
            # a static GT landmark.
            raise ValueError(f'JitterLoss: xi must be > 0, got {xi}')
        if not lambda_pixel >= 0:
            raise ValueError('JitterLoss: lambda_pixel must be >= 0, got '
                             f'{lambda_pixel}')
        _check_pdc_args(pdc_threshold, pdc_threshold_mode,
                        'JitterLoss (loss config)')
        self.jitter_threshold = jitter_threshold
        self.xi = xi
        self.lambda_pixel = lambda_pixel
        self.pdc_threshold = pdc_threshold
        self.pdc_threshold_mode = pdc_threshold_mode
        self.psi_grad = psi_grad
        self.use_target_weight = use_target_weight
        self.loss_weight = loss_weight

    def forward(self,
                output: Tensor,
                target: Tensor,
                target_weights: Optional[Tensor] = None,
                target_keypoints: Optional[Tensor] = None,
                mask: Optional[Tensor] = None) -> Tensor:
        """Forward function of loss.

        A 4-D call ``loss(pred, gt, keypoint_weights)`` (N, K, H, W) is read
        as T = 1, so the module drops in where ``KeypointMSELoss`` is used;
        then Psi = 0 and the loss is ``lambda_pixel * mean(w * GM)``.

        Args:
            output (Tensor): Predicted heatmaps s, (B, T, K, H, W) or
                (N, K, H, W)
            target (Tensor): Target heatmaps s_hat, same shape as ``output``
            target_weights (Tensor, optional): Keypoint weights, (B, T, K) or
                (N, K). Defaults to ``None`` (all 1)
            target_keypoints (Tensor, optional): GT landmarks u_hat in
                heatmap pixels, (B, T, K, 2) or (N, K, 2). Required when
                T > 1
            mask (Tensor, optional): Valid-pixel mask broadcastable to
                ``target``, as in ``KeypointMSELoss``. Defaults to ``None``

        Returns:
            Tensor: The scalar loss.
        """
        output, target, weights, keypoints, mask = self._check_shapes(
            output, target, target_weights, target_keypoints, mask)
        B, T, K = output.shape[:3]
        theta = self.jitter_threshold

        diff_sq = (output - target).pow(2)
        gm = diff_sq / (diff_sq + theta**2)  # eq. 7

        # Psi_t, eq. 3/4; Psi_0 = 0.
        psi = output.new_zeros((B, T, K))
        if T > 1:
            # float32: half-precision sums of index-weighted mass lose
            # sub-pixel resolution (mixed-precision training).
            u = pdc_centre_of_mass(
                output.to(torch.promote_types(output.dtype, torch.float32)),
                self.pdc_threshold, self.pdc_threshold_mode)
            u_hat = keypoints.to(u)
            err = u - u_hat
            jitter = _safe_l2(err[:, 1:] - err[:, :-1])
            offset = _safe_l2(u_hat[:, 1:] - u_hat[:, :-1])
            ratio = jitter / (offset + self.xi)
            psi_t = torch.clamp(ratio, max=theta)
            if not self.psi_grad:
                psi_t = psi_t.detach()
            if weights is not None:
                psi_t = psi_t * (weights[:, :-1] > 0)
            psi_t = psi_t.to(output.dtype)
            psi = torch.cat([psi[:, :1], psi_t], dim=1)

        factor = self.lambda_pixel + psi
        if weights is not None:
            factor = factor * weights
        loss = gm * factor[..., None, None]
        if mask is None:
            return loss.mean() * self.loss_weight
        # the mean over real frames only: a frame whose mask is 0 everywhere
        # (a padded frame of a shorter clip) is neither summed nor counted
        real = (mask != 0).flatten(2).any(-1).expand(B, T)
        count = real.sum() * loss[0, 0].numel()
        return (loss * mask).sum() / count.clamp(min=1) * self.loss_weight

    def _check_shapes(
        self, output: Tensor, target: Tensor, target_weights: Optional[Tensor],
        target_keypoints: Optional[Tensor], mask: Optional[Tensor]
    ) -> Tuple[Tensor, Tensor, Optional[Tensor], Optional[Tensor],
               Optional[Tensor]]:
        """Validate shapes and bring everything to the (B, T, K, ...)
        layout."""
        name = self.__class__.__name__
        if output.ndim not in (4, 5):
            raise ValueError(
                f'{name}: expected output heatmaps (B, T, K, H, W) or '
                f'(N, K, H, W), found {tuple(output.shape)}')
        if target.shape != output.shape:
            raise ValueError(
                f'{name}: expected target heatmaps of the output shape '
                f'{tuple(output.shape)}, found {tuple(target.shape)}')
        clip = output.ndim == 5
        lead = tuple(output.shape[:-2])  # (B, T, K) or (N, K)
        lead_names = '(B, T, K)' if clip else '(N, K)'

        if target_weights is not None and self.use_target_weight:
            if tuple(target_weights.shape) != lead:
                raise ValueError(
                    f'{name}: expected target_weights {lead_names} = {lead} '
                    f'(keypoint-wise), found {tuple(target_weights.shape)}')
            weights = target_weights.to(output.dtype)
        else:
            weights = None

        if target_keypoints is not None:
            if tuple(target_keypoints.shape) != lead + (2, ):
                raise ValueError(
                    f'{name}: expected target_keypoints {lead_names[:-1]}, '
                    f'2) = {lead + (2, )} in heatmap pixels, found '
                    f'{tuple(target_keypoints.shape)}')
        elif clip and output.shape[1] > 1:
            raise ValueError(
                f'{name}: target_keypoints (B, T, K, 2) in heatmap pixels '
                f'are required for T = {output.shape[1]} > 1 (Psi, eq. 3); '
                'the head must pass the GT landmarks')

        if mask is not None:
            if mask.ndim != output.ndim or any(
                    m not in (1, o) for m, o in zip(mask.shape, output.shape)):
                raise ValueError(
                    f'{name}: expected mask broadcastable to '
                    f'{tuple(output.shape)} with the same number of dims, '
                    f'found {tuple(mask.shape)}')

        if not clip:
            output, target = output[:, None], target[:, None]
            weights = None if weights is None else weights[:, None]
            if target_keypoints is not None:
                target_keypoints = target_keypoints[:, None]
            mask = None if mask is None else mask[:, None]
        return output, target, weights, target_keypoints, mask
