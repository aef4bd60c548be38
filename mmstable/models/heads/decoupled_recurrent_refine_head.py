"""Seed 003's recurrent encoder-decoder (REDnet) as a second refiner on the
same frozen MMPose model (issue 14)."""
from contextlib import contextmanager
from dataclasses import replace
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmpose.registry import MODELS
from mmpose.utils.typing import (ConfigType, Features, OptConfigType,
                                 OptSampleList, Predictions)

from mmstable.structures import TrackState, clip_mask, pad_clips, split_clips
from ..layers import ConvLSTMCell
from .convlstm_refine_head import ConvLSTMRefineHead, _avg_pool


@MODELS.register_module()
class DecoupledRecurrentRefineHead(ConvLSTMRefineHead):
    """REDnet (Peng et al., "A Recurrent Encoder-Decoder Network for
    Sequential Face Alignment", seed 003) on a frozen MMPose heatmap model:
    recurrence on the bottleneck *features*, not on the heatmaps.

    For frame t with the frozen backbone's last features ``x_t`` (N, C, h, w)
    (the base head's input) and base heatmaps ``o_t = base_head(x_t)``::

        v_t, u_t  = V(x_t), U(x_t)                 # learned 1×1 splits
        h', c'    = W_t(h_{t-1}, c_{t-1})          # state follows the face
        h_t, c_t  = ConvLSTM(h', c', v_t)          # temporal recurrence
        y_t       = x_t + R(h_t, u_t)              # R zero-initialised
        s^1_t     = base_head(y_t)
        s^i_t     = base_head(y_t + F(P(s^{i-1}_t)))   i = 2 … n_iters

    ``v`` is the temporal-variant part (pose, expression), ``u`` the
    temporal-invariant one (identity): its spatial mean ``z_t`` (N, C_u) is
    trained to be constant within a clip (invariance term: the within-clip
    variance of ``z``) and to classify the identity (a linear identity head
    and cross-entropy, on frames whose metainfo has ``identity`` >= 0;
    skipped elsewhere). ``F`` (K → C, 1×1, zero-initialised) feeds the
    previous pass's heatmaps, average-pooled (``P``) to the feature
    resolution, back into the features: the spatial feedback loop, weights
    shared across passes. ``R`` and ``F`` start at zero, so an untrained head
    returns the frozen model's heatmaps ``o_t`` exactly. The base head is the
    decoder: frozen (by :class:`~mmstable.models.StableTopdownPoseEstimator`)
    but run with gradients to its input.

    Everything about clips and tracks is :class:`ConvLSTMRefineHead`'s,
    inherited, not re-implemented: the state ``(h, c)`` lives at the
    feature resolution (heatmap / ``stride``, ``stride`` = heatmap size /
    feature size, found at run time), is reset at every training clip,
    carried per ``video_id`` in test mode (``max_frame_gap``, dropped when a
    track is absent from a call, :meth:`reset_state`) and warped into each
    frame's crop with the face's motion (:class:`TrackState`, fitted to the
    frozen model's raw keypoints ``o_t``) exactly as there. The inherited
    :meth:`loss`, :meth:`predict` and :meth:`forward` call :meth:`refine` on
    the base heatmaps; this head puts the frames' features beside them first
    (:meth:`_frame_features`).

    Args:
        base_head (dict): config of the MMPose heatmap head (its input is
            the backbone's / neck's last feature map, ``feats[-1]``).
        variant_channels (int): channels of ``v`` (C_v).
        invariant_channels (int): channels of ``u`` (C_u).
        hidden_channels (int): channels of ``h`` and ``c``.
        kernel_size (int): kernel of the ConvLSTM's gate convolution.
        n_iters (int): spatial-feedback passes through the base head (1 = no
            feedback), weights shared.
        temporal (bool): ``False`` resets the state at every frame (the
            temporal-recurrence ablation; ``v`` still goes through the cell).
        num_identities (int, optional): classes of the identity head
            (e.g. 40 for the synthetic training split); ``None``: no identity
            head. The head exists only while ``identity_loss_weight > 0``.
        identity_loss_weight (float): weight of the identity cross-entropy
            (0: off, the identity ablation; needs ``num_identities``
            otherwise).
        invariance_loss_weight (float): weight of the invariance term
            (0: off).
        warp_state, motion_compensation, loss, decoder, max_frame_gap,
        init_cfg: as :class:`ConvLSTMRefineHead` (``motion_compensation``
            ``'predicted'`` and ``memory`` are not supported).
        **kwargs: other :class:`ConvLSTMRefineHead` options that do not
            concern its heatmap cell (an unknown one is a ``TypeError``).
    """

    def __init__(self,
                 base_head: ConfigType,
                 variant_channels: int = 16,
                 invariant_channels: int = 16,
                 hidden_channels: int = 16,
                 kernel_size: int = 3,
                 n_iters: int = 1,
                 temporal: bool = True,
                 num_identities: Optional[int] = None,
                 identity_loss_weight: float = 0.,
                 invariance_loss_weight: float = 0.,
                 warp_state: bool = True,
                 motion_compensation: str = 'similarity',
                 loss: ConfigType = dict(type='JitterLoss'),
                 decoder: OptConfigType = None,
                 max_frame_gap: int = 1,
                 init_cfg: OptConfigType = None,
                 **kwargs):
        where = 'DecoupledRecurrentRefineHead'
        for key, value in (('variant_channels', variant_channels),
                           ('invariant_channels', invariant_channels),
                           ('hidden_channels', hidden_channels),
                           ('n_iters', n_iters)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f'{where}: {key} must be an integer >= 1, '
                                 f'got {value!r} (model.head.{key} in the '
                                 'config)')
        for key, value in (('identity_loss_weight', identity_loss_weight),
                           ('invariance_loss_weight',
                            invariance_loss_weight)):
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f'{where}: {key} must be a number >= 0, got '
                                 f'{value!r} (model.head.{key} in the '
                                 'config)')
        if num_identities is not None and (not isinstance(
                num_identities, int) or num_identities < 2):
            raise ValueError(f'{where}: num_identities must be None or an '
                             f'integer >= 2, got {num_identities!r} '
                             '(model.head.num_identities in the config)')
        if identity_loss_weight > 0 and num_identities is None:
            raise ValueError(
                f'{where}: identity_loss_weight={identity_loss_weight} needs '
                'num_identities (the identity classes of the training set, '
                'e.g. 40 for the synthetic train split); set model.head.'
                'num_identities or identity_loss_weight=0')
        if motion_compensation == 'predicted':
            raise ValueError(
                f"{where}: motion_compensation='predicted' is not supported "
                "(it needs the refined history); use 'similarity', "
                "'translation' or 'none' (model.head.motion_compensation)")
        # the clip / track / warp machinery of ConvLSTMRefineHead; its own
        # heatmap cell is replaced below
        super().__init__(
            base_head=base_head, hidden_channels=1,
            share_across_keypoints=False, bottleneck_channels=None,
            state_stride=1, warp_state=warp_state,
            motion_compensation=motion_compensation, loss=loss,
            decoder=decoder, max_frame_gap=max_frame_gap, init_cfg=init_cfg,
            **kwargs)
        del self.in_proj, self.cell, self.out_proj
        in_channels = getattr(self.base_head, 'in_channels', None)
        if not isinstance(in_channels, int):
            raise TypeError(
                f'{where}: base_head must have an integer `in_channels` (the '
                f'channels of feats[-1]); {type(self.base_head).__name__} '
                f'has {in_channels!r}. Check model.head.base_head.')
        self.in_channels = in_channels
        self.n_iters = n_iters
        self.temporal = temporal
        self.identity_loss_weight = float(identity_loss_weight)
        self.invariance_loss_weight = float(invariance_loss_weight)
        self.state_channels = hidden_channels

        self.variant_proj = nn.Conv2d(in_channels, variant_channels, 1)
        self.invariant_proj = nn.Conv2d(in_channels, invariant_channels, 1)
        self.cell = ConvLSTMCell(variant_channels, hidden_channels,
                                 kernel_size)
        self.combine = nn.Conv2d(hidden_channels + invariant_channels,
                                 in_channels, 1)
        nn.init.zeros_(self.combine.weight)
        nn.init.zeros_(self.combine.bias)
        if n_iters > 1:
            self.feedback = nn.Conv2d(self.out_channels, in_channels, 1)
            nn.init.zeros_(self.feedback.weight)
            nn.init.zeros_(self.feedback.bias)
        # only with its loss: an unused layer would break DDP
        self.identity_head = (
            nn.Linear(invariant_channels, num_identities)
            if num_identities is not None and identity_loss_weight > 0 else
            None)
        self.num_identities = num_identities
        self._frames = None  # see _frame_features
        self._test_feats = None  # feats[-1] of the current predict call
        self._invariant = None  # z of the last refine, (B, T, C_u)

    # ----------------------------------------------------- features in refine
    @contextmanager
    def _frame_features(self, feats: Features, mode: str):
        """Put the frames' features beside the base heatmaps that the
        inherited code hands to :meth:`refine`.

        ``mode='padded'``: ``feats`` is (B, T, C, h, w), padded like the
        heatmaps (:meth:`loss`, :meth:`forward`). ``mode='indexed'``:
        ``feats`` is ``(x, o)``, the (N, C, h, w) features and (N, K, H, W)
        base heatmaps of the batch's frames, and :meth:`refine` receives
        maps holding each frame's batch index instead of heatmaps
        (:meth:`_predict_stateful`), from which it gathers both.
        """
        self._frames = (mode, feats)
        try:
            yield
        finally:
            self._frames = None

    def _stride(self, heatmap_size: Sequence[int],
                feature_size: Sequence[int]) -> int:
        """Heatmap pixels per feature pixel (the state's resolution)."""
        (height, width), (h, w) = heatmap_size, feature_size
        stride = height // h
        if stride < 1 or height != stride * h or width != stride * w:
            raise ValueError(
                f'DecoupledRecurrentRefineHead: heatmaps of {height}x{width} '
                f'are not an integer multiple of the features\' {h}x{w}; the '
                'base head must upsample by an integer factor (check model.'
                'head.base_head)')
        return stride

    def map_stage_is_identity(self) -> bool:
        """Never skipped: this head's recurrence reads the features, not
        only the maps (:meth:`ConvLSTMRefineHead.map_stage_is_identity`)."""
        return False

    def refine(self,
               heatmaps: Tensor,
               state: Optional[TrackState] = None,
               lengths: Optional[Sequence[int]] = None,
               affines: Optional[Tensor] = None
               ) -> Tuple[Tensor, TrackState]:
        """The recurrence above over clips (signature and state as
        :meth:`ConvLSTMRefineHead.refine`); the features come from
        :meth:`_frame_features`.

        Args:
            heatmaps (Tensor): base heatmaps ``o`` (B, T, K, H, W), or frame
                indices broadcast to that shape (``'indexed'`` features).

        Returns:
            tuple: refined heatmaps (B, T, K, H, W) and the
            :class:`TrackState` after each clip's last (real) frame. The
            invariant descriptors ``z`` (B, T, C_u) are kept for the loss.
        """
        if self._frames is None:
            raise RuntimeError(
                'DecoupledRecurrentRefineHead.refine needs the frames\' '
                'features, not only heatmaps: call forward / loss / predict')
        mode, feats = self._frames
        if mode == 'indexed':
            frame_feats, frame_heatmaps = feats
            index = heatmaps[:, :, 0, 0, 0].round().long()
            x, heatmaps = frame_feats[index], frame_heatmaps[index]
        else:
            x = feats
        b, t, k, height, width = heatmaps.shape
        stride = self._stride((height, width), x.shape[-2:])
        flat_x = x.flatten(0, 1)
        v = self.variant_proj(flat_x).unflatten(0, (b, t))
        u = self.invariant_proj(flat_x)

        if self.warp_state:
            affines, kpts, scores = self._warp_inputs(heatmaps, affines)
        carry = state is not None
        if state is None:
            state = TrackState.zeros(b, self.state_channels, x.shape[-2:],
                                     k, heatmaps)
        zero = torch.zeros_like(state.h)
        hidden, states = [], []
        for i in range(t):
            if not self.temporal:
                state = replace(state, h=zero, c=zero)
            elif self.warp_state:
                if carry or i > 0:
                    state = state.carried_to(affines[:, i], kpts[:, i],
                                             scores[:, i],
                                             self.motion_compensation,
                                             stride)
                else:
                    state = replace(state, affine=affines[:, i],
                                    keypoints=kpts[:, i], scores=scores[:, i])
            h, c = self.cell(v[:, i], (state.h, state.c))
            state = replace(state, h=h, c=c)
            hidden.append(h)
            states.append(state)
        if lengths is not None and any(n != t for n in lengths):
            state = TrackState.cat(
                [states[n - 1].rows(r) for r, n in enumerate(lengths)])

        y = flat_x + self.combine(torch.cat([torch.stack(hidden, 1).flatten(
            0, 1), u], 1))
        refined = self._decode_features(y)
        for _ in range(self.n_iters - 1):
            refined = self._decode_features(
                y + self.feedback(_avg_pool(refined, stride)))
        self._invariant = u.mean((-2, -1)).unflatten(0, (b, t))
        return refined.view(b, t, k, height, width), state

    def _decode_features(self, features: Tensor) -> Tensor:
        """The (frozen) base head on features (N, C, h, w), gradients flowing
        to the features (its own parameters stay frozen)."""
        return self.base_head.forward((features, ))

    # --------------------------------------------- inherited entry points
    def forward(self,
                feats: Tuple[Tensor],
                batch_data_samples: OptSampleList = None) -> Tensor:
        """As :meth:`ConvLSTMRefineHead.forward` (state reset per clip)."""
        x = feats[-1]
        padded = x[:, None] if batch_data_samples is None else pad_clips(
            x, split_clips(batch_data_samples))
        with self._frame_features(padded, 'padded'):
            return super().forward(feats, batch_data_samples)

    def predict(self,
                feats: Features,
                batch_data_samples: OptSampleList,
                test_cfg: ConfigType = {}) -> Predictions:
        """As :meth:`ConvLSTMRefineHead.predict` (state per ``video_id``),
        without flip test: the refiner recurs on the features of one view."""
        if test_cfg.get('flip_test', False):
            raise ValueError(
                'DecoupledRecurrentRefineHead: flip_test is not supported (one'
                ' recurrent state follows the unflipped features); set '
                'model.test_cfg.flip_test=False')
        self._test_feats = feats[-1]
        try:
            return super().predict(feats, batch_data_samples, test_cfg)
        finally:
            self._test_feats = None

    def _predict_stateful(self, heatmaps: Tensor,
                          batch_data_samples: Sequence,
                          refine: bool = True) -> Tensor:
        # the inherited run / track bookkeeping moves frames around as maps:
        # give it each frame's index, refine gathers features and heatmaps
        x = self._test_feats
        self.state_stride = self._stride(heatmaps.shape[-2:], x.shape[-2:])
        index = torch.arange(len(heatmaps)).to(heatmaps)[:, None, None, None]
        with self._frame_features((x, heatmaps), 'indexed'):
            return super()._predict_stateful(index.expand_as(heatmaps),
                                             batch_data_samples, refine)

    def _skip_map_stage_in_loss(self) -> bool:
        # the identity and invariance losses need the recurrence's features
        return False

    def loss(self,
             feats: Tuple[Tensor],
             batch_data_samples: OptSampleList,
             train_cfg: ConfigType = {}) -> dict:
        """:meth:`ConvLSTMRefineHead.loss` (``loss_kpt``, ``acc_pose``) plus
        ``loss_identity`` (cross-entropy of the identity head on frames with
        an ``identity`` label; 0 without any) and ``loss_invariance`` (mean
        over clips of the within-clip variance of ``z``, averaged over
        channels; clips of one frame add 0), each times its weight."""
        clips = split_clips(batch_data_samples)
        with self._frame_features(pad_clips(feats[-1], clips), 'padded'):
            losses = super().loss(feats, batch_data_samples, train_cfg)
        z, self._invariant = self._invariant, None
        mask = clip_mask(clips, z.device).to(z)  # (B, T)
        if self.invariance_loss_weight > 0:
            losses['loss_invariance'] = self.invariance_loss_weight * \
                self.within_clip_variance(z, mask)
        if self.identity_head is not None and self.identity_loss_weight > 0:
            losses['loss_identity'] = self.identity_loss_weight * \
                self._identity_loss(z, mask, clips, batch_data_samples)
        return losses

    @staticmethod
    def within_clip_variance(z: Tensor, mask: Tensor) -> Tensor:
        """Mean over clips of ``mean_t ‖z_t − z̄‖² / C`` over the real frames
        (``mask`` (B, T), 1 = real), the biased variance of each channel
        averaged over channels. ``z``: (B, T, C)."""
        count = mask.sum(1).clamp(min=1)
        mean = (z * mask[..., None]).sum(1) / count[:, None]
        sq = ((z - mean[:, None])**2).mean(-1) * mask
        return (sq.sum(1) / count).mean()

    def _identity_loss(self, z: Tensor, mask: Tensor, clips,
                       batch_data_samples: Sequence) -> Tensor:
        labels = torch.tensor([
            int(batch_data_samples[start].metainfo.get('identity', -1))
            for start, _ in clips
        ], device=z.device)
        bad = labels >= self.num_identities
        if bad.any():
            raise ValueError(
                f'DecoupledRecurrentRefineHead: identity label '
                f'{int(labels[bad][0])} >= num_identities='
                f'{self.num_identities}; set model.head.num_identities to the'
                ' number of identities of the training set')
        logits = self.identity_head(z)  # (B, T, num_identities)
        weights = mask * (labels >= 0).to(mask)[:, None]
        if not weights.any():
            return logits.sum() * 0.  # no labels here; keep the graph
        ce = F.cross_entropy(
            logits.flatten(0, 1), labels.clamp(min=0).repeat_interleave(
                z.shape[1]), reduction='none')
        return (ce * weights.flatten()).sum() / weights.sum()
