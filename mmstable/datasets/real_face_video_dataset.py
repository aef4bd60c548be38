import os.path as osp
from typing import Optional

from mmpose.registry import DATASETS

from .real_faces.fetch import sha256_file
from .real_faces.teachers import label_file
from .real_faces.writer import REAL_FORMAT_VERSION, write_real_split
from .synthetic_face_dataset import SyntheticFaceVideoDataset


@DATASETS.register_module()
class RealFaceVideoDataset(SyntheticFaceVideoDataset):
    """Real-textured face videos with exact 68-point ground truth (issue 11).

    :class:`SyntheticFaceVideoDataset` with the synthetic *faces* replaced by
    real photos from package registries (fetched by
    ``tools/dataset_converters/fetch_registry_faces.py``, labelled by two
    teachers with ``label_registry_faces.py``) that move and change
    expression along the same synthetic trajectories
    (:mod:`mmstable.datasets.real_faces.animate`); a split animates only the
    identities of its split (train / val / test are disjoint people).
    Everything else -- ``split``, ``as_images``, ``presets``, ``box_modes``
    (scenario keys ``<preset>_<box_mode>``), ``box_jitter``, caching in
    ``data_root``, the annotation file names -- is the parent's, so a config
    swaps ``type='SyntheticFaceVideoDataset'`` for this class and adds
    ``faces_root``. Data infos carry ``identity`` = the person's index among
    the split's identities (several videos animate one person).

    Args:
        data_root (str): where the videos are written. Default
            ``'data/real_faces'``.
        faces_root (str): the fetched and labelled photos. Default
            ``'data/registry_faces'``.
        **kwargs: :class:`SyntheticFaceVideoDataset`'s arguments.

    Labels inherit the teachers' iBUG 300-W terms: non-commercial.
    """

    def __init__(self,
                 data_root: str = 'data/real_faces',
                 faces_root: str = 'data/registry_faces',
                 **kwargs):
        self.faces_root = faces_root
        super().__init__(data_root=data_root, **kwargs)

    def _cache_settings(self, wanted: dict) -> dict:
        labels = label_file(self.faces_root, self.split)
        if not osp.isfile(labels):
            raise FileNotFoundError(
                f'{labels}: not found (expected the teacher labels of the '
                f'registry faces, RealFaceVideoDataset.faces_root); run python'
                ' tools/dataset_converters/fetch_registry_faces.py, then '
                'label_registry_faces.py')
        # relabelled photos make the cached videos stale
        return dict(wanted, labels_sha256=sha256_file(labels),
                    real_format=REAL_FORMAT_VERSION)

    def _write_split(self, data_root: str, **kwargs) -> dict:
        """Animate the split's labelled photos (:func:`write_real_split`)."""
        return write_real_split(data_root, self.split,
                                faces_root=self.faces_root, **kwargs)

    def parse_data_info(self, raw_data_info: dict) -> Optional[dict]:
        """The parent's data info; ``identity`` is the person (their index
        among the split's identities), not the video: several videos
        animate one person."""
        data_info = super().parse_data_info(raw_data_info)
        img = raw_data_info['raw_img_info']
        if data_info is not None and 'identity_index' in img:
            data_info['identity'] = int(img['identity_index'])
        return data_info

