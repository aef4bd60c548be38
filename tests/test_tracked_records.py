"""Test videos cropped by the streaming tracker's rule (tiny random model)."""
import numpy as np
import pytest
from test_apis import write_tiny_model  # the tiny model of the API tests

from mmstable.apis import init_model
from mmstable.datasets.synthetic_face_dataset import SyntheticFaceVideoDataset
from mmstable.evaluation import ParetoSweep, tracked_video_records


@pytest.fixture(scope='module')
def records_and_dataset(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('tracked')
    model = init_model(*write_tiny_model(tmp), device='cpu')
    ds = SyntheticFaceVideoDataset(
        data_root=str(tmp / 'syn'), split='test', num_videos=1, num_frames=4,
        presets=['still'], box_modes=['exact', 'jittered'], test_mode=True)
    return tracked_video_records(model, ds), ds


def test_first_box_exact_then_previous_landmarks(records_and_dataset):
    recs, ds = records_and_dataset
    assert [r['frame_id'] for r in recs] == [0, 1, 2, 3]
    assert {r['video_id'] for r in recs} == {'test_still_000_tracker'}
    assert {r['scenario'] for r in recs} == {'still_tracker'}
    exact = [ds.get_data_info(i) for i in range(4)]
    np.testing.assert_allclose(recs[0]['bbox'], exact[0]['bbox'][0],
                               atol=1e-3)
    for prev, cur in zip(recs, recs[1:]):
        k = prev['preds']['']
        np.testing.assert_allclose(
            cur['bbox'], np.concatenate([k.min(0), k.max(0)]), atol=1e-3)
    for r, info in zip(recs, exact):
        np.testing.assert_allclose(r['gt'], info['keypoints'][0])
        assert r['mask'].all() and r['preds']['Raw'].shape == (68, 2)


def test_sweep_extends_with_tracker_scenarios(records_and_dataset):
    recs, _ = records_and_dataset
    sweep = ParetoSweep(extra_pred_keys=dict(Raw='raw_keypoints'),
                        grids=dict(EMA=[dict(type='EMAFilter', alpha=.5)]))
    sweep.dataset_meta = dict(dataset_name='300w')
    sweep.points, sweep.summaries = {'all': []}, {'all': dict(
        rows={}, standing=None)}
    keys = sweep.extend(recs)
    assert set(sweep.points) == {'all', 'still_tracker'}
    assert sweep.points['all'] == []  # the test run's pool is kept
    assert 'still_tracker/raw/NMF' in keys
    assert np.isfinite(keys['still_tracker/refined/NME'])


def test_box_jitter_table_plumbing_and_format(tmp_path):
    from mmstable.evaluation.box_jitter_table import (box_jitter_table,
                                                       format_box_jitter_table)
    model = init_model(*write_tiny_model(tmp_path), device='cpu')
    rows = box_jitter_table(model, rows=[('still exact', 0., 0.),
                                         ('still σ 4', 0., 4.)],
                            num_frames=3)
    assert [r['label'] for r in rows] == ['still exact', 'still σ 4']
    assert all(np.isfinite(v) for r in rows for k, v in r.items()
               if k != 'label')
    text = format_box_jitter_table([
        dict(label='a', **{'NME raw': 2., 'NME refined': 2.05,
                           'NMF raw': 100., 'NMF refined': 90.}),
        dict(label='b', **{'NME raw': 2., 'NME refined': 2.5,
                           'NMF raw': 100., 'NMF refined': 120.})])
    # 2.05 <= 2 × 1.02 = 2.04? no → bold; 90 < 100 → plain
    assert '| a | 2.00 | **2.05** | 100.0 | 90.0 |' in text
    assert '| b | 2.00 | **2.50** | 100.0 | **120.0** |' in text


def test_moving_head_lag_plumbing(tmp_path):
    from mmstable.evaluation.box_jitter_table import (format_moving_head_lag,
                                                       moving_head_lag)
    model = init_model(*write_tiny_model(tmp_path), device='cpu')
    rows = moving_head_lag(model, num_frames=4)
    assert [r['label'] for r in rows] == ['streamed',
                                          'state reset every frame']
    for r in rows:
        assert all(np.isfinite(r[k]) for k in (
            'NME raw', 'NME refined', 'lag rigid', 'lag non-rigid'))
        assert set(r['groups']) == {'jaw', 'brows', 'nose', 'eyes', 'mouth'}
    # the same frozen model in both runs; only the refiner's memory differs
    assert rows[0]['NME raw'] == rows[1]['NME raw']
    assert rows[0]['NME refined'] != rows[1]['NME refined']
    text = format_moving_head_lag([dict(
        label='streamed', **{'NME raw': 2., 'NME refined': 2.07,
                             'lag rigid': 0., 'lag non-rigid': 0.33,
                             'speed rigid': 2.5, 'speed non-rigid': 0.5},
        groups=dict(nose=0.13))])
    assert '| streamed | 2.000 | 2.070 | 0.00 | 0.33 | +0.130 |' in text
