"""One streaming step of a face model as a graph (ONNX export).

:class:`StatefulStep` wraps a built model (an mmstable
``StableTopdownPoseEstimator`` + :class:`~mmstable.models.ConvLSTMRefineHead`,
or a plain MMPose ``TopdownPoseEstimator`` + heatmap head) as one function
of tensors, so that the refiner can leave Python / MMEngine::

    crop (N, 3, h, w)   float BGR pixels 0..255, the test pipeline's crop
                        (``TopdownAffine`` output, channels first)
    crop_affine (N, 3, 3)  image → input pixels of that crop
    state_* ...         the tracks' state before this frame
    ------------------------------------------------------------------
    keypoints (N, K, 2)        input (crop) pixels: refined (+ keypoint
                               stage) for a refiner model, the model's own
                               for a plain one
    keypoint_scores (N, K)
    raw_keypoints (N, K, 2)    the frozen image model's, input pixels
    raw_keypoint_scores (N, K)
    new_state_* ...            the state after this frame

Everything is the model's own code: MMPose's data preprocessor buffers
(``bgr_to_rgb``, mean / std), ``extract_feat``, the head's
:meth:`~mmstable.models.ConvLSTMRefineHead.refine` with a
:class:`~mmstable.structures.TrackState` built from the state inputs, the
head's ``keypoint_filter`` ``step`` (when the head has one), and PDC
(:func:`mmstable.codecs.pdc_codec._pdc`). Nothing here re-implements the
math, so the torch path and the graph agree by construction; the only new
code is the packing of state tensors.

A refiner whose map stage is the identity
(:meth:`~mmstable.models.ConvLSTMRefineHead.map_stage_is_identity`, e.g. the
default real-face model's, kept at its zero init) is exported without it:
no ``h`` / ``c`` / ``affine`` state, the maps decoded once; its keypoint
stage is the refiner.

The initial state of a track is all zeros (:meth:`StatefulStep.zero_state`):
``h = c = 0`` warps to 0 whatever the affine, and the keypoint stage starts a
track where its ``count`` is 0.
"""
import dataclasses
from typing import Dict, List, Tuple

import torch
from torch import Tensor, nn

from mmstable.codecs.pdc_codec import PDCCodec, _pdc
from mmstable.models.layers import KalmanTrackState
from mmstable.structures import TrackState, apply_affine

__all__ = ['StatefulStep']

# TrackState fields a refiner step reads, per head option (the others keep
# their defaults, which TrackState builds from ``keypoints``)
_REFINER_FIELDS = ('h', 'c', 'affine', 'keypoints', 'scores')
_PREDICTED_FIELDS = ('refined', 'refined_scores', 'refined_count',
                     'refined_velocity', 'velocity_stats')
_MEMORY_FIELDS = ('memory', 'memory_count')


class StatefulStep(nn.Module):
    """The model's one-frame step on tensors (see the module docstring).

    Args:
        model (nn.Module): a top-down heatmap model from
            :func:`mmstable.apis.init_model`, in eval mode.

    Attributes:
        input_names, output_names (list[str]): graph names, in the order of
            :meth:`forward`'s arguments / results.
        state_spec (dict): ``{name: (shape per track, dtype name)}`` of the
            state inputs (empty for a model without refiner).
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        head = model.head
        self.model = model
        self.stateful = callable(getattr(head, 'refine', None))
        decoder = head.decoder
        self.input_size = tuple(int(v) for v in decoder.input_size)
        self.heatmap_size = tuple(int(v) for v in decoder.heatmap_size)
        if not isinstance(decoder, PDCCodec):
            raise ValueError(
                'StatefulStep: the graph decodes with PDC (a few tensor ops); '
                f'the head\'s decoder is {type(decoder).__name__}. Set '
                "model.head.decoder.type='PDCCodec' in the config (or "
                "--cfg-options model.head.decoder.type=PDCCodec); MSRAHeatmap "
                'and DARK decoding are not exported.')
        self.pdc = (decoder.pdc_threshold, decoder.threshold_mode)
        if (model.test_cfg or {}).get('flip_test', False):
            raise ValueError(
                'StatefulStep: flip test is not part of the exported step '
                '(one refiner state per track sees one view); expected '
                'model.test_cfg.flip_test=False, found True. Set it in the '
                'config or with --cfg-options model.test_cfg.flip_test=False.')
        # K = the heatmap head's output maps (dataset_meta may be MMPose's
        # COCO default when no checkpoint is given)
        final = getattr(getattr(head, 'base_head', head), 'final_layer',
                        None)
        if not isinstance(getattr(final, 'out_channels', None), int):
            raise ValueError(
                'StatefulStep: expected a heatmap head with a final_layer '
                f'convolution (MMPose HeatmapHead); found {type(head)}')
        self.num_keypoints = final.out_channels
        if self.stateful:
            # an identity map stage (ConvLSTMRefineHead.map_stage_is_identity)
            # is left out of the graph, with its state: the refined maps are
            # the raw ones, decoded once
            self.map_stage = not head.map_stage_is_identity()
            fields = list(_REFINER_FIELDS) if self.map_stage else []
            if self.map_stage and head.needs_refined_history():
                fields += _PREDICTED_FIELDS
            if self.map_stage and head.memory == 'gated':
                fields += _MEMORY_FIELDS
            self.refiner_fields = fields
            self.keypoint_filter = getattr(head, 'keypoint_filter', None)
            # the crop offset's running mean only where the filter uses it
            self.filter_fields = [
                f.name for f in dataclasses.fields(KalmanTrackState)
                if f.name != 'offset'
                or getattr(self.keypoint_filter, 'crop_offset', False)
            ] if self.keypoint_filter is not None else []
        else:
            self.refiner_fields, self.filter_fields = [], []
            self.keypoint_filter = None
            self.map_stage = False
        self.state_spec = self._state_spec()
        self.input_names = ['crop', 'crop_affine'] + [
            f'state_{n}' for n in self.state_spec
        ]
        self.output_names = [
            'keypoints', 'keypoint_scores', 'raw_keypoints',
            'raw_keypoint_scores'
        ] + [f'new_state_{n}' for n in self.state_spec]

    # ------------------------------------------------------------ state
    def _zero_tracks(self, num: int) -> Dict[str, Tensor]:
        head = self.model.head
        w, h = self.heatmap_size
        k = self.num_keypoints
        zero = TrackState.zeros(
            num, head.state_channels,
            (h // head.state_stride, w // head.state_stride), k,
            torch.zeros(1),
            memory_shape=(k, h, w) if head.memory == 'gated' else None)
        out = {f'refiner_{f}': getattr(zero, f) for f in self.refiner_fields}
        if self.keypoint_filter is not None:
            kzero = self.keypoint_filter.zero_state(num, k, torch.zeros(1))
            out.update({f'filter_{f}': getattr(kzero, f)
                        for f in self.filter_fields})
        return out

    def _state_spec(self) -> Dict[str, Tuple[Tuple[int, ...], str]]:
        if not self.stateful:
            return {}
        return {
            name: (tuple(v.shape[1:]), str(v.dtype).split('.')[-1])
            for name, v in self._zero_tracks(1).items()
        }

    def zero_state(self, num: int) -> List[Tensor]:
        """The initial state of ``num`` tracks, in input order (h = c = 0,
        identity affine: :meth:`TrackState.zeros`; the keypoint stage's
        ``count = 0``)."""
        if not self.stateful:
            return []
        return list(self._zero_tracks(num).values())

    # ---------------------------------------------------------- forward
    def forward(self, crop: Tensor, crop_affine: Tensor,
                *state: Tensor) -> Tuple[Tensor, ...]:
        model, head = self.model, self.model.head
        pre = model.data_preprocessor
        x = crop
        if pre._channel_conversion:
            x = x[:, [2, 1, 0]]
        if pre._enable_normalize:
            x = (x - pre.mean) / pre.std
        feats = model.extract_feat(x)
        if self.stateful:
            heatmaps = head._base_forward(feats)
        else:
            heatmaps = head.forward(feats)
        # image → heatmap pixels, as ConvLSTMRefineHead.frame_affines
        # (mmstable.structures.heatmap_affine)
        scale = torch.tensor([
            self.heatmap_size[0] / self.input_size[0],
            self.heatmap_size[1] / self.input_size[1], 1.
        ]).to(crop_affine)
        to_input = torch.tensor([
            self.input_size[0] / self.heatmap_size[0],
            self.input_size[1] / self.heatmap_size[1]
        ]).to(heatmaps)
        raw, raw_scores = _pdc(heatmaps, *self.pdc)
        raw = raw * to_input
        if not self.stateful:
            return (raw, raw_scores, raw, raw_scores)

        values = dict(zip(self.state_spec, state))
        keypoints, scores, new_state = raw, raw_scores, []
        if self.map_stage:
            track = TrackState(**{
                f: values[f'refiner_{f}']
                for f in self.refiner_fields
            })
            refined, track = head.refine(
                heatmaps[:, None], track, None,
                (scale[:, None] * crop_affine)[:, None])
            if head.nonrigid_prediction > 0:
                # refine() decoded these maps already (PDC, the decoder's
                # settings) for its refined history, in image space
                keypoints = apply_affine(crop_affine, track.refined[:, 1])
                scores = track.refined_scores[:, 1]
            else:
                keypoints, scores = _pdc(refined[:, 0], *self.pdc)
                keypoints = keypoints * to_input
            new_state = [getattr(track, f) for f in self.refiner_fields]
        if self.keypoint_filter is not None:
            fields = {
                f: values[f'filter_{f}']
                for f in self.filter_fields
            }
            fields.setdefault('offset', raw.new_zeros(raw.shape[0], 2))
            kstate = KalmanTrackState(**fields)
            inverse = torch.linalg.inv(crop_affine)
            reference = apply_affine(inverse, raw)
            # the crop's centre in the image (the filter's crop offset)
            half = torch.tensor([crop.shape[-1] / 2., crop.shape[-2] / 2.
                                 ]).to(crop_affine)
            centre = apply_affine(inverse, half.expand(raw.shape[0], 1, 2))
            filtered, kstate = self.keypoint_filter.step(
                apply_affine(inverse, keypoints)
                if self.map_stage else reference, reference, kstate,
                centre[:, 0])
            keypoints = apply_affine(crop_affine, filtered)
            new_state += [getattr(kstate, f) for f in self.filter_fields]
        return (keypoints, scores, raw, raw_scores, *new_state)
