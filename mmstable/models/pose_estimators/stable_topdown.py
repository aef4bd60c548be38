from contextlib import nullcontext
from typing import Sequence, Tuple

import torch
from mmengine.logging import print_log
from torch import Tensor

from mmpose.models.pose_estimators import TopdownPoseEstimator
from mmpose.registry import MODELS
from mmstable.utils.checkpoint import install_checkpoint_fit_check


@MODELS.register_module()
class StableTopdownPoseEstimator(TopdownPoseEstimator):
    """:class:`TopdownPoseEstimator` whose image model is frozen for the
    paper's fine-tuning (§3.1: "the optimizer updates the weights of
    ConvLSTM" only).

    Each module named in ``frozen_modules`` (dotted attribute paths from the
    estimator; paths that do not exist, e.g. ``neck`` in a model without
    one, are skipped) gets ``requires_grad=False`` and stays in eval mode —
    its BatchNorm statistics included — even after ``model.train()``; a path
    that names a parameter (e.g. ``head.input_gain``) gets
    ``requires_grad=False``. A
    frozen backbone / neck runs under ``torch.no_grad()``; the frozen base
    head does so inside :class:`~mmstable.models.ConvLSTMRefineHead`.

    Args:
        frozen_modules (Sequence[str]): modules to freeze. Defaults to the
            image model: ``('backbone', 'neck', 'head.base_head')``.
        **kwargs: arguments of :class:`TopdownPoseEstimator`.
    """

    def __init__(self,
                 *args,
                 frozen_modules: Sequence[str] = ('backbone', 'neck',
                                                  'head.base_head'),
                 **kwargs):
        super().__init__(*args, **kwargs)
        # a checkpoint that does not fit is an error on every load path
        install_checkpoint_fit_check(self)
        if isinstance(frozen_modules, str):
            frozen_modules = (frozen_modules, )
        self.frozen_modules = tuple(frozen_modules)
        self._frozen = {}
        for path in self.frozen_modules:
            module = self._get_submodule(path)
            param = self._get_parameter(path) if module is None else None
            if param is not None:
                param.requires_grad_(False)
                continue
            if module is None:
                print_log(f'{type(self).__name__}: frozen module "{path}" '
                          'does not exist in this model; skipped.', 'current')
                continue
            module.requires_grad_(False)
            self._frozen[path] = module
        self.train(self.training)

    def _get_submodule(self, path: str):
        try:
            return self.get_submodule(path)  # torch's nn.Module lookup
        except AttributeError:
            return None

    def _get_parameter(self, path: str):
        try:
            return self.get_parameter(path)  # torch's nn.Module lookup
        except AttributeError:
            return None

    def is_frozen(self, path: str) -> bool:
        return path in getattr(self, '_frozen', {})

    def train(self, mode: bool = True):
        super().train(mode)
        for module in getattr(self, '_frozen', {}).values():
            module.eval()
        return self

    def add_pred_to_datasample(self, batch_pred_instances,
                               batch_pred_fields, batch_data_samples):
        """As :class:`TopdownPoseEstimator`, and also maps the frozen model's
        ``raw_keypoints`` (``test_cfg=dict(output_raw=True)``) from input to
        image space, so raw and refined landmarks compare in one run."""
        for pred, data_sample in zip(batch_pred_instances,
                                     batch_data_samples):
            if 'raw_keypoints' in pred:
                meta = data_sample.metainfo
                # the same input -> image mapping MMPose applies to keypoints
                pred.raw_keypoints = (
                    pred.raw_keypoints / meta['input_size'] *
                    meta['input_scale'] + meta['input_center'] -
                    0.5 * meta['input_scale'])
                indices = self.test_cfg.get('output_keypoint_indices', None)
                if indices is not None:  # as MMPose does for `keypoints`
                    pred.raw_keypoints = pred.raw_keypoints[:, indices]
                    pred.raw_keypoint_scores = \
                        pred.raw_keypoint_scores[:, indices]
        return super().add_pred_to_datasample(batch_pred_instances,
                                              batch_pred_fields,
                                              batch_data_samples)

    def extract_feat(self, inputs: Tensor) -> Tuple[Tensor]:
        with torch.no_grad() if self.is_frozen('backbone') else nullcontext():
            x = self.backbone(inputs)
        if self.with_neck:
            with torch.no_grad() if self.is_frozen('neck') else nullcontext():
                x = self.neck(x)
        return x

