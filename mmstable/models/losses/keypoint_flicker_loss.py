"""Accuracy + flicker loss of landmark tracks (the keypoint stage of the
refiner: :class:`~mmstable.models.layers.AdaptiveKalmanFilter`)."""
from typing import Optional

import torch
import torch.nn as nn
from mmpose.registry import MODELS
from torch import Tensor

from .jitter_loss import _safe_l2


@MODELS.register_module()
class KeypointFlickerLoss(nn.Module):
    """The two numbers of the Pareto report as one loss, on clips of
    landmarks: error and frame-to-frame change of the error (NMF's
    ``e_t − e_{t−1}``), both in % of the face size::

        e_{t,k} = 100 · (x_{t,k} − x̂_{t,k}) / S_t
        L = mean_{t,k} ‖e_{t,k}‖ + jitter_weight · mean_{t≥1,k} ‖e_{t,k} − e_{t−1,k}‖

    ``S_t = sqrt(w_t · h_t)`` the extent of the target landmarks of frame t
    (NMF's face scale, without its 256 px reference). Means run over the
    entries whose weights are > 0 (both frames for the second term), so
    padded frames (weight 0) never count. ``jitter_weight`` sets where on
    the accuracy / flicker trade-off training aims; the result times
    ``loss_weight``.

    ``flicker='rms'`` takes the flicker term as NMF does
    (:func:`mmstable.evaluation.functional.nmf`: an RMS, so a few large
    jumps weigh more than many small ones)::

        sqrt(mean_{t≥1,k} ‖e_{t,k} − e_{t−1,k}‖²)

    Args:
        jitter_weight (float): weight of the flicker term (>= 0).
        loss_weight (float): weight of the whole loss.
        flicker (str): ``'mean'`` (the mean norm, default) or ``'rms'``.
    """

    def __init__(self,
                 jitter_weight: float = 0.1,
                 loss_weight: float = 1.,
                 flicker: str = 'mean'):
        super().__init__()
        if jitter_weight < 0 or loss_weight < 0:
            raise ValueError('KeypointFlickerLoss: jitter_weight and '
                             'loss_weight must be >= 0, got '
                             f'{jitter_weight!r}, {loss_weight!r}')
        if flicker not in ('mean', 'rms'):
            raise ValueError("KeypointFlickerLoss: flicker must be 'mean' or "
                             f"'rms', got {flicker!r}")
        self.jitter_weight = float(jitter_weight)
        self.loss_weight = float(loss_weight)
        self.flicker = flicker

    def forward(self,
                pred: Tensor,
                target: Tensor,
                weights: Optional[Tensor] = None) -> Tensor:
        """Args:
            pred (Tensor): (B, T, K, 2) predicted landmarks (any pixels).
            target (Tensor): (B, T, K, 2) ground truth, the same pixels.
            weights (Tensor, optional): (B, T, K); > 0 counts.

        Returns:
            Tensor: scalar loss.
        """
        if pred.shape != target.shape or pred.ndim != 4 or \
                pred.shape[-1] != 2:
            raise ValueError('KeypointFlickerLoss: pred and target must both '
                             'be (B, T, K, 2), got '
                             f'{tuple(pred.shape)} and {tuple(target.shape)}')
        if weights is None:
            weights = pred.new_ones(pred.shape[:3])
        if weights.shape != pred.shape[:3]:
            raise ValueError('KeypointFlickerLoss: weights must be (B, T, K) '
                             f'= {tuple(pred.shape[:3])}, got '
                             f'{tuple(weights.shape)}')
        valid = weights > 0
        big = torch.finfo(target.dtype).max
        lo = torch.where(valid[..., None], target, target.new_tensor(big))
        hi = torch.where(valid[..., None], target, target.new_tensor(-big))
        extent = (hi.amax(2) - lo.amin(2)).clamp_min(0)
        scale = (extent[..., 0] * extent[..., 1]).clamp_min(1e-12).sqrt()
        err = 100. * (pred - target) / scale[..., None, None]
        acc = _masked_mean(_safe_l2(err), valid)
        both = valid[:, 1:] & valid[:, :-1]
        change = err[:, 1:] - err[:, :-1]
        if self.flicker == 'rms':
            flicker = _masked_mean(change.square().sum(-1), both).clamp_min(
                1e-12).sqrt()
        else:
            flicker = _masked_mean(_safe_l2(change), both)
        return self.loss_weight * (acc + self.jitter_weight * flicker)


def _masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    mask = mask.to(x)
    return (x * mask).sum() / mask.sum().clamp_min(1.)
