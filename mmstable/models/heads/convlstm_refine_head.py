import inspect
from dataclasses import replace
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from torch import Tensor, nn

from mmpose.evaluation.functional import pose_pck_accuracy
from mmpose.models.heads.base_head import BaseHead
from mmpose.models.utils.tta import flip_heatmaps
from mmpose.registry import KEYPOINT_CODECS, MODELS
from mmpose.utils.tensor_utils import to_numpy
from mmpose.utils.typing import (ConfigType, Features, OptConfigType,
                                 OptSampleList, Predictions)

from mmstable.codecs.pdc_codec import _pdc
from mmstable.structures import (MOTION_MODES, TrackState, apply_affine,
                                 clip_mask, crop_affine_from_metainfo,
                                 heatmap_affine, pad_clips, split_clips,
                                 unpad_clips)
from ..layers import (ConvLSTMCell, KalmanTrackState, TiedGroupConv1x1,
                      TiedGroupConvLSTMCell)


@MODELS.register_module()
class ConvLSTMRefineHead(BaseHead):
    """The paper's second stage (§3.1, eq. 1): a ConvLSTM that refines the
    heatmaps of a (frozen) MMPose heatmap head over time.

    For frame t with base heatmaps ``o_t = base_head(feats_t)``::

        h', c'   = W_t(h_{t-1}, c_{t-1})          # state follows the face
        h_t, c_t = ConvLSTM(h', c', P(o_t))
        s_t      = o_t + Δ(h_t)

    ``W_t`` carries the state from the previous frame's heatmap pixels into
    frame t's (:class:`~mmstable.structures.TrackState`): the two crops'
    affine transforms (metainfo ``crop_affine``, or MMPose's
    ``input_center`` / ``input_scale``, see
    :func:`~mmstable.structures.crop_affine_from_metainfo`) composed with the
    face's own motion, a similarity fitted to the frozen model's raw
    keypoints of the two frames. Without it the state lives in the crop: a
    jittering detector box is smoothed *in the crop* and, mapped back to the
    image, added to the landmarks, and a moving face leaves a trail.
    ``Δ`` is zero-initialised so that an untrained refiner returns ``o_t``
    exactly (fine-tuning starts from the image model). The base head is
    built from its MMPose config and, frozen by
    :class:`~mmstable.models.StableTopdownPoseEstimator`, runs under
    ``torch.no_grad()``.

    Two cell layouts:

    - ``share_across_keypoints=True`` (default): every heatmap is a
      1-channel sequence with its own state (``hidden_channels`` per
      landmark), all K share one cell (:class:`TiedGroupConvLSTMCell`,
      starting as a moving average of its map) and ``Δ`` sees
      ``(h_t, P(o_t))`` of its landmark, so ``s_t`` can blend the current
      map with the remembered ones — a learnt per-landmark temporal
      smoother. To stay cheap (docs/conventions.md §5) the cell runs at
      ``1/state_stride`` of the heatmap resolution: ``P`` = average pooling,
      ``Δ`` is upsampled bilinearly and added at full resolution, where a
      learnt gain γ (zero-initialised) also scales the current map:
      ``s_t = (1 + γ) o_t + up(Δ(h_t, P(o_t)))``.
    - ``share_across_keypoints=False``: the paper's plain ConvLSTM, one cell
      over all K maps, ``P``: K → ``bottleneck_channels``, cell →
      ``hidden_channels``, ``Δ``: hidden → K. With ``warp_state=False``,
      ``state_stride=1``, ``hidden_channels=16`` it is the original design.

    The keypoint stage (``keypoint_filter``, default
    :class:`~mmstable.models.layers.AdaptiveKalmanFilter`): the refined maps
    are decoded (``decoder``), carried into image space with each frame's
    crop, and filtered by a learnt adaptive constant-velocity Kalman filter
    whose gain follows the track (its process noise and a blend of the raw
    landmarks are predicted per frame and landmark); its state is carried
    per ``video_id`` like ``(h, c)``. It is trained in :meth:`loss` with
    ``keypoint_loss`` (``loss_filter``: error + ``jitter_weight`` × the
    error's frame-to-frame change, as NME and NMF) on the same clips, the
    measurements detached, on filmed clips only unless
    ``keypoint_loss_on_pseudo_clips``. ``keypoint_filter=None`` outputs the decoded
    refined maps (the paper's design). :meth:`forward` (maps only) never
    filters.

    Clips and recurrent state follow docs/conventions.md §1: frames arrive as
    (B·T, ...) in clip-major order; :meth:`loss` resets the state at each
    clip and runs the B clips in parallel (shorter clips padded); in test
    mode (:meth:`predict`) one state per ``video_id`` (a video, or a track
    of :mod:`mmstable.apis`) is carried from call to call, and a clip
    continues its video's state iff its first ``frame_id`` follows the
    video's last one by 1..``max_frame_gap`` (frames without ``video_id``
    always reset; frames without ``clip_len`` count as 1-frame clips); a
    video absent from a call has ended and its state is dropped. Frames
    without crop information get the identity crop. With
    ``test_cfg=dict(output_raw=True)`` the frozen model's own landmarks are
    added as ``pred_instances.raw_keypoints`` / ``raw_keypoint_scores``.
    :meth:`forward` without
    data samples (``mode='tensor'``) treats every frame as a one-frame clip
    from the initial state.

    Args:
        base_head (dict): config of the MMPose heatmap head (e.g. the
            ``HeatmapHead`` of an MMPose config) whose heatmaps are refined.
        hidden_channels (int): channels of ``h`` and ``c`` (per landmark
            when ``share_across_keypoints``).
        kernel_size (int): kernel of the gate convolution.
        share_across_keypoints (bool): cell layout, see above.
        bottleneck_channels (int, optional): output channels of ``P``
            (cross-keypoint layout only); ``None`` feeds the K maps directly.
        state_stride (int): the cell's resolution is the heatmap's divided
            by this (1 = full resolution); the heatmap size must be a
            multiple of it.
        warp_state (bool): carry the state into each frame's crop and
            follow the face (``W_t`` above); ``False`` keeps it in crop
            coordinates (the paper; for ablations).
        motion_compensation (str): the face motion ``S_t`` in ``W_t``:
            ``'similarity'`` (default), ``'translation'`` or ``'none'``
            (only the crops' difference is undone), or ``'predicted'``: a
            constant-velocity prediction from the refiner's own (detached,
            decoded) output keypoints of the two previous frames, the
            similarity from refined_{t-2} to refined_{t-1} (identity before
            two frames exist), so the raw keypoints' common-mode jitter does
            not enter the warp; the heatmap then corrects it.
        motion_damping (float): ``'predicted'`` only: shrink the predicted
            motion towards the identity (0 = full prediction, 1 = identity).
        nonrigid_prediction (float, optional): per-landmark cell with
            ``warp_state`` only: also move each landmark's state by this
            fraction of its own motion beyond the face's similarity over
            the last two frames of the refiner's output (decoded with the
            head's PDC decoder; :meth:`TrackState.carried_to`): a
            constant-velocity prediction of the non-rigid motion (a turning
            head's parallax, expression), which the similarity warp leaves
            to the memory to catch up with (docs/moving_head_lag.md). 0:
            off. ``None`` (default): 1 for the per-landmark cell with
            ``warp_state``, else 0.
        learn_nonrigid_gain (bool, optional): ``nonrigid_prediction`` is
            only the initial value of a learnt gain per landmark,
            ``2·sigmoid(u_k)`` ∈ (0, 2) (training decides where predicting
            the motion pays: on the demo it lowers the contour's); ``False``:
            the fixed ``nonrigid_prediction`` for all. ``None`` (default):
            learnt whenever the prediction is on. A checkpoint without the
            gain (trained before it existed) loads it at its initial
            value.
        nonrigid_smoothing (float): ``nonrigid_prediction``: that motion is
            a running mean over frames, ``v ← a·v + (1−a)·v_now`` with this
            ``a`` in [0, 1) (0: the last two frames only), so that only
            motion that persists moves the state, not a frame's noise.
        nonrigid_consistency (float): ``nonrigid_prediction``: the motion
            is also scaled per landmark by ``|mean v| / mean |v|`` (running
            means with this decay in [0, 1); 0: factor 1), 1 for steady
            motion and near 0 for noise that flips direction
            (:meth:`TrackState.velocity_consistency`).
        memory (str, optional): ``'gated'``: keep the previous output maps
            ``s_{t-1}`` (full resolution) in the track state, warp them with
            ``W_t`` and output ``s_t = g ⊙ W(s_{t-1}) + (1 - g) ⊙ r_t``,
            ``r_t`` the plain refiner output above, ``g`` a per-landmark,
            per-pixel gate from pooled ``(h_t, r_t, W(s_{t-1}),
            |r_t - W(s_{t-1})|)`` (tied 1×1 layer at the cell's resolution,
            upsampled); ``g = 0`` on a track's first frame. ``None``
            (default): no output memory.
        gate_init (float): ``memory='gated'``: the gate at init (its bias is
            ``logit(gate_init)``; 0.5 = an EMA of the output).
        gate_disagreement_init (float): ``memory='gated'``: initial weight of
            ``|r_t - W(s_{t-1})|`` in the gate's logit (< 0: the gate drops
            where the current map disagrees with the memory; 0 = a constant
            gate at init).
        recurrent_kernel_size (int, optional): per-landmark cell only: the
            kernel from ``h_{t-1}`` to the gates; 1 (default) keeps the
            recurrence per pixel, so the memory cannot diffuse over long
            videos (trained on 5-8-frame clips, a 3×3 recurrence spread and
            drifted after ~10 frames); ``None`` = ``kernel_size``.
        loss (dict): loss config. A loss whose ``forward`` takes
            ``target_keypoints`` (e.g. ``JitterLoss``) gets clip tensors
            (B, T, K, H, W), weights (B, T, K) (0 on padding) and GT keypoints
            (B, T, K, 2) in heatmap pixels (docs/conventions.md §2); any other
            loss (e.g. ``KeypointMSELoss``) gets frames (B·T, K, H, W).
        decoder (dict, optional): codec that decodes the refined heatmaps
            (e.g. ``PDCCodec``); ``None`` uses the base head's decoder.
        keypoint_filter (dict, optional): config of the keypoint stage
            (above); ``None``: none.
        keypoint_loss (dict): loss of the keypoint stage (a loss taking
            ``(pred, target, weights)`` landmark clips, e.g.
            ``KeypointFlickerLoss``).
        keypoint_loss_on_pseudo_clips (bool): also train the keypoint stage
            on pseudo-clips (metainfo ``pseudo_clip``, from
            :class:`MakeShiftedClip` / :class:`MakeMotionClip`). Default
            ``False``: its gains are learnt from filmed clips only (e.g.
            300VW's, or the demo's synthetic videos) — on the demo,
            learning them from one-image pseudo-clips (drawn trajectories,
            heavy degradation) over-smoothed the test videos to 4x raw NME.
            Trained on pseudo-clips only, it stays a fixed constant-velocity
            Kalman filter (its init).
        max_frame_gap (int): in test mode a frame continues its video's
            state if its ``frame_id`` is 1..``max_frame_gap`` after the
            video's last one (e.g. 2 to carry over 300VW's skipped broken
            frames); larger gaps reset.
        init_cfg (dict, optional): init config of the refine head. The base
            head keeps its own ``init_cfg``.

    GT keypoints for a keypoint-aware loss come from
    ``gt_instances.transformed_keypoints`` (input space; clip pipelines pack
    it, plain MMPose needs ``PackPoseInputs(pack_transformed=True)``) scaled
    by ``heatmap_size / input_size``. There is deliberately no fallback to
    the argmax of the GT heatmap: it is quantised to whole heatmap pixels,
    while pseudo-clip shifts (§4.2) are ~1 heatmap pixel, so the GT offsets
    ``c_{t-1,t}`` of eq. 3-4 would be mostly 0 — a missing field is an error.

    Checkpoints of the plain MMPose model (``head.final_layer.*``, ...) load
    into the wrapped head (``head.base_head.final_layer.*``): a
    ``load_state_dict`` pre-hook renames keys that belong to the base head.
    Refiner checkpoints of either layout load into a head of the same
    layout and ``hidden_channels`` (``state_stride`` / ``warp_state`` have
    no weights; a checkpoint trained without them should be fine-tuned
    again).
    """

    def __init__(self,
                 base_head: ConfigType,
                 hidden_channels: int = 2,
                 kernel_size: int = 3,
                 share_across_keypoints: bool = True,
                 bottleneck_channels: Optional[int] = 16,
                 state_stride: int = 2,
                 warp_state: bool = True,
                 motion_compensation: str = 'similarity',
                 motion_damping: float = 0.,
                 nonrigid_prediction: Optional[float] = None,
                 learn_nonrigid_gain: Optional[bool] = None,
                 nonrigid_smoothing: float = 0.,
                 nonrigid_consistency: float = 0.,
                 recurrent_kernel_size: Optional[int] = 1,
                 memory: Optional[str] = None,
                 gate_init: float = 0.5,
                 gate_disagreement_init: float = 0.,
                 loss: ConfigType = dict(type='JitterLoss'),
                 decoder: OptConfigType = None,
                 keypoint_filter: OptConfigType = dict(
                     type='AdaptiveKalmanFilter'),
                 keypoint_loss: ConfigType = dict(type='KeypointFlickerLoss'),
                 keypoint_loss_on_pseudo_clips: bool = False,
                 max_frame_gap: int = 1,
                 init_cfg: OptConfigType = None):
        super().__init__(init_cfg)
        if max_frame_gap < 1:
            raise ValueError('ConvLSTMRefineHead: max_frame_gap must be >= 1 '
                             f'(1 = only consecutive frames), got '
                             f'{max_frame_gap}')
        if motion_compensation not in MOTION_MODES:
            raise ValueError(
                f'ConvLSTMRefineHead: motion_compensation must be one of '
                f'{MOTION_MODES}, got {motion_compensation!r} (model.head.'
                'motion_compensation in the config)')
        if not 0. <= motion_damping <= 1.:
            raise ValueError('ConvLSTMRefineHead: motion_damping must be in '
                             f'[0, 1], got {motion_damping!r}')
        if nonrigid_prediction is None:
            nonrigid_prediction = float(share_across_keypoints
                                        and warp_state)
        if learn_nonrigid_gain is None:
            learn_nonrigid_gain = nonrigid_prediction > 0
        if not 0. <= nonrigid_prediction <= 1.:
            raise ValueError('ConvLSTMRefineHead: nonrigid_prediction must '
                             f'be in [0, 1], got {nonrigid_prediction!r}')
        if not 0. <= nonrigid_smoothing < 1.:
            raise ValueError('ConvLSTMRefineHead: nonrigid_smoothing must '
                             f'be in [0, 1), got {nonrigid_smoothing!r}')
        if not 0. <= nonrigid_consistency < 1.:
            raise ValueError('ConvLSTMRefineHead: nonrigid_consistency must '
                             f'be in [0, 1), got {nonrigid_consistency!r}')
        if nonrigid_prediction and not (share_across_keypoints
                                        and warp_state):
            raise ValueError(
                'ConvLSTMRefineHead: nonrigid_prediction moves each '
                "landmark's own state: it needs share_across_keypoints=True "
                'and warp_state=True')
        if not isinstance(state_stride, int) or state_stride < 1:
            raise ValueError('ConvLSTMRefineHead: state_stride must be an '
                             f'integer >= 1, got {state_stride!r}')
        if memory not in (None, 'gated'):
            raise ValueError('ConvLSTMRefineHead: memory must be None or '
                             f"'gated', got {memory!r}")
        if memory is not None and not share_across_keypoints:
            raise ValueError("ConvLSTMRefineHead: memory='gated' needs "
                             'share_across_keypoints=True')
        if not 0. < gate_init < 1.:
            raise ValueError('ConvLSTMRefineHead: gate_init must be in '
                             f'(0, 1), got {gate_init!r}')
        self.memory = memory
        self.max_frame_gap = max_frame_gap
        self.state_stride = state_stride
        self.warp_state = warp_state
        self.motion_compensation = motion_compensation
        self.motion_damping = float(motion_damping)
        self.nonrigid_prediction = float(nonrigid_prediction)
        if learn_nonrigid_gain and not nonrigid_prediction:
            raise ValueError(
                'ConvLSTMRefineHead: learn_nonrigid_gain needs '
                'nonrigid_prediction > 0 (its initial value)')
        self.nonrigid_smoothing = float(nonrigid_smoothing)
        self.nonrigid_consistency = float(nonrigid_consistency)
        self.base_head = MODELS.build(base_head)
        num_keypoints = getattr(self.base_head, 'out_channels', None)
        if not isinstance(num_keypoints, int):
            raise TypeError(
                'ConvLSTMRefineHead: base_head must be a heatmap head with an '
                f'integer `out_channels` (K); {type(self.base_head).__name__} '
                f'has out_channels={num_keypoints!r}. Check model.head.'
                'base_head in the config.')
        self.out_channels = num_keypoints
        self.nonrigid_gain = None
        if learn_nonrigid_gain:
            # gain = 2·sigmoid(u), u = logit(β / 2)
            half = nonrigid_prediction / 2.
            self.nonrigid_gain = nn.Parameter(torch.full(
                (num_keypoints, ), float(np.log(half / (1. - half)))))
        self.share_across_keypoints = share_across_keypoints

        if share_across_keypoints:
            # one small cell per landmark map, weights shared by all K; the
            # output layer sees (h_t, o_t) of its landmark, so s_t can blend
            # the current map with the remembered ones (a learnt smoother)
            self.in_proj = nn.Identity()
            self.cell = TiedGroupConvLSTMCell(
                num_keypoints, 1, hidden_channels, kernel_size, forget_bias=2.,
                init='ema', recurrent_kernel_size=recurrent_kernel_size)
            self.out_proj = TiedGroupConv1x1(num_keypoints,
                                             hidden_channels + 1, 1)
            # s_t = (1 + γ) o_t + up(Δ): Δ lives at the cell's (reduced)
            # resolution, so without γ the sharp current map would always
            # keep weight 1 and the memory could only nudge it
            self.input_gain = nn.Parameter(torch.zeros(1))
            self.state_channels = num_keypoints * hidden_channels
            if memory == 'gated':
                # g_t from pooled (h_t, r_t, W(s_{t-1}), |r_t - W(s_{t-1})|)
                # of each landmark; zero weights, bias = logit(gate_init)
                self.gate_proj = TiedGroupConv1x1(num_keypoints,
                                                  hidden_channels + 3, 1)
                with torch.no_grad():
                    self.gate_proj.bias.fill_(
                        float(np.log(gate_init / (1. - gate_init))))
                    # < 0: the gate drops where memory and current disagree
                    self.gate_proj.weight[0, -1] = gate_disagreement_init
        else:
            if bottleneck_channels:
                self.in_proj = nn.Conv2d(num_keypoints, bottleneck_channels, 1)
                cell_in = bottleneck_channels
            else:
                self.in_proj = nn.Identity()
                cell_in = num_keypoints
            self.cell = ConvLSTMCell(cell_in, hidden_channels, kernel_size)
            self.out_proj = nn.Conv2d(hidden_channels, num_keypoints, 1)
            nn.init.zeros_(self.out_proj.weight)
            nn.init.zeros_(self.out_proj.bias)
            self.state_channels = hidden_channels

        self.loss_module = MODELS.build(loss)
        loss_args = inspect.signature(self.loss_module.forward).parameters
        self._loss_takes_keypoints = 'target_keypoints' in loss_args
        self._loss_takes_mask = 'mask' in loss_args
        self.decoder = (
            KEYPOINT_CODECS.build(decoder)
            if decoder is not None else self.base_head.decoder)
        self.keypoint_filter = (
            MODELS.build(keypoint_filter)
            if keypoint_filter is not None else None)
        self.keypoint_loss = (
            MODELS.build(keypoint_loss)
            if keypoint_filter is not None else None)
        self.keypoint_loss_on_pseudo_clips = bool(keypoint_loss_on_pseudo_clips)

        self.reset_state()
        self._register_load_state_dict_pre_hook(self._load_state_dict_pre_hook)

    # ---------------------------------------------------------------- refiner
    def reset_state(self, video_id=None) -> None:
        """Forget the test-mode state carried between :meth:`predict` calls:
        of one video / track (``video_id``), or of all (``None``)."""
        if video_id is None:
            self._states: Dict[object, TrackState] = {}
            self._filter_states: Dict[object, KalmanTrackState] = {}
            # each track's last frame_id (the continuation rule's)
            self._last_frames: Dict[object, int] = {}
        else:
            self._states.pop(video_id, None)
            self._filter_states.pop(video_id, None)
            self._last_frames.pop(video_id, None)

    def map_stage_is_identity(self) -> bool:
        """Whether the map stage returns its input maps unchanged
        (``s_t = o_t`` for every input and state): no gated memory, the
        output layer's weights and bias all 0 and, with
        ``share_across_keypoints``, the input gain γ = 0 (the cell's output
        is bounded, so ``0 · h = 0``). A map stage kept at its zero init
        (``configs/demo/real_jitter.py`` freezes it) is; :meth:`predict` and
        the ONNX step (:class:`mmstable.deploy.StatefulStep`) then skip it
        and decode the maps once — the refiner is its keypoint stage."""
        if self.memory is not None:
            return False
        params = list(self.out_proj.parameters())
        if self.share_across_keypoints:
            params.append(self.input_gain)
        return not any(bool(p.detach().any()) for p in params)

    def _skip_map_stage_in_loss(self) -> bool:
        """Whether :meth:`loss` may skip the map stage: an identity
        (:meth:`map_stage_is_identity`) none of whose parameters (the head's
        own, not the base head's nor the keypoint stage's) is trained."""
        return self.map_stage_is_identity() and not any(
            p.requires_grad for n, p in self.named_parameters()
            if not n.startswith(('base_head.', 'keypoint_filter.')))

    def refine(self,
               heatmaps: Tensor,
               state: Optional[TrackState] = None,
               lengths: Optional[Sequence[int]] = None,
               affines: Optional[Tensor] = None
               ) -> Tuple[Tensor, TrackState]:
        """Run eq. 1 over clips, the state following the face.

        Args:
            heatmaps (Tensor): base heatmaps ``o``, shape (B, T, K, H, W).
            state (TrackState, optional): the B tracks' state before the
                first frame (carried into it first); ``None`` is the initial
                state.
            lengths (Sequence[int], optional): true length of each of the B
                clips when they are padded at the end; the returned state is
                taken at each clip's last real frame. ``None``: all T.
            affines (Tensor, optional): (B, T, 3, 3) image → heatmap pixels
                of each frame's crop
                (:func:`~mmstable.structures.heatmap_affine`); ``None``:
                identity crops.

        Returns:
            tuple: refined heatmaps ``s`` (B, T, K, H, W) and the
            :class:`TrackState` after each clip's last frame.
        """
        b, t, k, height, width = heatmaps.shape
        stride = self.state_stride
        if height % stride or width % stride:
            raise ValueError(
                f'ConvLSTMRefineHead: heatmaps of {height}x{width} are not a '
                f'multiple of state_stride={stride}; set model.head.'
                'state_stride to a divisor of the heatmap size.')
        flat = heatmaps.flatten(0, 1)
        # time-independent layers run on all frames at once; only the cell
        # (and the state's warp) is stepped
        x = _avg_pool(self.in_proj(flat), stride)
        x = x.unflatten(0, (b, t))
        size = x.shape[-2:]

        if self.warp_state:
            affines, kpts, scores = self._warp_inputs(heatmaps, affines)
        predicted = self.needs_refined_history()
        gated = self.memory == 'gated'
        carry = state is not None
        if state is None:
            state = TrackState.zeros(
                b, self.state_channels, size, k, heatmaps,
                memory_shape=(k, height, width) if gated else None)
        hidden, cells, states, outputs = [], [], [], []
        for i in range(t):
            if self.warp_state:
                if carry or i > 0:
                    state = state.carried_to(affines[:, i], kpts[:, i],
                                             scores[:, i],
                                             self.motion_compensation,
                                             stride, self.motion_damping,
                                             self._nonrigid())
                else:
                    state = replace(state, affine=affines[:, i],
                                    keypoints=kpts[:, i], scores=scores[:, i])
            h, c = self.cell(x[:, i], (state.h, state.c))
            state = replace(state, h=h, c=c)
            if gated:
                out = self._gated_step(h, x[:, i], heatmaps[:, i], state)
                state = state.with_memory(out)
                outputs.append(out)
                if self.warp_state and predicted:
                    with torch.no_grad():
                        ref, ref_scores = self._output_keypoints(
                            out.detach())
                        ref = apply_affine(torch.linalg.inv(affines[:, i]),
                                           ref)
                    state = state.with_refined(ref, ref_scores,
                                           self.nonrigid_smoothing,
                                           self.nonrigid_consistency)
            elif predicted:
                # the refiner's output of this frame (computed here once);
                # decoded (detached), in image space: the next frame's
                # motion prediction
                out = heatmaps[:, i] + self._delta(
                    h[:, None], x[:, i:i + 1], heatmaps[:, i:i + 1])[:, 0]
                outputs.append(out)
                with torch.no_grad():
                    ref, ref_scores = self._output_keypoints(out.detach())
                    ref = apply_affine(torch.linalg.inv(affines[:, i]), ref)
                state = state.with_refined(ref, ref_scores,
                                           self.nonrigid_smoothing,
                                           self.nonrigid_consistency)
            hidden.append(h)
            states.append(state)
        if lengths is not None and any(n != t for n in lengths):
            state = TrackState.cat(
                [states[n - 1].rows(r) for r, n in enumerate(lengths)])
        if gated or predicted:
            return torch.stack(outputs, 1), state
        delta = self._delta(torch.stack(hidden, 1), x, heatmaps)
        return heatmaps + delta, state

    def needs_refined_history(self) -> bool:
        """Whether the state carries the refined keypoints of the last two
        frames (``motion_compensation='predicted'`` or
        ``nonrigid_prediction``; the extra ``TrackState`` fields an exported
        step then passes along)."""
        return self.warp_state and (self.motion_compensation == 'predicted'
                                    or self.nonrigid_prediction > 0)

    def _nonrigid(self):
        """The gain of the non-rigid prediction: a float, or (K,) when
        learnt."""
        if self.nonrigid_gain is None:
            return self.nonrigid_prediction
        return 2. * torch.sigmoid(self.nonrigid_gain)

    def _output_keypoints(self, maps: Tensor) -> Tuple[Tensor, Tensor]:
        """Keypoints (N, K, 2, heatmap pixels) and scores of one frame's
        output maps (N, K, H, W) for the refined history: PDC with the
        decoder's settings when ``nonrigid_prediction`` needs sub-pixel
        motion and the decoder is PDC, else the cheap argmax."""
        if self.nonrigid_prediction and hasattr(self.decoder,
                                                'pdc_threshold'):
            return _pdc(maps, self.decoder.pdc_threshold,
                        self.decoder.threshold_mode)
        return _argmax_keypoints(maps)

    @staticmethod
    def _warp_inputs(heatmaps: Tensor, affines: Optional[Tensor]
                     ) -> Tuple[Tensor, Tensor, Tensor]:
        """What carrying the state needs for B clips of T frames: the crops'
        affines (B, T, 3, 3) (identity for ``None`` and for padded frames,
        which ``pad_clips`` fills with 0), and the frozen model's raw
        keypoints (B, T, K, 2) in image space, where S_t is fitted, with
        their scores (B, T, K). ``heatmaps``: (B, T, K, H, W)."""
        b, t = heatmaps.shape[:2]
        if affines is None:
            affines = torch.eye(3, dtype=heatmaps.dtype,
                                device=heatmaps.device).expand(b, t, 3, 3)
        affines = affines.to(heatmaps)
        eye = torch.eye(3).to(affines)
        affines = torch.where(
            torch.linalg.det(affines).abs()[..., None, None] > 1e-12,
            affines, eye)
        with torch.no_grad():
            kpts, scores = _argmax_keypoints(heatmaps.flatten(0, 1).detach())
            # heatmap pixels -> image space
            kpts = apply_affine(torch.linalg.inv(affines.flatten(0, 1)),
                                kpts).unflatten(0, (b, t))
        return affines, kpts, scores.unflatten(0, (b, t))

    def _gated_step(self, h: Tensor, x: Tensor, heatmaps: Tensor,
                    state: TrackState) -> Tensor:
        """``memory='gated'``: s_t = g ⊙ W(s_{t-1}) + (1 - g) ⊙ r_t of one
        frame, r_t = (1 + γ) o_t + up(Δ) the plain refiner output, W(s_{t-1})
        = ``state.memory`` (already warped into this frame), g per landmark
        and pixel from pooled (h_t, r_t, W(s_{t-1}), |r_t - W(s_{t-1})|),
        upsampled; g = 0 on a track's first frame (s_0 = r_0).

        Args:
            h (Tensor): cell output (B, K·C, h, w).
            x (Tensor): pooled base maps (B, K, h, w).
            heatmaps (Tensor): base maps o_t (B, K, H, W).
        """
        b, k = heatmaps.shape[:2]
        stride = self.state_stride
        current = heatmaps + self._delta(h[:, None], x[:, None],
                                         heatmaps[:, None])[:, 0]
        memory = state.memory
        size = h.shape[-2:]
        feats = torch.cat([
            h.view(b, k, -1, *size),
            torch.stack([
                _avg_pool(current, stride),
                _avg_pool(memory, stride),
                _avg_pool((current - memory).abs(), stride)
            ], 2)
        ], 2).view(b, -1, *size)
        gate = torch.sigmoid(
            _upsample_bilinear(self.gate_proj(feats), stride))
        gate = gate * (state.memory_count > 0).to(gate)[:, None, None, None]
        return gate * memory + (1. - gate) * current

    def _delta(self, hidden: Tensor, x: Tensor, heatmaps: Tensor) -> Tensor:
        """``s - o`` of (B, T) frames from the cell's outputs ``hidden``
        (B, T, C, h, w), the pooled inputs ``x`` (B, T, ·, h, w) and the base
        heatmaps (B, T, K, H, W)."""
        b, t, k, height, width = heatmaps.shape
        size = hidden.shape[-2:]
        h = hidden.flatten(0, 1)
        if self.share_across_keypoints:
            h = torch.cat([
                h.view(b * t, k, -1, *size),
                x.reshape(b * t, k, 1, *size)
            ], 2).view(b * t, -1, *size)
        delta = self.out_proj(h)
        delta = _upsample_bilinear(delta, self.state_stride)
        delta = delta.view(b, t, k, height, width)
        if self.share_across_keypoints:
            delta = delta + self.input_gain * heatmaps
        return delta

    def _base_forward(self, feats: Features) -> Tensor:
        if any(p.requires_grad for p in self.base_head.parameters()):
            return self.base_head.forward(feats)
        with torch.no_grad():
            return self.base_head.forward(feats)

    def forward(self,
                feats: Tuple[Tensor],
                batch_data_samples: OptSampleList = None) -> Tensor:
        """Refined heatmaps of a batch of frames, state reset at every clip.

        Args:
            feats (tuple[Tensor]): features of the B·T frames.
            batch_data_samples (list[PoseDataSample], optional): give the
                clips (``clip_len``) and crops; ``None``: every frame is its
                own clip.

        Returns:
            Tensor: refined heatmaps (B·T, K, H, W), frame order kept.
        """
        heatmaps = self._base_forward(feats)
        if batch_data_samples is None:
            return self.refine(heatmaps[:, None])[0][:, 0]
        clips = split_clips(batch_data_samples)
        affines = self.frame_affines(batch_data_samples, heatmaps)
        refined, _ = self.refine(
            pad_clips(heatmaps, clips),
            affines=pad_clips(affines, clips) if self.warp_state else None)
        return unpad_clips(refined, clips)

    def frame_affines(self, batch_data_samples: Sequence,
                      heatmaps: Tensor) -> Tensor:
        """(N, 3, 3) image → heatmap-pixel affine of each frame's crop
        (identity for a frame without crop information)."""
        heatmap_size = heatmaps.shape[:-3:-1]  # (W, H)
        input_size = getattr(self.decoder, 'input_size', None)
        mats = []
        for d in batch_data_samples:
            meta = d.metainfo
            size = meta.get('input_size', input_size)
            crop = crop_affine_from_metainfo(meta)
            mats.append(
                heatmap_affine(crop, size, heatmap_size)
                if size is not None else np.eye(3))
        return torch.as_tensor(np.stack(mats)).to(heatmaps)

    # ------------------------------------------------------------------ test
    def predict(self,
                feats: Features,
                batch_data_samples: OptSampleList,
                test_cfg: ConfigType = {}) -> Predictions:
        """Predict like :meth:`HeatmapHead.predict`, carrying the state.

        With ``flip_test`` the base head's heatmaps of the original and the
        flipped input are averaged (MMPose's :func:`flip_heatmaps`) *before*
        refining: the refiner sees the frozen model's test-time output
        ``o_t``, and one recurrent state follows the video (refining the two
        views separately would need two states). Frames are stepped in batch
        order, the state carried per the rule in the class docstring.

        Returns:
            list[InstanceData] | tuple: as ``HeatmapHead.predict``; with
            ``test_cfg['output_heatmaps']`` also the refined heatmaps as
            ``PixelData``.
        """
        if test_cfg.get('flip_test', False):
            assert isinstance(feats, list) and len(feats) == 2
            flip_indices = batch_data_samples[0].metainfo['flip_indices']
            _feats, _feats_flip = feats
            heatmaps_flip = flip_heatmaps(
                self._base_forward(_feats_flip),
                flip_mode=test_cfg.get('flip_mode', 'heatmap'),
                flip_indices=flip_indices,
                shift_heatmap=test_cfg.get('shift_heatmap', False))
            heatmaps = (self._base_forward(_feats) + heatmaps_flip) * 0.5
        else:
            heatmaps = self._base_forward(feats)

        identity = self.map_stage_is_identity()
        batch_heatmaps, runs, frame_affines = self._predict_stateful(
            heatmaps, batch_data_samples, refine=not identity)
        preds = self.decode(batch_heatmaps)
        raws = None
        if test_cfg.get('output_raw', False) or \
                self.keypoint_filter is not None:
            # an identity map stage: the raw maps are the refined ones
            raws = ([pred.clone() for pred in preds]
                    if identity else self.decode(heatmaps))
        if self.keypoint_filter is not None:
            self._filter_predictions(preds, raws, batch_data_samples, runs,
                                     frame_affines)
        if test_cfg.get('output_raw', False):
            # The frozen model's own landmarks o_t, decoded the same way, so
            # one test run reports raw vs refined (docs/conventions.md §4).
            for pred, raw in zip(preds, raws):
                pred.raw_keypoints = raw.keypoints
                pred.raw_keypoint_scores = raw.keypoint_scores
        if test_cfg.get('output_heatmaps', False):
            pred_fields = [
                PixelData(heatmaps=hm) for hm in batch_heatmaps.detach()
            ]
            return preds, pred_fields
        return preds

    def _predict_stateful(self, heatmaps: Tensor,
                          batch_data_samples: Sequence,
                          refine: bool = True
                          ) -> Tuple[Tensor, list, Optional[Tensor]]:
        """Refine test frames, carrying one :class:`TrackState` per
        ``video_id``; returns the refined maps, the runs
        ``[video_id, frame indices, continues]`` and the frames' image →
        heatmap affines (``None`` when neither the warp nor the keypoint
        stage needs them).

        The batch is cut into clips (``clip_len``, default 1); clips of one
        video that continue each other form a run. A run continues the
        stored state of its video iff its first ``frame_id`` follows the
        video's last one by 1..``max_frame_gap``. All runs are refined in one
        padded call; afterwards only the videos of this batch keep a state
        (a track absent from a call has ended). ``refine=False`` (an
        identity map stage) returns the maps as they are, with the runs.
        """
        runs: List[list] = []  # [video_id, frame indices, continues]
        open_run: Dict[object, int] = {}
        last = dict(self._last_frames)
        for start, length in split_clips(batch_data_samples,
                                         default_clip_len=1):
            frames = list(range(start, start + length))
            key = self._frame_key(batch_data_samples[start])
            if key is None:
                runs.append([None, frames, False])
                continue
            vid, fid = key
            gap = fid - last[vid] if vid in last else 0
            continues = 0 < gap <= self.max_frame_gap
            if continues and vid in open_run:
                runs[open_run[vid]][1].extend(frames)
            else:
                open_run[vid] = len(runs)
                runs.append([vid, frames, continues])
            last[vid] = self._frame_key(batch_data_samples[frames[-1]])[1]

        affines = frame_affines = None
        if (self.warp_state and refine) or self.keypoint_filter is not None:
            frame_affines = self.frame_affines(batch_data_samples, heatmaps)
        self._last_frames = {
            vid: last[vid]
            for vid, _, _ in runs if vid is not None
        }
        if not refine:
            self._states = {}
            return heatmaps, runs, frame_affines
        lengths = [len(frames) for _, frames, _ in runs]
        t_max = max(lengths)
        padded = heatmaps.new_zeros(len(runs), t_max, *heatmaps.shape[1:])
        if self.warp_state:
            affines = torch.eye(3).to(heatmaps).repeat(len(runs), t_max, 1,
                                                       1)
        for r, (_, frames, _) in enumerate(runs):
            padded[r, :len(frames)] = heatmaps[frames]
            if affines is not None:
                affines[r, :len(frames)] = frame_affines[frames]
        state = None
        if any(continues for _, _, continues in runs):
            stride = self.state_stride
            zero = TrackState.zeros(
                1, self.state_channels,
                (heatmaps.shape[-2] // stride, heatmaps.shape[-1] // stride),
                heatmaps.shape[1], heatmaps,
                memory_shape=heatmaps.shape[1:]
                if self.memory == 'gated' else None)
            state = TrackState.cat([
                self._states[vid] if continues and vid in self._states
                and self._states[vid].fits(zero) else zero
                for vid, _, continues in runs
            ])
        refined, state = self.refine(padded, state, lengths, affines)

        out = torch.empty_like(heatmaps)
        states: Dict[object, TrackState] = {}
        for r, (vid, frames, _) in enumerate(runs):
            out[frames] = refined[r, :len(frames)]
            if vid is not None:
                # runs are in batch order: a video's last run wins
                states[vid] = state.select(r, vid, last[vid])
        self._states = states
        return out, runs, frame_affines

    def _filter_predictions(self,
                            preds: list,
                            raws: list,
                            batch_data_samples: Sequence,
                            runs: list,
                            frame_affines: Optional[Tensor] = None) -> None:
        """The keypoint stage of test frames, in place on ``preds``: per
        run (see :meth:`_predict_stateful`), the decoded refined and raw
        landmarks in image space through ``keypoint_filter``, its state
        carried per ``video_id`` like the maps' one. ``frame_affines``
        (image → heatmap, as :meth:`frame_affines`) saves rebuilding the
        crops when the decoder has MMPose's ``scale_factor``."""
        measured = torch.as_tensor(
            np.stack([np.asarray(p.keypoints)[0, :, :2] for p in preds]),
            dtype=torch.float32)
        raw = torch.as_tensor(
            np.stack([np.asarray(p.keypoints)[0, :, :2] for p in raws]),
            dtype=torch.float32)
        scale = getattr(self.decoder, 'scale_factor', None)
        if frame_affines is not None and scale is not None:
            # image -> input = (input / heatmap) · (image -> heatmap)
            crops = torch.diag(measured.new_tensor([*np.asarray(
                scale, np.float64).reshape(-1)[:2], 1.])) @ frame_affines.to(
                    measured)
        else:
            crops = self.input_affines(batch_data_samples, measured)
        inverse = torch.linalg.inv(crops.double()).float()
        measured = apply_affine(inverse, measured)
        raw = apply_affine(inverse, raw)
        centres = self._crop_centres(batch_data_samples, inverse)
        k = measured.shape[1]
        lengths = [len(frames) for _, frames, _ in runs]
        padded = measured.new_zeros(len(runs), max(lengths), k, 2)
        padded_raw = torch.zeros_like(padded)
        padded_centres = padded.new_zeros(len(runs), max(lengths), 2)
        for r, (_, frames, _) in enumerate(runs):
            padded[r, :len(frames)] = measured[frames]
            padded_raw[r, :len(frames)] = raw[frames]
            padded_centres[r, :len(frames)] = centres[frames]
        zero = self.keypoint_filter.zero_state(1, k, padded)
        rows = self.keypoint_filter.num_rows(k)
        state = KalmanTrackState.cat([
            self._filter_states[vid] if continues
            and vid in self._filter_states
            and self._filter_states[vid].fits(rows) else zero
            for vid, _, continues in runs
        ])
        with torch.no_grad():
            out, state = self.keypoint_filter(padded, padded_raw, state,
                                              lengths, padded_centres)
        states: Dict[object, KalmanTrackState] = {}
        for r, (vid, frames, _) in enumerate(runs):
            back = apply_affine(crops[frames], out[r, :len(frames)])
            for i, f in enumerate(frames):
                kpts = np.array(preds[f].keypoints, dtype=np.float32,
                                copy=True)
                kpts[0, :, :2] = back[i].numpy()
                preds[f].keypoints = kpts
            if vid is not None:
                states[vid] = state.select(r)
        self._filter_states = states

    def _crop_centres(self, batch_data_samples: Sequence,
                      inverse: Tensor) -> Tensor:
        """(N, 2) image px: the centre of each frame's model input (the
        crop the landmarks were found in), from the input → image affines
        ``inverse`` (N, 3, 3) and the input size (the frame's metainfo, or
        the decoder's)."""
        default = getattr(self.decoder, 'input_size', None)
        sizes = []
        for d in batch_data_samples:
            size = d.metainfo.get('input_size', default)
            if size is None:
                raise ValueError(
                    'ConvLSTMRefineHead: the keypoint stage needs the input '
                    'size (the crop centre): no input_size in the metainfo '
                    'nor in the decoder')
            sizes.append(np.asarray(size, np.float64).reshape(-1)[:2])
        half = torch.as_tensor(np.stack(sizes) / 2.).to(inverse)
        return apply_affine(inverse, half[:, None])[:, 0]

    def input_affines(self, batch_data_samples: Sequence,
                      like: Tensor) -> Tensor:
        """(N, 3, 3) image → input-space affine of each frame's crop
        (identity for a frame without crop information)."""
        mats = []
        for d in batch_data_samples:
            mat = np.eye(3)
            crop = crop_affine_from_metainfo(d.metainfo)
            if crop is not None:
                mat[:2] = crop
            mats.append(mat)
        return torch.as_tensor(np.stack(mats)).to(like)

    @staticmethod
    def _frame_key(data_sample) -> Optional[tuple]:
        meta = data_sample.metainfo
        if 'video_id' not in meta or 'frame_id' not in meta:
            return None
        return meta['video_id'], int(meta['frame_id'])

    def train(self, mode: bool = True):
        # Weights may change while training: never carry a stale test state.
        self.reset_state()
        return super().train(mode)

    # ------------------------------------------------------------------ loss
    def loss(self,
             feats: Tuple[Tensor],
             batch_data_samples: OptSampleList,
             train_cfg: ConfigType = {}) -> dict:
        """Loss of the refined heatmaps; the state is reset at every clip.

        Returns:
            dict: ``loss_kpt`` and (``train_cfg['compute_acc']``, default
            True) ``acc_pose``, as :meth:`HeatmapHead.loss`.
        """
        clips = split_clips(batch_data_samples)
        heatmaps = self._base_forward(feats)
        skip = self._skip_map_stage_in_loss()
        if skip:
            # a frozen identity map stage (configs/demo/real_jitter.py): its
            # output is its input, as predict() and the ONNX step skip it
            refined = pad_clips(heatmaps, clips)
        else:
            affines = self.frame_affines(
                batch_data_samples, heatmaps) if self.warp_state else None
            refined, _ = self.refine(
                pad_clips(heatmaps, clips),
                affines=None if affines is None else pad_clips(
                    affines, clips))
        pred_frames = unpad_clips(refined, clips)
        gt_heatmaps = torch.stack(
            [d.gt_fields.heatmaps for d in batch_data_samples])
        keypoint_weights = torch.cat([
            d.gt_instance_labels.keypoint_weights for d in batch_data_samples
        ])

        if self._loss_takes_keypoints:
            keypoints = self._gt_heatmap_keypoints(batch_data_samples,
                                                   gt_heatmaps)
            extra = {}
            if self._loss_takes_mask:
                # padded frames never count, whatever use_target_weight says
                extra['mask'] = clip_mask(clips,
                                          refined.device)[:, :, None, None,
                                                          None]
            loss = self.loss_module(
                refined,
                pad_clips(gt_heatmaps, clips),
                pad_clips(keypoint_weights, clips),  # padding → weight 0
                target_keypoints=pad_clips(keypoints, clips),
                **extra)
        else:
            loss = self.loss_module(pred_frames, gt_heatmaps, keypoint_weights)

        losses = dict(loss_kpt=loss)
        if self.keypoint_filter is not None:
            losses['loss_filter'] = self._filter_loss(
                heatmaps, pred_frames, batch_data_samples, keypoint_weights,
                clips, refined_is_raw=skip)
        if train_cfg.get('compute_acc', True):
            _, avg_acc, _ = pose_pck_accuracy(
                output=to_numpy(pred_frames),
                target=to_numpy(gt_heatmaps),
                mask=to_numpy(keypoint_weights) > 0)
            losses.update(
                acc_pose=torch.tensor(avg_acc, device=gt_heatmaps.device))
        return losses

    def _filter_loss(self, heatmaps: Tensor, refined: Tensor,
                     batch_data_samples: Sequence, keypoint_weights: Tensor,
                     clips, refined_is_raw: bool = False) -> Tensor:
        """``keypoint_loss`` of the keypoint stage on the training clips:
        the decoded refined and raw maps (detached) and the GT, in image
        space. ``refined_is_raw``: the maps are the same (a skipped
        identity map stage), decoded once."""
        with torch.no_grad():
            inverse = torch.linalg.inv(
                self.input_affines(batch_data_samples, heatmaps))

            def in_image(maps: Tensor) -> Tensor:
                # decoded landmarks (N, K, 2), mapped back to the image
                return apply_affine(inverse, torch.as_tensor(np.stack([
                    np.asarray(p.keypoints)[0, :, :2]
                    for p in self.decode(maps.detach())
                ])).to(heatmaps))

            raw = in_image(heatmaps)
            measured = raw if refined_is_raw else in_image(refined)
            target = apply_affine(
                inverse,
                self._gt_input_keypoints(batch_data_samples).to(heatmaps))
            centres = self._crop_centres(batch_data_samples, inverse)
        filtered, _ = self.keypoint_filter(
            pad_clips(measured, clips), pad_clips(raw, clips),
            lengths=[n for _, n in clips],
            crop_centres=pad_clips(centres, clips))
        weights = pad_clips(keypoint_weights, clips)
        if not self.keypoint_loss_on_pseudo_clips:
            filmed = torch.tensor([
                not batch_data_samples[start].metainfo.get(
                    'pseudo_clip', False) for start, _ in clips
            ]).to(weights)
            weights = weights * filmed[:, None, None]
        return self.keypoint_loss(filtered, pad_clips(target, clips), weights)

    def _gt_heatmap_keypoints(self, batch_data_samples: Sequence,
                              gt_heatmaps: Tensor) -> Tensor:
        """GT keypoints (N, K, 2) in heatmap pixels (conventions.md §2)."""
        keypoints = self._gt_input_keypoints(batch_data_samples).to(
            gt_heatmaps)
        input_size = getattr(self.decoder, 'input_size', None)
        heatmap_size = getattr(self.decoder, 'heatmap_size', None)
        if input_size is None or heatmap_size is None:
            input_size = batch_data_samples[0].metainfo['input_size']
            heatmap_size = gt_heatmaps.shape[:-3:-1]  # (W, H)
        scale = torch.as_tensor(
            np.asarray(heatmap_size, dtype=np.float64) /
            np.asarray(input_size, dtype=np.float64)).to(keypoints)
        return keypoints * scale

    def _gt_input_keypoints(self, batch_data_samples: Sequence) -> Tensor:
        """GT keypoints (N, K, 2) in input pixels."""
        keypoints = []
        for i, d in enumerate(batch_data_samples):
            if 'transformed_keypoints' not in d.gt_instances:
                raise KeyError(
                    f'frame {i} has no gt_instances.transformed_keypoints, '
                    f'which {type(self.loss_module).__name__} needs (GT '
                    'keypoints in input space). Clip pipelines pack it; an '
                    'MMPose pipeline needs PackPoseInputs(pack_transformed='
                    'True). See ConvLSTMRefineHead\'s docstring for why there '
                    'is no heatmap-argmax fallback.')
            kpt = d.gt_instances.transformed_keypoints
            kpt = torch.as_tensor(np.asarray(kpt) if not isinstance(
                kpt, Tensor) else kpt)
            keypoints.append(kpt.reshape(-1, kpt.shape[-1])[:, :2])
        return torch.stack(keypoints)

    # ------------------------------------------------------------ checkpoint
    def _load_state_dict_pre_hook(self, state_dict, prefix, local_meta, *args,
                                  **kwargs):
        """Load a plain MMPose head's keys into ``base_head``.

        ``<prefix>final_layer.weight`` → ``<prefix>base_head.final_layer
        .weight`` for every key whose first name is a child / parameter /
        buffer of the base head and not one of the refiner's own, so a zoo
        checkpoint of the image model loads with only the refiner missing.
        A missing learnt ``nonrigid_gain`` (a refiner checkpoint from before
        it existed) loads as its initial value.
        """
        if self.nonrigid_gain is not None and \
                prefix + 'nonrigid_gain' not in state_dict and \
                prefix + 'out_proj.weight' in state_dict:
            # a refiner checkpoint from before the learnt gain: its initial
            # value (an image model's checkpoint misses the whole refiner)
            state_dict[prefix + 'nonrigid_gain'] = \
                self.nonrigid_gain.detach().clone()
        own = set(self._modules) | set(self._parameters) | set(self._buffers)
        base = (set(self.base_head._modules) | set(self.base_head._parameters)
                | set(self.base_head._buffers))
        for key in list(state_dict):
            if not key.startswith(prefix):
                continue
            name = key[len(prefix):].split('.', 1)[0]
            if name in base and name not in own:
                state_dict[prefix + 'base_head.' +
                           key[len(prefix):]] = state_dict.pop(key)


def _argmax_keypoints(heatmaps: Tensor) -> Tuple[Tensor, Tensor]:
    """Cheap decode of the frozen model's maps for the motion fit: argmax
    with MMPose's quarter-pixel shift towards the higher neighbour
    (``MSRAHeatmap.decode``), in heatmap pixels.

    Args:
        heatmaps (Tensor): (N, K, H, W).

    Returns:
        tuple: keypoints (N, K, 2) and scores (the maxima) (N, K).
    """
    n, k, height, width = heatmaps.shape
    scores, index = heatmaps.flatten(2).max(-1)
    x, y = index % width, torch.div(index, width, rounding_mode='floor')
    padded = F.pad(heatmaps, (1, 1, 1, 1), mode='replicate').flatten(2)
    row = width + 2

    def at(dy, dx):
        return padded.gather(2, ((y + 1 + dy) * row + x + 1 + dx)[..., None]
                             )[..., 0]

    inside_x = (x > 0) & (x < width - 1)
    inside_y = (y > 0) & (y < height - 1)
    dx = torch.sign(at(0, 1) - at(0, -1)) * 0.25 * inside_x
    dy = torch.sign(at(1, 0) - at(-1, 0)) * 0.25 * inside_y
    kpts = torch.stack([x + dx, y + dy], -1).to(heatmaps.dtype)
    return kpts, scores


def _avg_pool(x: Tensor, stride: int) -> Tensor:
    """``F.avg_pool2d(x, stride)`` as strided slices (8× faster on one CPU
    thread for (1, 98, 64, 64): it is on the streaming path)."""
    if stride == 1:
        return x
    total = sum(x[..., i::stride, j::stride] for i in range(stride)
                for j in range(stride))
    return total / stride**2


_UPSAMPLE_MATRICES: Dict[tuple, Tensor] = {}


def _upsample_matrix(size: int, stride: int, like: Tensor) -> Tensor:
    """(stride·size, size) matrix of 1-D bilinear upsampling with
    ``align_corners=False`` (the inverse of :func:`_avg_pool`'s grid: low-res
    pixel i is centred at ``stride·i + (stride−1)/2``)."""
    key = (size, stride, like.dtype, like.device)
    if key not in _UPSAMPLE_MATRICES:
        src = ((torch.arange(size * stride, dtype=torch.float64) + 0.5) /
               stride - 0.5).clamp(0, size - 1)
        low = src.floor().long()
        high = (low + 1).clamp(max=size - 1)
        frac = src - low
        mat = torch.zeros(size * stride, size, dtype=torch.float64)
        rows = torch.arange(size * stride)
        mat.index_put_((rows, low), 1 - frac, accumulate=True)
        mat.index_put_((rows, high), frac, accumulate=True)
        _UPSAMPLE_MATRICES[key] = mat.to(like)
    return _UPSAMPLE_MATRICES[key]


def _upsample_bilinear(x: Tensor, stride: int) -> Tensor:
    """``F.interpolate(x, scale_factor=stride, mode='bilinear',
    align_corners=False)`` as two small matrix products (4× faster on one
    CPU thread for (1, 98, 32, 32))."""
    if stride == 1:
        return x
    rows = _upsample_matrix(x.shape[-2], stride, x)
    cols = _upsample_matrix(x.shape[-1], stride, x)
    return rows @ x @ cols.T
