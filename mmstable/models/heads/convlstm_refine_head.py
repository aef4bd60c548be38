import inspect
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.structures import PixelData
from torch import Tensor, nn

from mmpose.evaluation.functional import pose_pck_accuracy
from mmpose.models.heads.base_head import BaseHead
from mmpose.models.utils.tta import flip_heatmaps
from mmpose.registry import KEYPOINT_CODECS, MODELS
from mmpose.utils.tensor_utils import to_numpy
from mmpose.utils.typing import (ConfigType, Features, OptConfigType,
                                 OptSampleList, Predictions)

from mmstable.structures import clip_mask, pad_clips, split_clips, unpad_clips
from ..layers import ConvLSTMCell, TiedGroupConv1x1, TiedGroupConvLSTMCell

State = Tuple[Tensor, Tensor]


@MODELS.register_module()
class ConvLSTMRefineHead(BaseHead):
    """The paper's second stage (§3.1, eq. 1): a ConvLSTM that refines the
    heatmaps of a (frozen) MMPose heatmap head over time.

    For frame t with base heatmaps ``o_t = base_head(feats_t)``::

        h_t, c_t = ConvLSTM(h_{t-1}, c_{t-1}, P(o_t))
        s_t      = o_t + Δ(h_t)

    ``P`` is an optional 1×1 input bottleneck and ``Δ`` a 1×1 output layer,
    zero-initialised so that an untrained refiner returns ``o_t`` exactly
    (fine-tuning starts from the image model). The base head is built from its
    MMPose config and, frozen by
    :class:`~mmstable.models.StableTopdownPoseEstimator`, runs under
    ``torch.no_grad()``.

    Two cell layouts:

    - ``share_across_keypoints=False`` (default): one cell over all K maps,
      ``P``: K → ``bottleneck_channels``, cell → ``hidden_channels``,
      ``Δ``: hidden → K. Sees the whole face (landmarks stabilise each
      other) at a cost independent of K but for the two 1×1 layers.
    - ``share_across_keypoints=True``: every heatmap is a 1-channel sequence
      with its own state (``hidden_channels`` per landmark), all K share one
      cell (:class:`TiedGroupConvLSTMCell`, one grouped convolution) and
      ``Δ`` sees ``(h_t, o_t)`` of its landmark, so ``s_t`` can blend the
      current map with the remembered ones — a learnt per-landmark temporal
      smoother; cost grows with K·hidden.

    Clips and recurrent state follow docs/conventions.md §1: frames arrive as
    (B·T, ...) in clip-major order; :meth:`loss` resets the state at each
    clip and runs the B clips in parallel (shorter clips padded); in test
    mode (:meth:`predict`) one state per ``video_id`` (a video, or a track
    of :mod:`mmstable.apis`) is carried from call to call, and a clip
    continues its video's state iff its first ``frame_id`` follows the
    video's last one by 1..``max_frame_gap`` (frames without ``video_id``
    always reset; frames without ``clip_len`` count as 1-frame clips); a
    video absent from a call has ended and its state is dropped. With
    ``test_cfg=dict(output_raw=True)`` the frozen model's own landmarks are
    added as ``pred_instances.raw_keypoints`` / ``raw_keypoint_scores``.
    :meth:`forward` without
    data samples (``mode='tensor'``) treats every frame as a one-frame clip
    from the initial state.

    Args:
        base_head (dict): config of the MMPose heatmap head (e.g. the
            ``HeatmapHead`` of an MMPose config) whose heatmaps are refined.
        hidden_channels (int): channels of ``h`` and ``c``.
        kernel_size (int): kernel of the gate convolution.
        share_across_keypoints (bool): cell layout, see above.
        bottleneck_channels (int, optional): output channels of ``P``
            (cross-keypoint layout only); ``None`` feeds the K maps directly.
        loss (dict): loss config. A loss whose ``forward`` takes
            ``target_keypoints`` (e.g. ``JitterLoss``) gets clip tensors
            (B, T, K, H, W), weights (B, T, K) (0 on padding) and GT keypoints
            (B, T, K, 2) in heatmap pixels (docs/conventions.md §2); any other
            loss (e.g. ``KeypointMSELoss``) gets frames (B·T, K, H, W).
        decoder (dict, optional): codec that decodes the refined heatmaps
            (e.g. ``PDCCodec``); ``None`` uses the base head's decoder.
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
    """

    def __init__(self,
                 base_head: ConfigType,
                 hidden_channels: int = 16,
                 kernel_size: int = 3,
                 share_across_keypoints: bool = False,
                 bottleneck_channels: Optional[int] = 16,
                 loss: ConfigType = dict(type='JitterLoss'),
                 decoder: OptConfigType = None,
                 max_frame_gap: int = 1,
                 init_cfg: OptConfigType = None):
        super().__init__(init_cfg)
        if max_frame_gap < 1:
            raise ValueError('ConvLSTMRefineHead: max_frame_gap must be >= 1 '
                             f'(1 = only consecutive frames), got '
                             f'{max_frame_gap}')
        self.max_frame_gap = max_frame_gap
        self.base_head = MODELS.build(base_head)
        num_keypoints = getattr(self.base_head, 'out_channels', None)
        if not isinstance(num_keypoints, int):
            raise TypeError(
                'ConvLSTMRefineHead: base_head must be a heatmap head with an '
                f'integer `out_channels` (K); {type(self.base_head).__name__} '
                f'has out_channels={num_keypoints!r}. Check model.head.'
                'base_head in the config.')
        self.out_channels = num_keypoints
        self.share_across_keypoints = share_across_keypoints

        if share_across_keypoints:
            # one small cell per landmark map, weights shared by all K; the
            # output layer sees (h_t, o_t) of its landmark, so s_t can blend
            # the current map with the remembered ones (a learnt smoother)
            self.in_proj = nn.Identity()
            self.cell = TiedGroupConvLSTMCell(
                num_keypoints, 1, hidden_channels, kernel_size, forget_bias=2.,
                init='ema')
            self.out_proj = TiedGroupConv1x1(num_keypoints,
                                             hidden_channels + 1, 1)
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

        self.loss_module = MODELS.build(loss)
        loss_args = inspect.signature(self.loss_module.forward).parameters
        self._loss_takes_keypoints = 'target_keypoints' in loss_args
        self._loss_takes_mask = 'mask' in loss_args
        self.decoder = (
            KEYPOINT_CODECS.build(decoder)
            if decoder is not None else self.base_head.decoder)

        self.reset_state()
        self._register_load_state_dict_pre_hook(self._load_state_dict_pre_hook)

    # ---------------------------------------------------------------- refiner
    def reset_state(self, video_id=None) -> None:
        """Forget the test-mode state carried between :meth:`predict` calls:
        of one video / track (``video_id``), or of all (``None``)."""
        if video_id is None:
            # video_id -> ((h, c), last frame_id)
            self._states: Dict[object, Tuple[State, int]] = {}
        else:
            self._states.pop(video_id, None)

    def refine(self,
               heatmaps: Tensor,
               state: Optional[State] = None,
               lengths: Optional[Sequence[int]] = None
               ) -> Tuple[Tensor, State]:
        """Run eq. 1 over clips.

        Args:
            heatmaps (Tensor): base heatmaps ``o``, shape (B, T, K, H, W).
            state (tuple[Tensor, Tensor], optional): ``(h, c)`` before the
                first frame, each (B, C, H, W) (C = hidden channels, times K
                when ``share_across_keypoints``); ``None`` is the initial
                state.
            lengths (Sequence[int], optional): true length of each of the B
                clips when they are padded at the end; the returned state is
                taken at each clip's last real frame. ``None``: all T.

        Returns:
            tuple: refined heatmaps ``s`` (B, T, K, H, W) and the state after
            each clip's last frame.
        """
        b, t, k, height, width = heatmaps.shape
        # The 1x1 layers are time-independent: run them on all frames at
        # once; only the cell is stepped.
        x = self.in_proj(heatmaps.flatten(0, 1)).unflatten(0, (b, t))
        hidden, cells = [], []
        for i in range(t):
            state = self.cell(x[:, i], state)
            hidden.append(state[0])
            cells.append(state[1])
        h = torch.stack(hidden, 1).flatten(0, 1)
        if self.share_across_keypoints:
            h = torch.cat([
                h.view(b * t, k, -1, height, width),
                heatmaps.view(b * t, k, 1, height, width)
            ], 2).view(b * t, -1, height, width)
        delta = self.out_proj(h).view(b, t, k, height, width)
        if lengths is not None and any(n != t for n in lengths):
            last = torch.as_tensor(lengths, device=heatmaps.device) - 1
            unit = torch.arange(b, device=heatmaps.device)
            state = (torch.stack(hidden, 1)[unit, last],
                     torch.stack(cells, 1)[unit, last])
        return heatmaps + delta, state

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
                clips (``clip_len``); ``None``: every frame is its own clip.

        Returns:
            Tensor: refined heatmaps (B·T, K, H, W), frame order kept.
        """
        heatmaps = self._base_forward(feats)
        if batch_data_samples is None:
            return self.refine(heatmaps[:, None])[0][:, 0]
        clips = split_clips(batch_data_samples)
        refined, _ = self.refine(pad_clips(heatmaps, clips))
        return unpad_clips(refined, clips)

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

        batch_heatmaps = self._predict_stateful(heatmaps, batch_data_samples)
        preds = self.decode(batch_heatmaps)
        if test_cfg.get('output_raw', False):
            # The frozen model's own landmarks o_t, decoded the same way, so
            # one test run reports raw vs refined (docs/conventions.md §4).
            for pred, raw in zip(preds, self.decode(heatmaps)):
                pred.raw_keypoints = raw.keypoints
                pred.raw_keypoint_scores = raw.keypoint_scores
        if test_cfg.get('output_heatmaps', False):
            pred_fields = [
                PixelData(heatmaps=hm) for hm in batch_heatmaps.detach()
            ]
            return preds, pred_fields
        return preds

    def _predict_stateful(self, heatmaps: Tensor,
                          batch_data_samples: Sequence) -> Tensor:
        """Refine test frames, carrying one state per ``video_id``.

        The batch is cut into clips (``clip_len``, default 1); clips of one
        video that continue each other form a run. A run continues the
        stored state of its video iff its first ``frame_id`` follows the
        video's last one by 1..``max_frame_gap``. All runs are refined in one
        padded call; afterwards only the videos of this batch keep a state
        (a track absent from a call has ended).
        """
        runs: List[list] = []  # [video_id, frame indices, continues]
        open_run: Dict[object, int] = {}
        last = {vid: fid for vid, (_, fid) in self._states.items()}
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

        lengths = [len(frames) for _, frames, _ in runs]
        padded = heatmaps.new_zeros(len(runs), max(lengths),
                                    *heatmaps.shape[1:])
        for r, (_, frames, _) in enumerate(runs):
            padded[r, :len(frames)] = heatmaps[frames]
        state = None
        if any(continues for _, _, continues in runs):
            zero = self._zero_state(heatmaps)
            init = [
                self._states[vid][0] if continues and self._state_fits(
                    self._states[vid][0], zero) else zero
                for vid, _, continues in runs
            ]
            state = tuple(torch.cat(parts) for parts in zip(*init))
        refined, state = self.refine(padded, state, lengths)

        out = torch.empty_like(heatmaps)
        states: Dict[object, Tuple[State, int]] = {}
        for r, (vid, frames, _) in enumerate(runs):
            out[frames] = refined[r, :len(frames)]
            if vid is not None:
                # runs are in batch order: a video's last run wins
                states[vid] = (tuple(s[r:r + 1].detach()
                                     for s in state), last[vid])
        self._states = states
        return out

    def _zero_state(self, heatmaps: Tensor) -> State:
        channels = self.cell.hidden_channels * (
            self.out_channels if self.share_across_keypoints else 1)
        zero = heatmaps.new_zeros(1, channels, *heatmaps.shape[-2:])
        return zero, zero

    @staticmethod
    def _state_fits(state: State, zero: State) -> bool:
        return state[0].shape == zero[0].shape

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
        refined, _ = self.refine(pad_clips(self._base_forward(feats), clips))
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
        if train_cfg.get('compute_acc', True):
            _, avg_acc, _ = pose_pck_accuracy(
                output=to_numpy(pred_frames),
                target=to_numpy(gt_heatmaps),
                mask=to_numpy(keypoint_weights) > 0)
            losses.update(
                acc_pose=torch.tensor(avg_acc, device=gt_heatmaps.device))
        return losses

    def _gt_heatmap_keypoints(self, batch_data_samples: Sequence,
                              gt_heatmaps: Tensor) -> Tensor:
        """GT keypoints (N, K, 2) in heatmap pixels (conventions.md §2)."""
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
        keypoints = torch.stack(keypoints).to(gt_heatmaps)

        input_size = getattr(self.decoder, 'input_size', None)
        heatmap_size = getattr(self.decoder, 'heatmap_size', None)
        if input_size is None or heatmap_size is None:
            input_size = batch_data_samples[0].metainfo['input_size']
            heatmap_size = gt_heatmaps.shape[:-3:-1]  # (W, H)
        scale = torch.as_tensor(
            np.asarray(heatmap_size, dtype=np.float64) /
            np.asarray(input_size, dtype=np.float64)).to(keypoints)
        return keypoints * scale

    # ------------------------------------------------------------ checkpoint
    def _load_state_dict_pre_hook(self, state_dict, prefix, local_meta, *args,
                                  **kwargs):
        """Load a plain MMPose head's keys into ``base_head``.

        ``<prefix>final_layer.weight`` → ``<prefix>base_head.final_layer
        .weight`` for every key whose first name is a child / parameter /
        buffer of the base head and not one of the refiner's own, so a zoo
        checkpoint of the image model loads with only the refiner missing.
        """
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
