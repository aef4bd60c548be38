"""tools/analysis/sweep_thresholds.py: the tables (tables 3 and 4 of Sun et
al.) from metric JSONs, and the commands it plans; no training here."""
import json
import os.path as osp
import runpy
from types import SimpleNamespace

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.fixture(scope='module')
def sweep():
    return SimpleNamespace(**runpy.run_path(
        osp.join(REPO, 'tools', 'analysis', 'sweep_thresholds.py')))


def _fake_metrics(tmp_path):
    """``tools/test.py --out`` JSONs of three Θ runs (the second without
    MAV, as from a metric left out)."""
    fake = {
        0.0: {'NME': 0.05, 'MCV': 2.0, 'MAV': 0.5, 'Raw/NME': 0.06,
              'Raw/MCV': 4.0, 'Raw/MAV': 1.0, 'AUC@0.08': 0.4},
        1.0: {'NME': 0.04, 'MCV': 1.5, 'Raw/NME': 0.06, 'Raw/MCV': 4.0,
              'Raw/MAV': 1.0},
        0.5: {'NME': 0.045, 'MCV': 1.0, 'MAV': 0.25, 'S1/NME': 9.9},
    }
    paths = {}
    for value, metrics in fake.items():
        paths[value] = str(tmp_path / f'theta_{value:g}.json')
        with open(paths[value], 'w') as f:
            json.dump(metrics, f)
    return paths


def test_rows_products_and_missing_values(sweep, tmp_path):
    results = sweep.load_results(_fake_metrics(tmp_path))
    rows = sweep.table_rows(results)
    assert [r['value'] for r in rows] == [0.0, 0.5, 1.0]
    r0, r05, r1 = rows
    # NME in percent, products with NME in percent
    assert r0['NME(%)'] == pytest.approx(5.0)
    assert r0['NME×MCV'] == pytest.approx(10.0)
    assert r0['NME×MAV'] == pytest.approx(2.5)
    assert r05['NME×MCV'] == pytest.approx(4.5)
    assert r05['NME×MAV'] == pytest.approx(4.5 * 0.25)
    assert r1['MAV'] is None and r1['NME×MAV'] is None
    assert r1['NME×MCV'] == pytest.approx(6.0)
    raw = sweep.table_rows(results, 'Raw')
    assert raw[0]['MCV'] == 4.0 and raw[1]['NME(%)'] is None


def test_formatted_table_marks_the_best_values(sweep, tmp_path):
    results = sweep.load_results(_fake_metrics(tmp_path))
    text = sweep.format_table('Θ', sweep.table_rows(results), 'title')
    lines = text.splitlines()
    assert lines[0] == 'title'
    assert lines[1].split() == ['Θ', *sweep.COLUMNS]
    by_value = {line.split()[0]: line.split()[1:] for line in lines[2:]}
    assert by_value['0'] == ['5', '2', '0.5', '10', '2.5']
    assert by_value['0.5'] == ['4.5', '1*', '0.25*', '4.5*', '1.125*']
    assert by_value['1'] == ['4*', '1.5', '-', '6', '-']
    tables = sweep.report('theta', results)
    assert set(tables) == {'Refined', 'Raw'}
    assert 'frozen' in tables['Raw']['text']


def test_dry_run_plans_the_paper_sweeps(sweep, capsys, tmp_path):
    """Θ: train + test per value; Θ_PDC (retest): the Θ run at the config's
    Θ is re-tested once per Θ_PDC; retrain: one fine-tune per value."""
    args = ['ckpt.pth', '--work-dir', str(tmp_path), '--dry-run']
    sweep.main(args)
    cmds = [line[2:] for line in capsys.readouterr().out.splitlines()
            if line.startswith('$ ')]
    train = [c for c in cmds if 'tools/train.py' in c]
    test = [c for c in cmds if 'tools/test.py' in c]
    assert len(train) == 5 and len(test) == 10
    for theta in ('0.0', '0.5', '1.0', '1.5', '2.0'):
        assert any(f'jitter_threshold={theta}' in c for c in train)
    assert all('load_from=' in c and 'synthetic_jitter.py' in c
               for c in train)
    pdc = [c for c in test if 'decoder.pdc_threshold' in c]
    assert len(pdc) == 5
    assert all(f'{tmp_path}/theta_1/' in c for c in pdc)  # Θ=1 reused

    sweep.main(args + ['--param', 'pdc', '--pdc-mode', 'retrain'])
    cmds = [line[2:] for line in capsys.readouterr().out.splitlines()
            if line.startswith('$ ')]
    train = [c for c in cmds if 'tools/train.py' in c]
    assert len(train) == 5
    assert all('model.head.loss.pdc_threshold=' in c for c in train)
