import os
import os.path as osp

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
# MMSTABLE_TESTDATA overrides the location (tests of the fixture use it)
TESTDATA = os.environ.get(
    'MMSTABLE_TESTDATA',
    osp.join(osp.dirname(REPO), 'shared', 'fixtures', 'mmpose-testdata'))

# CI machines have 2 cores; keep each test process to one intra-op thread so
# timings are stable and parallel jobs do not oversubscribe.
torch.set_num_threads(1)


def _in_ci() -> bool:
    return os.environ.get('CI', '').strip().lower() in ('1', 'true', 'yes')


def missing_testdata_outcome():
    """What a test needing the MMPose test data does when it is absent: in CI
    (environment ``CI=true``, as GitHub Actions / GitLab set it) it fails --
    a CI that silently skips them would test nothing --, locally it skips."""
    msg = (f'MMPose test data not found at {TESTDATA} (copy MMPose\'s '
           'tests/data there)')
    return (pytest.fail, msg) if _in_ci() else (pytest.skip, msg)


@pytest.fixture(scope='session')
def mmpose_testdata():
    """Root of MMPose's face test data (../shared/fixtures/mmpose-testdata).

    When the folder is absent (the data is not shipped with the repo) tests
    that use it are skipped locally and FAIL in CI (``CI=true``).
    """
    if not osp.isdir(TESTDATA):
        outcome, msg = missing_testdata_outcome()
        outcome(msg)
    return TESTDATA


@pytest.fixture(scope='session', autouse=True)
def _register_mmstable():
    import mmstable  # noqa: F401  registers modules, installs safe loading
    from mmengine.registry import init_default_scope
    init_default_scope('mmpose')
