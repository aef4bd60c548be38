"""The report tables of tools/test.py on hand-made metrics."""
import importlib.util
import os
import os.path as osp

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _tool():
    spec = importlib.util.spec_from_file_location(
        'mmstable_test_tool', osp.join(REPO, 'tools', 'test.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_stability_table_rows_per_scenario_and_source():
    tool = _tool()
    metrics = {
        'NMF': 50., 'Raw/NMF': 100., 'MediaPipe/NMF': 25.,
        'moving_jittered/NMF': 30., 'moving_jittered/Raw/NMF': 120.,
        'moving_jittered/Raw/MediaPipe/NMF': 60.,
        'S1/MAV': 2., 'S1/Raw/MAV': 4.,
        'pareto/raw/NMF': 1., 'pareto/moving_jittered/refined/NMF': 2.,
    }
    lines = tool.stability_table(metrics, {'moving_jittered'}).splitlines()
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == {'Raw', 'Refined', 'moving_jittered/Raw',
                         'moving_jittered/Raw/MediaPipe',
                         'moving_jittered/Refined', 'S1/Raw', 'S1/Refined',
                         'Refined/MediaPipe'}
    assert '25 (-75%)' in rows['Refined/MediaPipe']  # a filter on refined
    # changes against raw of the same scenario: 30 / 120 − 1 = −75 %
    assert '30 (-75%)' in rows['moving_jittered/Refined']
    assert '60 (-50%)' in rows['moving_jittered/Raw/MediaPipe']
    assert '50 (-50%)' in rows['Refined']
    assert '2 (-50%)' in rows['S1/Refined']  # 300VW S1 without being told
    assert 'NMF' in lines[0] and 'pareto' not in ''.join(rows)


def test_demo_pareto_summary(tmp_path):
    import json

    import numpy as np
    spec = importlib.util.spec_from_file_location(
        'mmstable_demo_tool', osp.join(REPO, 'tools', 'demo.py'))
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)

    def point(label, family, nme, nmf):
        return dict(label=label, family=family, causal=True, params={},
                    NME=nme, NMF=nmf, MAV=1., MAV_err=1.)

    from mmstable.evaluation import scenario_summary
    pts = [point('raw', 'raw', .03, 400.), point('refined', 'refined', .03,
                                                 200.),
           point('Kalman process_noise=0.1', 'Kalman', .03, 300.)]
    summaries = {'fast_jittered': scenario_summary(pts)}
    path = tmp_path / 'pareto.json'
    path.write_text(json.dumps(dict(points={}, summaries=summaries),
                               default=lambda x: x.item() if isinstance(
                                   x, np.generic) else str(x)))
    text = demo.pareto_summary(str(path))
    # refined 200 against the Kalman front's 300 at NME 0.03: 1 − 2/3
    assert 'PASS fast_jittered: refined NMF 33.3% below' in text
    assert 'best Kalman' in text and '200 (-50%)' in text


def test_demo_lanes_run_side_by_side_and_stop_on_failure(tmp_path, capsys):
    import sys
    spec = importlib.util.spec_from_file_location(
        'mmstable_demo_tool', osp.join(REPO, 'tools', 'demo.py'))
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    py = sys.executable
    lanes = demo.Lanes(dict(os.environ), str(tmp_path / 'logs'))
    done = []

    def good(run):
        run('a: one', [py, '-c', 'print("hello")'])
        done.append('a one')

    def bad(run):
        run('b: fails', [py, '-c', 'import sys; print("boom"); sys.exit(3)'])
        done.append('b after failure')  # never reached

    for t in (lanes.start('a', good), lanes.start('b', bad)):
        t.join()
    assert lanes.failed.startswith('b: fails (exit 3')
    assert done in (['a one'], [])  # lane a may be stopped before its stage
    out = capsys.readouterr().out
    assert 'b: b: fails FAILED (exit 3)' in out and 'boom' in out
    assert (tmp_path / 'logs' / 'b_fails.log').read_text() == 'boom\n'
    lanes = demo.Lanes(dict(os.environ), str(tmp_path / 'logs2'))
    lanes.start('a', good).join()
    assert lanes.failed is None and set(lanes.times) == {'a: one'}
    assert (tmp_path / 'logs2' / 'a_one.log').read_text() == 'hello\n'
