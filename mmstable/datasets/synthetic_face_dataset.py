import json
import os.path as osp
from typing import Optional

from mmengine.dist import barrier, get_dist_info
from mmengine.logging import print_log
from mmpose.datasets.datasets.face import Face300WDataset
from mmpose.registry import DATASETS

from .synthetic.generator import (DEFAULT_SPLIT_SIZES, FORMAT_VERSION,
                                  FaceVideoGenerator, check_split,
                                  default_ann_file, write_split)


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
    frames by video.

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
                 **kwargs):
        self.split = check_split(split)
        self.as_images = as_images
        ann_file = ann_file or default_ann_file(split)
        if generate:
            self._ensure_generated(
                data_root, ann_file, data_prefix.get('img', ''),
                dict(num_videos=num_videos, num_frames=num_frames, seed=seed,
                     generator=generator, img_ext=img_ext))
        super().__init__(
            ann_file=ann_file,
            data_root=data_root,
            data_prefix=data_prefix,
            **kwargs)

    def _ensure_generated(self, data_root: str, ann_file: str,
                          img_prefix: str, wanted: dict) -> None:
        path = ann_file if osp.isabs(ann_file) else osp.join(
            data_root, ann_file)
        if wanted['generator'] is not None:
            # normalise (validates too), so it compares with the cached one
            wanted['generator'] = FaceVideoGenerator(
                **wanted['generator']).config()
        stale = self._stale_settings(path, wanted)
        if not stale:
            return
        rank, _ = get_dist_info()
        if rank == 0:
            print_log(
                f'{type(self).__name__}: generating the {self.split!r} split '
                f'into {data_root} ({stale})', logger='current')
            num_videos, num_frames = DEFAULT_SPLIT_SIZES[self.split]
            info = write_split(
                data_root, self.split,
                num_videos=_or(wanted['num_videos'], num_videos),
                num_frames=_or(wanted['num_frames'], num_frames),
                seed=_or(wanted['seed'], 0),
                generator=wanted['generator'],
                ann_file=osp.relpath(path, data_root),
                img_prefix=img_prefix,
                img_ext=_or(wanted['img_ext'], '.jpg'))
            print_log(
                f'{type(self).__name__}: wrote {info["num_images"]} frames '
                f'({info["num_videos"]} videos) in {info["seconds"]:.1f} s',
                logger='current')
        barrier()

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
        return data_info


def _or(value, default):
    return default if value is None else value
