"""The `mim` install path of README.md ("What the set-up pins, and the other install path"), run
in the environment that runs the tests (the .venv of tools/setup_env.sh, issue 15).

- `mim install -e . --no-deps --no-build-isolation` reinstalls mmstable editable in place and
  changes no installed version (`pip freeze --all` before == after); `mim list` then works
  (pandas matches numpy, requirements/openmim.txt) and `mim list --all` shows mmstable.
- a regular install (`mim install . ...`, here into a --target folder so the venv is untouched)
  ships mmstable/model-index.yml, so plain `mim list` shows mmstable next to mmpose/mmcv/mmengine.
- `pip check` reports nothing but the known exception listed in README.md.
"""
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import mmstable

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MIM = BIN / 'mim'

# The pins of requirements/mminstall.txt and runtime.txt, written out by hand.
PINNED = {'mmcv': '2.1.0', 'mmengine': '0.10.7', 'mmpose': '1.3.2'}
# README.md lists each exception with its reason; anything else `pip check` says is a bug.
KNOWN_PIP_CHECK = {'mmpose 1.3.2 requires chumpy, which is not installed.',
                   # one OpenCV package: opencv-contrib-python-headless provides cv2 (issue 11)
                   'mmengine 0.10.7 requires opencv-python, which is not installed.',
                   'mmpose 1.3.2 requires opencv-python, which is not installed.'}


def _run(args, cwd=ROOT, timeout=60, pythonpath=None):
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK='1', PIP_NO_INPUT='1',
               PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1')
    env.pop('PYTHONPATH', None)
    if pythonpath is not None:
        env['PYTHONPATH'] = str(pythonpath)
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    return proc


def _check(proc, what):
    assert proc.returncode == 0, (
        f'expected `{what}` to exit 0, found exit {proc.returncode}:\n'
        f'{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}')
    return proc.stdout


def _mim():
    if not MIM.is_file():
        pytest.fail(f'expected the mim command at {MIM} (requirements/openmim.txt), found none: '
                    'run `bash tools/setup_env.sh`')
    return MIM


def _mim_list(*extra, pythonpath=None):
    """`mim list` rows as {package: version}."""
    out = _check(_run([_mim(), 'list', *extra], pythonpath=pythonpath), 'mim list ' + ' '.join(extra))
    lines = out.splitlines()
    dashes = next(i for i, line in enumerate(lines) if line.startswith('---'))
    return {row.split()[0]: row.split()[1] for row in lines[dashes + 1:] if row.strip()}


def _freeze():
    """`pip freeze --all` without mmstable's own lines (in a clone they carry the git commit)."""
    out = _check(_run([sys.executable, '-m', 'pip', 'freeze', '--all']), 'pip freeze --all')
    return '\n'.join(line for line in out.splitlines()
                     if 'mmstable' not in line and not line.startswith('-e '))


def _mmstable_install():
    """PEP 610 record of how mmstable is installed: {'url': ..., 'dir_info': {'editable': ...}}."""
    return json.loads(importlib.metadata.distribution('mmstable').read_text('direct_url.json'))


def test_mim_install_editable_keeps_every_pin():
    before = _freeze()
    _check(_run([_mim(), 'install', '-e', '.', '--no-deps', '--no-build-isolation'], timeout=120),
           'mim install -e . --no-deps --no-build-isolation')
    after = _freeze()
    assert after == before, (
        'expected `mim install -e . --no-deps --no-build-isolation` to change no installed package; '
        'pip freeze --all differs (- before, + after):\n' + '\n'.join(
            [f'- {line}' for line in sorted(set(before.splitlines()) - set(after.splitlines()))] +
            [f'+ {line}' for line in sorted(set(after.splitlines()) - set(before.splitlines()))]))
    installed = _mmstable_install()
    assert installed == {'url': ROOT.as_uri(), 'dir_info': {'editable': True}}, (
        f'expected mmstable installed editable from {ROOT}, found {installed}')

    listed = _mim_list()
    for name, version in PINNED.items():
        assert listed.get(name) == version, f'expected {name} {version} in `mim list`, found {listed}'
    assert _mim_list('--all').get('mmstable') == mmstable.__version__


def test_mim_install_regular_is_listed_next_to_mmpose(tmp_path):
    # A copy of what setup.cfg packages, so the in-tree build leaves no build/ or *.egg-info here.
    src = tmp_path / 'src'
    src.mkdir()
    for name in ('setup.cfg', 'pyproject.toml', 'README.md'):
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns('__pycache__', '*.pyc')
    shutil.copytree(ROOT / 'requirements', src / 'requirements', ignore=ignore)
    shutil.copytree(ROOT / 'mmstable', src / 'mmstable', ignore=ignore)
    target = tmp_path / 'site'
    _check(_run([_mim(), 'install', '.', '--no-deps', '--no-build-isolation', '--target', target],
                cwd=src, timeout=120),
           f'mim install . --no-deps --no-build-isolation --target {target}')
    assert (target / 'mmstable' / 'model-index.yml').is_file(), (
        'expected mmstable/model-index.yml in the installed package (setup.cfg [options.package_data])')

    listed = _mim_list(pythonpath=target)
    assert listed.get('mmstable') == mmstable.__version__, f'expected mmstable in `mim list`, found {listed}'
    for name, version in PINNED.items():
        assert listed.get(name) == version, f'expected {name} {version} in `mim list`, found {listed}'


def test_pip_check_reports_only_known_exceptions():
    proc = _run([sys.executable, '-m', 'pip', 'check'])
    reported = {line.strip() for line in proc.stdout.splitlines() if line.strip()}
    unexpected = reported - KNOWN_PIP_CHECK
    assert not unexpected, (
        'expected `pip check` to report only the exceptions README.md lists '
        f'({sorted(KNOWN_PIP_CHECK)}), found also: {sorted(unexpected)}')
