import os.path as osp

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TESTDATA = osp.join(osp.dirname(REPO), 'shared', 'fixtures', 'mmpose-testdata')

# CI machines have 2 cores; keep each test process to one intra-op thread so
# timings are stable and parallel jobs do not oversubscribe.
torch.set_num_threads(1)


@pytest.fixture(scope='session')
def mmpose_testdata():
    """Root of MMPose's face test data (../shared/fixtures/mmpose-testdata).

    Tests that use it are skipped when the folder is absent (the data is not
    shipped with the repo).
    """
    if not osp.isdir(TESTDATA):
        pytest.skip(f'MMPose test data not found at {TESTDATA}')
    return TESTDATA


@pytest.fixture(scope='session', autouse=True)
def _register_mmstable():
    import mmstable  # noqa: F401  registers modules, installs safe loading
    from mmengine.registry import init_default_scope
    init_default_scope('mmpose')
