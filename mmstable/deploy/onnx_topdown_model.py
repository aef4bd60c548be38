"""An exported face model (:func:`~mmstable.deploy.export_onnx`) run by ONNX
Runtime, as a drop-in for the torch model in :mod:`mmstable.apis`.

:class:`OnnxTopdownModel` has what :func:`mmpose.apis.inference_topdown` and
:class:`~mmstable.apis.StableFaceTracker` use of a model — ``cfg`` (the test
pipeline, from the file's metadata), ``dataset_meta``, ``test_cfg`` and
``test_step`` — so the tracker runs it unchanged (``init_model('x.onnx')``).
The per-track refiner state lives in :class:`OnnxTrackStates` (``model.head``,
as the torch head keeps its own), with the torch head's rule
(docs/conventions.md §1): a face continues its track's state iff its
``frame_id`` follows the track's last one by 1..``max_frame_gap``; a track
absent from a call has ended and its state is dropped.
"""
from typing import Dict, List, Optional

import numpy as np
import torch
from mmengine.config import Config
from mmengine.structures import InstanceData

from mmstable.structures import crop_affine_from_metainfo

from .onnx_export import read_metadata

__all__ = ['OnnxTopdownModel', 'OnnxTrackStates']


class OnnxTrackStates:
    """The refiner state of each track (``video_id``) between frames.

    Args:
        spec (dict): ``{input name: (shape per track, dtype)}`` of the state
            inputs (the file's ``state_spec``).
        zeros (dict): the initial state of one track per name.
        max_frame_gap (int): as ``ConvLSTMRefineHead.max_frame_gap``.
    """

    def __init__(self, spec: dict, zeros: Dict[str, np.ndarray],
                 max_frame_gap: int = 1):
        self.spec = spec
        self.zeros = zeros
        self.max_frame_gap = max_frame_gap
        self.reset_state()

    def reset_state(self) -> None:
        """Forget every track (the torch head's ``reset_state``)."""
        self._states: Dict[object, tuple] = {}  # vid -> (frame_id, arrays)

    def gather(self, keys: List[Optional[tuple]]) -> Dict[str, np.ndarray]:
        """The state inputs (N, ...) for faces ``(video_id, frame_id)``
        (``None``: no track, initial state)."""
        rows = []
        for key in keys:
            stored = self._states.get(key[0]) if key is not None else None
            gap = key[1] - stored[0] if stored is not None else 0
            rows.append(stored[1] if 0 < gap <= self.max_frame_gap else
                        self.zeros)
        return {
            name: np.ascontiguousarray(
                np.concatenate([r[name] for r in rows]))
            for name in self.spec
        }

    def scatter(self, keys: List[Optional[tuple]],
                new: Dict[str, np.ndarray]) -> None:
        """Keep the new state of the faces' tracks; drop the others."""
        states = {}
        for i, key in enumerate(keys):
            if key is not None:
                states[key[0]] = (key[1], {
                    name: new[name][i:i + 1]
                    for name in self.spec
                })
        self._states = states


class OnnxTopdownModel:
    """An exported model in ONNX Runtime, used like the torch model.

    Args:
        onnx_file (str): written by ``tools/deploy/export_onnx.py``.
        threads (int, optional): ONNX Runtime intra-op threads (``None``:
            its default, all cores).
        output_raw (bool): also report the frozen model's landmarks as
            ``raw_keypoints`` (what ``test_cfg['output_raw']`` does for the
            torch model).
    """

    def __init__(self,
                 onnx_file: str,
                 threads: Optional[int] = None,
                 output_raw: bool = True):
        self.meta = read_metadata(onnx_file)
        self.onnx_file = onnx_file
        self.threads = threads
        # one session per batch size N (faces per call), N fixed in each:
        # ONNX Runtime then folds the graph's shape arithmetic (-0.4 ms of
        # the demo's 7 ms step at N = 1); 'N' = the graph's dynamic axis
        self._sessions = {}
        self.session = self._session(1)  # one face: the common case
        self.cfg = Config(
            dict(
                default_scope=self.meta['default_scope'],
                test_dataloader=dict(
                    dataset=dict(pipeline=self.meta['test_pipeline']))))
        self.dataset_meta = dict(self.meta['dataset_meta'])
        self.test_cfg = dict(output_raw=output_raw)
        self.input_names = self.meta['input_names']
        self.output_names = self.meta['output_names']
        spec = {
            f'state_{k}': (tuple(s), d, init)
            for k, (s, d, init) in self.meta['state_spec'].items()
        }
        self.head = None
        if self.meta['stateful']:
            self.head = OnnxTrackStates(
                spec, _zero_state(spec), int(self.meta['max_frame_gap']))

    def step(self, crops: np.ndarray, crop_affines: np.ndarray,
             state: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """One graph run: crops (N, 3, h, w) float32 BGR 0..255, crop
        affines (N, 3, 3) image → input; returns the outputs by name."""
        feeds = dict(crop=np.ascontiguousarray(crops, np.float32),
                     crop_affine=np.ascontiguousarray(crop_affines,
                                                      np.float32))
        feeds.update(state)
        feeds = {k: v for k, v in feeds.items() if k in self.input_names}
        session = self._session(len(feeds['crop']))
        return dict(zip(self.output_names, session.run(None, feeds)))

    #: batch sizes that get their own fixed-N session (larger: dynamic N)
    MAX_FIXED_BATCH = 4

    def _session(self, batch: Optional[int]):
        """The ONNX Runtime session for ``batch`` faces (``None``: the
        dynamic-N one), created on first use."""
        if batch is not None and batch > self.MAX_FIXED_BATCH:
            batch = None
        if batch not in self._sessions:
            import onnxruntime as ort
            opts = ort.SessionOptions()
            if self.threads:
                opts.intra_op_num_threads = int(self.threads)
                opts.inter_op_num_threads = 1
            if batch is not None:
                opts.add_free_dimension_override_by_name('N', batch)
            self._sessions[batch] = ort.InferenceSession(
                self.onnx_file, opts, providers=['CPUExecutionProvider'])
        return self._sessions[batch]

    def test_step(self, data: dict) -> list:
        """``model.test_step`` of MMPose's top-down estimators on a batch
        from its test pipeline (``inference_topdown``): predictions in image
        pixels in ``pred_instances`` (``keypoints``, ``keypoint_scores``,
        and with ``test_cfg['output_raw']`` ``raw_keypoints`` /
        ``raw_keypoint_scores``)."""
        samples = data['data_samples']
        if not samples:
            return []
        crops = torch.stack(list(data['inputs'])).float().numpy()
        affines = np.stack([_crop_affine(s.metainfo) for s in samples])
        keys = [_frame_key(s.metainfo) for s in samples]
        state = self.head.gather(keys) if self.head is not None else {}
        out = self.step(crops, affines, state)
        if self.head is not None:
            self.head.scatter(keys, {
                name: out['new_' + name]
                for name in self.head.spec
            })
        to_image = np.linalg.inv(affines)
        for i, sample in enumerate(samples):
            pred = InstanceData()
            pred.keypoints = _apply(to_image[i], out['keypoints'][i])[None]
            pred.keypoint_scores = out['keypoint_scores'][i][None]
            pred.keypoints_visible = pred.keypoint_scores
            if self.test_cfg.get('output_raw', False):
                pred.raw_keypoints = _apply(to_image[i],
                                            out['raw_keypoints'][i])[None]
                pred.raw_keypoint_scores = out['raw_keypoint_scores'][i][None]
            sample.pred_instances = pred
        return samples


def _zero_state(spec: dict) -> Dict[str, np.ndarray]:
    """The initial state of one track (``spec``'s initial values: zeros,
    or the identity affine of ``TrackState.zeros``)."""
    zeros = {}
    for name, (shape, dtype, init) in spec.items():
        value = np.zeros((1, ) + tuple(shape), dtype=dtype)
        if init == 'eye':
            value[0] = np.eye(3)
        zeros[name] = value
    return zeros


def _crop_affine(metainfo) -> np.ndarray:
    mat = np.eye(3)
    crop = crop_affine_from_metainfo(metainfo)
    if crop is None:
        raise ValueError(
            'OnnxTopdownModel: a data sample has no crop (expected metainfo '
            '"crop_affine" or "input_center" / "input_scale" / "input_size" '
            'from the test pipeline\'s TopdownAffine)')
    mat[:2] = crop
    return mat


def _frame_key(metainfo) -> Optional[tuple]:
    if 'video_id' not in metainfo or 'frame_id' not in metainfo:
        return None
    return metainfo['video_id'], int(metainfo['frame_id'])


def _apply(mat: np.ndarray, points: np.ndarray) -> np.ndarray:
    return (points.astype(np.float64) @ mat[:2, :2].T +
            mat[:2, 2]).astype(np.float32)
