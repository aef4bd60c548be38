"""Normalised Mean Flicker (LDEQ's NMJ) as a video metric."""
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmpose.registry import METRICS

from ..functional import frame_nme, interocular_distance, nmf
from .base_video_metric import BaseVideoMetric
from .video_nme import nme_keypoint_indices


@METRICS.register_module()
class NMF(BaseVideoMetric):
    """Normalised Mean Flicker of video predictions (LDEQ, CVPR 2023).

    Per video (frames in ``frame_id`` order, image pixels), with
    e_t = pred_t − gt_t (K, 2) and s_t = sqrt(w_t · h_t / 256²), w_t, h_t the
    extent of frame t's ground-truth landmarks:
    NMJ_{t,k} = 100 · ‖e_{t,k} − e_{t−1,k}‖ / s_t for t >= 1, and
    NMF_video = RMS over t of (RMS over k of NMJ_{t,k})
    (:func:`mmstable.evaluation.functional.nmf`, LDEQ's ``video_NMJ``).
    ``NMF`` is the mean over videos; scenario / source / filter keys as in
    :class:`BaseVideoMetric` (``moving_jittered/Raw/NMF``). Lower is better.

    Unlike MAV it measures the jitter of the *error*: a prediction that
    follows a moving head exactly scores 0, and a constant predictor scores
    the head's own motion, so it cannot be won by ignoring motion.

    Args:
        nme_product (bool): also emit ``NMExNMF`` = NME × NMF, NME
            frame-averaged and a fraction as :class:`VideoNME` reports it
            with its defaults (not emitted itself: an evaluator with both
            metrics would have two ``NME`` keys); a best-checkpoint key
            (``save_best='NMExNMF'``, ``rule='less'``) that neither
            accuracy nor stability alone wins.
        keypoint_indices (Sequence[int], optional): the NME's normalising
            landmark pair; default by ``dataset_meta['dataset_name']`` as in
            :class:`VideoNME`.
        **kwargs: :class:`BaseVideoMetric` arguments.
    """
    min_frames = 2
    requires_gt = True

    def __init__(self,
                 nme_product: bool = False,
                 keypoint_indices: Optional[Sequence[int]] = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if keypoint_indices is not None and len(keypoint_indices) != 2:
            raise ValueError('NMF.keypoint_indices must be a pair of landmark '
                             f'indices, got {keypoint_indices}')
        self.nme_product = nme_product
        self.keypoint_indices = keypoint_indices

    def compute_video(self, series, track) -> dict:
        value = nmf(series, track.gt, track.mask)
        if not np.isfinite(value):
            self._warn(track, 'no two consecutive frames with visible '
                       'landmarks and a non-degenerate face box: no NMF')
        out = dict(nmf=value)
        if self.nme_product:
            indices = nme_keypoint_indices(self.keypoint_indices,
                                           self.dataset_meta, 'NMF')
            norm = interocular_distance(track.gt, indices)
            out['nmes'] = frame_nme(series, track.gt, track.mask, norm)
        return out

    def aggregate(self, per_video: List[dict]) -> Dict[str, float]:
        out = dict(NMF=self._mean(v['nmf'] for v in per_video))
        if self.nme_product:
            nmes = np.concatenate([v['nmes'] for v in per_video]) \
                if per_video else np.array([])
            nme = float(np.nanmean(nmes)) if np.isfinite(nmes).any() \
                else float('nan')
            out['NMExNMF'] = nme * out['NMF']
        return out
