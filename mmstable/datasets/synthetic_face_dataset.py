import copy
import json
import os.path as osp
import zlib
from typing import List, Optional, Sequence

import numpy as np
from mmengine.dist import barrier, get_dist_info
from mmengine.logging import print_log
from mmpose.datasets.datasets.face import Face300WDataset
from mmpose.registry import DATASETS
from mmpose.structures.bbox import bbox_cs2xyxy

from ..utils.data_checks import check_keypoints
from .synthetic.generator import (DEFAULT_SPLIT_SIZES, FORMAT_VERSION,
                                  FaceVideoGenerator, check_split,
                                  default_ann_file, preset_settings,
                                  write_split)

#: Crop boxes a test scenario can use (``box_modes``).
BOX_MODES = ('exact', 'jittered')


@DATASETS.register_module()
class SyntheticFaceVideoDataset(Face300WDataset):
    """Synthetic face videos with 68 iBUG landmarks, generated on first use.

    The embedded default dataset: with no data and no internet, mmstable's
    whole recipe (image model, refiner, video evaluation) still runs on it.
    Frames come from :class:`~mmstable.datasets.synthetic.FaceVideoGenerator`
    and are written (once, cached in ``data_root``; or beforehand with
    ``tools/dataset_converters/make_synthetic_faces.py``) in MMPose's
    COCO-style 300W layout::

        data_root/images/<split>_<video>/<frame>.jpg
        data_root/annotations/face_landmarks_synthetic_<split>.json

    so MMPose's 300W pipelines, metainfo (flip pairs, sigmas) and ``NME``
    apply unchanged. Each data info is one frame: everything
    :class:`Face300WDataset` gives (``img_path``, ``bbox``, ``bbox_center``,
    ``bbox_scale``, ``keypoints`` (1, 68, 2), ``keypoints_visible`` (1, 68),
    ``id``, ``img_id``) plus ``video_id`` and ``frame_id``
    (``docs/conventions.md`` §1), so clip datasets and video metrics can group
    frames by video, and ``identity`` (the face's index in its split).

    Splits use disjoint seeds, so no identity or trajectory is shared between
    ``train``, ``val`` and ``test``.

    Args:
        data_root (str): folder of the generated data.
            Default: ``'data/synthetic'``.
        split (str): ``'train'``, ``'val'`` or ``'test'``. Default:
            ``'train'``.
        as_images (bool): every frame is an independent sample: its
            ``video_id`` is its own (``'<video>/<frame>'``) and its
            ``frame_id`` 0, i.e. a one-frame video; for training an image
            model with MMPose's stock recipe. ``False``: frames keep their
            video's ``video_id`` and position. Default: ``False``.
        num_videos (int, optional): videos in the split. ``None``: whatever
            is cached, else ``DEFAULT_SPLIT_SIZES[split]``.
        num_frames (int, optional): frames per video; ``None`` as above.
        seed (int, optional): base seed; ``None``: whatever is cached, else 0.
        generator (dict, optional): :class:`FaceVideoGenerator` arguments
            (``image_size``, ``face_size``, ``noise``, ``blur``, ``motion``,
            ``expression``); ``None``: whatever is cached, else defaults.
        img_ext (str, optional): ``'.jpg'`` or ``'.png'``; ``None`` as above,
            else ``'.jpg'``.
        generate (bool): generate the split when its annotation file is
            missing or was generated with other explicitly given settings.
            ``False``: use the file as it is. Default: ``True``.
        ann_file (str): default
            ``'annotations/face_landmarks_synthetic_<split>.json'``.
        data_prefix (dict): default ``dict(img='images/')``.
        presets (Sequence[str], optional): test scenarios of
            :data:`~mmstable.datasets.synthetic.generator.PRESETS`
            (``'still'``, ``'talking'``, ``'moving'``, ``'fast'``): the same
            ``num_videos`` seeds rendered once per preset (``generator``
            overrides the preset's settings), each cached in
            ``annotations/face_landmarks_synthetic_<split>_<preset>.json``
            with videos ``<split>_<preset>_<index>``. ``None``: one set of
            videos with ``generator``'s settings.
        box_modes (Sequence[str], optional): crop boxes; every frame is
            listed once per mode: ``'exact'``, the square around the
            ground-truth landmarks (MMPose's 300VW box); ``'jittered'``, that
            box with per-frame Gaussian jitter of its centre and size
            (``box_jitter``), like a face detector's. Each (preset, box mode)
            is a scenario: frames carry metainfo ``scenario`` =
            ``'<preset>_<mode>'`` (``'<mode>'`` without presets, the preset's
            name without box modes) and ``video_id`` gains ``_<mode>``, so
            the video metrics report ``moving_jittered/NMF`` and the like.
            ``None``: the exact box, no scenario.
        box_jitter (dict): ``center`` and ``size``: σ of the jitter in % of
            the exact box's side (the centre moves by N(0, σ²) in x and in
            y, the side is scaled by 1 + N(0, σ²)). Default
            ``dict(center=3., size=3.)``.
        box_seed (int): seed of the jitter; each frame draws from
            ``(box_seed, crc32(video_id), frame_id)``, so the boxes do not
            depend on the order the frames are read in.
        **kwargs: the rest of :class:`Face300WDataset`'s arguments
            (``pipeline``, ``test_mode``, ``indices``, ...).

    Example::

        dataset = dict(
            type='SyntheticFaceVideoDataset', data_root='data/synthetic',
            split='train', as_images=True,
            generator=dict(noise=1.0, blur=1.0),
            pipeline=train_pipeline)
    """

    METAINFO: dict = dict(from_file='configs/_base_/datasets/300w.py')

    def __init__(self,
                 data_root: str = 'data/synthetic',
                 split: str = 'train',
                 as_images: bool = False,
                 num_videos: Optional[int] = None,
                 num_frames: Optional[int] = None,
                 seed: Optional[int] = None,
                 generator: Optional[dict] = None,
                 img_ext: Optional[str] = None,
                 generate: bool = True,
                 ann_file: str = '',
                 data_prefix: dict = dict(img='images/'),
                 presets: Optional[Sequence[str]] = None,
                 box_modes: Optional[Sequence[str]] = None,
                 box_jitter: Optional[dict] = None,
                 box_seed: int = 0,
                 **kwargs):
        self.split = check_split(split)
        self.as_images = as_images
        self._check_scenarios(presets, box_modes, box_jitter, ann_file,
                              as_images)
        self.presets = list(presets or [])
        self.box_modes = list(box_modes or [])
        self.box_jitter = {**dict(center=3., size=3.), **(box_jitter or {})}
        self.box_seed = int(box_seed)
        wanted = dict(num_videos=num_videos, num_frames=num_frames, seed=seed,
                      generator=generator, img_ext=img_ext)
        if self.presets:
            # one annotation file per preset; load_data_list reads them all
            self._preset_ann_files = []
            for preset in self.presets:
                path = default_ann_file(split, preset)
                if generate:
                    self._ensure_generated(
                        data_root, path, data_prefix.get('img', ''),
                        dict(wanted, generator=dict(
                            preset_settings(preset), **(generator or {}))),
                        video_prefix=f'{split}_{preset}')
                self._preset_ann_files.append(
                    path if osp.isabs(path) else osp.join(data_root, path))
            ann_file = self._preset_ann_files[0]
        ann_file = ann_file or default_ann_file(split)
        if generate and not self.presets:
            self._ensure_generated(data_root, ann_file,
                                   data_prefix.get('img', ''), wanted)
        super().__init__(
            ann_file=ann_file,
            data_root=data_root,
            data_prefix=data_prefix,
            **kwargs)

    @staticmethod
    def _check_scenarios(presets, box_modes, box_jitter, ann_file,
                         as_images) -> None:
        where = 'SyntheticFaceVideoDataset'
        for key, value in (('presets', presets), ('box_modes', box_modes)):
            if value is not None and (isinstance(value, str) or
                                      len(set(value)) != len(value)):
                raise ValueError(f'{where}.{key}: expected a list of distinct'
                                 f' names, got {value!r} (dataset config)')
        for preset in presets or []:
            preset_settings(preset)
        for mode in box_modes or []:
            if mode not in BOX_MODES:
                raise ValueError(f'{where}.box_modes: expected names from '
                                 f'{BOX_MODES}, got {mode!r} (dataset '
                                 'config)')
        if box_jitter is not None:
            unknown = set(box_jitter) - {'center', 'size'}
            bad = [v for v in box_jitter.values()
                   if not isinstance(v, (int, float)) or v < 0]
            if unknown or bad:
                raise ValueError(
                    f"{where}.box_jitter: expected dict(center=σ, size=σ) "
                    f'with σ >= 0 in % of the face box, got {box_jitter!r} '
                    '(dataset config)')
        if presets and ann_file:
            raise ValueError(f'{where}: presets name their own annotation '
                             f'files; drop ann_file={ann_file!r} or presets')
        if (presets or box_modes) and as_images:
            raise ValueError(f'{where}: presets / box_modes make video test '
                             'scenarios; they need as_images=False')

    def load_data_list(self) -> List[dict]:
        """Face300WDataset's data list, per preset and per box mode."""
        if not self.presets:
            return self._scenario_copies(super().load_data_list(), None)
        data_list, ann_file = [], self.ann_file
        try:
            for preset, path in zip(self.presets, self._preset_ann_files):
                self.ann_file = path
                data_list += self._scenario_copies(super().load_data_list(),
                                                   preset)
        finally:
            self.ann_file = ann_file
        return data_list

    def _scenario_copies(self, data_list: List[dict],
                         preset: Optional[str]) -> List[dict]:
        if not self.box_modes:
            if preset is not None:
                for info in data_list:
                    info['scenario'] = preset
            return data_list
        out = []
        for mode in self.box_modes:
            scenario = f'{preset}_{mode}' if preset else mode
            for info in data_list:
                info = copy.deepcopy(info)
                info['video_id'] = f'{info["video_id"]}_{mode}'
                info['scenario'] = scenario
                if mode == 'jittered':
                    self._jitter_box(info)
                out.append(info)
        return out

    def _jitter_box(self, info: dict) -> None:
        """Move and rescale ``info``'s exact box in place (``box_jitter``)."""
        key = zlib.crc32(str(info['video_id']).encode())
        rng = np.random.default_rng(
            (self.box_seed, key, int(info['frame_id'])))
        side = float(info['bbox_scale'][0, 0])
        shift = rng.standard_normal(2) * self.box_jitter['center'] / 100.
        factor = 1. + rng.standard_normal() * self.box_jitter['size'] / 100.
        center = info['bbox_center'] + (shift * side).astype(np.float32)
        scale = info['bbox_scale'] * np.float32(max(factor, 0.5))
        info['bbox_center'] = center.astype(np.float32)
        info['bbox_scale'] = scale.astype(np.float32)
        info['bbox'] = bbox_cs2xyxy(info['bbox_center'], info['bbox_scale'])

    def _ensure_generated(self, data_root: str, ann_file: str,
                          img_prefix: str, wanted: dict,
                          video_prefix: Optional[str] = None) -> None:
        path = ann_file if osp.isabs(ann_file) else osp.join(
            data_root, ann_file)
        if wanted['generator'] is not None:
            # normalise (validates too), so it compares with the cached one
            wanted['generator'] = FaceVideoGenerator(
                **wanted['generator']).config()
        wanted = self._cache_settings(wanted)
        stale = self._stale_settings(path, wanted)
        if not stale:
            return
        rank, _ = get_dist_info()
        if rank == 0:
            print_log(
                f'{type(self).__name__}: generating the {self.split!r} split '
                f'into {data_root} ({stale})', logger='current')
            num_videos, num_frames = DEFAULT_SPLIT_SIZES[self.split]
            info = self._write_split(
                data_root,
                num_videos=_or(wanted['num_videos'], num_videos),
                num_frames=_or(wanted['num_frames'], num_frames),
                seed=_or(wanted['seed'], 0),
                generator=wanted['generator'],
                ann_file=osp.relpath(path, data_root),
                img_prefix=img_prefix,
                img_ext=_or(wanted['img_ext'], '.jpg'),
                video_prefix=video_prefix)
            print_log(
                f'{type(self).__name__}: wrote {info["num_images"]} frames '
                f'({info["num_videos"]} videos) in {info["seconds"]:.1f} s',
                logger='current')
        barrier()

    def _cache_settings(self, wanted: dict) -> dict:
        """The settings a cached split must match (a subclass adds its
        own, e.g. the source files' hashes)."""
        return wanted

    def _write_split(self, data_root: str, **kwargs) -> dict:
        """Write the split (:func:`write_split`; a subclass renders it its
        own way). Returns the annotation file's ``info``."""
        return write_split(data_root, self.split, **kwargs)

    @staticmethod
    def _stale_settings(path: str, wanted: dict) -> str:
        """Why ``path`` must be (re)generated; '' if it can be used."""
        if not osp.isfile(path):
            return f'{path} does not exist'
        with open(path) as f:
            info = json.load(f).get('info', {})
        if not isinstance(info, dict) or 'generator' not in info:
            return ''  # not ours (e.g. a real 300W file): use it as it is
        if info.get('version') != FORMAT_VERSION:
            return (f'{path} has format version {info.get("version")}, '
                    f'expected {FORMAT_VERSION}')
        diff = [
            f'{k}: cached {info.get(k)!r}, asked {v!r}'
            for k, v in wanted.items() if v is not None and info.get(k) != v
        ]
        return '; '.join(diff)

    def parse_data_info(self, raw_data_info: dict) -> Optional[dict]:
        """Face300WDataset's data info plus ``video_id`` and ``frame_id``."""
        data_info = super().parse_data_info(raw_data_info)
        img = raw_data_info['raw_img_info']
        if self.as_images:
            data_info['video_id'] = f'{img["video_id"]}/{img["frame_id"]:06d}'
            data_info['frame_id'] = 0
        else:
            data_info['video_id'] = img['video_id']
            data_info['frame_id'] = int(img['frame_id'])
        # the video's index in its split (write_split: '<prefix>_<index>')
        # seeds its face: frames of one index share an identity (presets
        # render the same faces), the label of DecoupledRecurrentRefineHead
        suffix = str(img['video_id']).rsplit('_', 1)[-1]
        if suffix.isdigit():
            data_info['identity'] = int(suffix)
        check_keypoints(data_info, self._metainfo.get('num_keypoints'),
                        self.ann_file, type(self).__name__)
        return data_info


def _or(value, default):
    return default if value is None else value
