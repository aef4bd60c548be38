"""Pareto fronts, the refiner against them, the 'best filter' rule, and the
ParetoSweep metric; values worked out by hand."""
import json
import math

import numpy as np
import pytest
from mmpose.registry import METRICS

from mmstable.evaluation import (ParetoSweep, best_on_front, compare_to_front,
                                 front_value, pareto_front, scenario_summary)


def pt(label, nme, nmf, family='Kalman', causal=True):
    return dict(label=label, family=family, causal=causal, NME=nme, NMF=nmf)


# A, B, C form the front; D is dominated by B (2 <= 2.5, 5 <= 6), E by C;
# F ties C exactly (the first copy is kept); G has no NMF.
POINTS = [pt('A', 1., 10.), pt('B', 2., 5.), pt('C', 3., 2.),
          pt('D', 2.5, 6.), pt('E', 4., 2.), pt('F', 3., 2.),
          pt('G', 1.5, float('nan'))]


def test_front_drops_dominated_duplicates_and_nan():
    assert [POINTS[i]['label'] for i in pareto_front(POINTS)] == \
        ['A', 'B', 'C']
    assert pareto_front([]) == []


def test_front_value_interpolates_and_respects_the_tolerance():
    # between A (1, 10) and B (2, 5): 10 − 5·0.5 = 7.5
    assert front_value(POINTS, 1.5) == pytest.approx(7.5)
    # between B (2, 5) and C (3, 2) at 2.5: 3.5
    assert front_value(POINTS, 2.5) == pytest.approx(3.5)
    # 1 % more accurate than A: the same NME (within 2 %) → A's NMF
    assert front_value(POINTS, 0.99) == pytest.approx(10.)
    # 10 % more accurate than every filter: no filter there
    assert math.isnan(front_value(POINTS, 0.9))
    # less accurate than C: the front stays at C's NMF
    assert front_value(POINTS, 5.) == pytest.approx(2.)


def test_compare_to_front_gain_above_and_dominated():
    # (2, 4): front 5 at NME 2 → gain 1 − 4/5 = 0.2
    s = compare_to_front(pt('R', 2., 4., 'refined'), POINTS)
    assert s['gain'] == pytest.approx(0.2) and s['dominated_by'] is None
    assert '20.0% below the best causal filter' in s['text']
    # (2.5, 4): front 3.5 → gain 1 − 4/3.5 = −0.142857; no point has
    # NME <= 2.5 and NMF <= 4 → not dominated, but above the front
    s = compare_to_front(pt('R', 2.5, 4., 'refined'), POINTS)
    assert s['gain'] == pytest.approx(-0.142857, rel=1e-5)
    assert s['dominated_by'] is None and '14.3% above' in s['text']
    # (3.5, 3): C (3, 2) is better in both
    s = compare_to_front(pt('R', 3.5, 3., 'refined'), POINTS)
    assert s['dominated_by'] == 'C' and s['text'].startswith('dominated by C')
    # (0.5, 20): more accurate than any filter → no gain, not dominated
    s = compare_to_front(pt('R', .5, 20., 'refined'), POINTS)
    assert math.isnan(s['gain']) and 'not dominated' in s['text']


def test_best_on_front_rule():
    # raw NME 2 → NME <= 2.04: A, B on the front → lowest NMF: B
    assert best_on_front(POINTS, 2.)['label'] == 'B'
    # raw NME 2.95 → NME <= 3.009: C qualifies
    assert best_on_front(POINTS, 2.95)['label'] == 'C'
    # D (2.5, 6) is not on the front, so never "best"
    assert best_on_front(POINTS[3:4] + POINTS[:1], 2.6)['label'] == 'D'
    assert best_on_front(POINTS, 0.5) is None


def test_scenario_summary_rows():
    points = [pt('raw', 2., 8., 'raw'), pt('refined', 2., 4., 'refined'),
              pt('OneEuro a', 2., 6., 'OneEuro'),
              pt('OneEuro b', 3., 1., 'OneEuro'),
              pt('Kalman a', 2.02, 5., 'Kalman'),
              pt('SavGol', 2., 1., 'SavitzkyGolay', causal=False)]
    s = scenario_summary(points)
    assert list(s['rows']) == ['raw', 'best OneEuro', 'best Kalman',
                               'refined']
    assert s['rows']['best OneEuro']['label'] == 'OneEuro a'
    assert s['rows']['best Kalman']['label'] == 'Kalman a'  # 2.02 <= 2.04
    # causal front: raw (2, 8) and OneEuro a (2, 6) share NME 2 → OneEuro a
    # and Kalman a (2.02, 5), OneEuro b (3, 1); at NME 2 → 6, gain 1 − 4/6;
    # the offline SavGol (2, 1) dominates the refiner but is no causal filter
    assert s['standing']['gain'] == pytest.approx(1 / 3)
    assert s['standing']['dominated_by'] is None


# ParetoSweep on one video: GT constant, landmarks (0, 0) and (256, 64),
# s = 0.5, d = |(256, 64)| = 263.87876 (keypoint_indices (0, 1)).
GT = np.tile(np.array([[0., 0.], [256., 64.]]), (3, 1, 1))
RAW = GT.copy()
RAW[1:, 0, 0] += 4.  # landmark 0 jumps by 4 px in x at frame 1 and stays
# raw: e_x = 0, 4, 4 → NMJ_1 = 800, NMJ_2 = 0 → RMS_k 565.685, 0 →
#   NMF = sqrt(565.685² / 2) = 400; NME_t = 0, 2/d, 2/d → 0.0050523;
#   AVar: landmark 0 (16 + 0) / (2·2) = 4, landmark 1 0 → MAV 2 = MAV_err.
# EMA α = 0.5: e_x = 0, 2, 3 → NMJ 400, 200 → NMF = sqrt((400²/2 +
#   200²/2) / 2) = sqrt(50000) = 223.60680; NME_t = 0, 1/d, 1.5/d →
#   0.0031577; AVar landmark 0: (4 + 1)/4 = 1.25 → MAV 0.625.
# refined = GT: NME 0, NMF 0.
D = math.sqrt(69632.)


def sweep_samples(scenario='moving_jittered'):
    out = []
    for t in range(3):
        out.append(dict(
            video_id='v', frame_id=t, scenario=scenario,
            pred_instances=dict(keypoints=GT[t][None],
                                raw_keypoints=RAW[t][None]),
            gt_instances=dict(keypoints=GT[t][None],
                              keypoints_visible=np.ones((1, 2)))))
    return out


def test_pareto_sweep_hand_values(tmp_path):
    out = tmp_path / 'pareto.json'
    metric = METRICS.build(dict(
        type='ParetoSweep', extra_pred_keys=dict(Raw='raw_keypoints'),
        keypoint_indices=(0, 1), out_file=str(out),
        grids=dict(EMA=[dict(type='EMAFilter', alpha=0.5)],
                   Gaussian=[dict(type='GaussianFilter', window_size=None,
                                  sigma=1.)])))
    assert isinstance(metric, ParetoSweep)
    metric.process(None, sweep_samples())
    res = metric.evaluate(3)
    assert res['pareto/raw/NMF'] == pytest.approx(400.)
    assert res['pareto/raw/NME'] == pytest.approx(4 / 3 / D)
    assert res['pareto/raw/MAV'] == pytest.approx(2.)
    assert res['pareto/raw/MAV_err'] == pytest.approx(2.)
    assert res['pareto/best_EMA/NMF'] == pytest.approx(223.60680)
    assert res['pareto/best_EMA/NME'] == pytest.approx(2.5 / 3 / D)
    assert res['pareto/best_EMA/MAV'] == pytest.approx(0.625)
    assert res['pareto/moving_jittered/refined/NMF'] == pytest.approx(0.)
    # the refiner (NME 0) is more accurate than every causal filter
    assert math.isnan(res['pareto/refined_vs_causal_front'])
    labels = [p['label'] for p in metric.points['moving_jittered']]
    assert labels == ['raw', 'refined', 'EMA alpha=0.5', 'Gaussian sigma=1']
    gauss = metric.points['all'][3]
    assert gauss['family'] == 'Gaussian' and gauss['causal'] is False
    saved = json.loads(out.read_text())
    assert set(saved) == {'points', 'summaries'}
    assert saved['summaries']['moving_jittered']['rows']['raw']['NMF'] == \
        pytest.approx(400.)


def test_pareto_sweep_needs_the_raw_prediction():
    with pytest.raises(ValueError, match="output_raw=True"):
        ParetoSweep(keypoint_indices=(0, 1))


def test_report_plot_and_config_helper(tmp_path):
    from mmengine.config import Config

    from mmstable.evaluation import add_pareto_sweep, format_report
    from mmstable.visualization import plot_pareto
    metric = ParetoSweep(extra_pred_keys=dict(Raw='raw_keypoints'),
                         keypoint_indices=(0, 1),
                         grids=dict(EMA=[dict(type='EMAFilter', alpha=0.5)]))
    metric.process(None, sweep_samples())
    metric.evaluate(3)
    text = format_report(metric.summaries)
    assert 'NME <= raw NME x 1.02' in text  # the rule is stated
    lines = text.splitlines()
    row = next(line for line in lines if 'best EMA (alpha=0.5)' in line)
    assert '223.6 (-44%)' in row  # 223.6 / 400 − 1 = −44 %
    assert any(line.startswith('moving_jittered') for line in lines)
    png = plot_pareto(metric.points, str(tmp_path / 'p.png'),
                      metric.summaries)
    assert (tmp_path / 'p.png').stat().st_size > 1000 and png.endswith('png')

    cfg = Config(dict(
        model=dict(type='StableTopdownPoseEstimator', test_cfg=dict()),
        test_evaluator=[dict(type='NMF')]))
    add_pareto_sweep(cfg, out_file='x.json')
    assert [m['type'] for m in cfg.test_evaluator] == ['NMF', 'ParetoSweep']
    assert cfg.test_evaluator[1]['out_file'] == 'x.json'
    assert cfg.model.test_cfg.output_raw is True
    add_pareto_sweep(cfg, only=True)  # reuses the sweep that is there
    assert [m['type'] for m in cfg.test_evaluator] == ['ParetoSweep']
    with pytest.raises(ValueError, match='StableTopdownPoseEstimator'):
        add_pareto_sweep(Config(dict(model=dict(type='TopdownPoseEstimator'),
                                     test_evaluator=[])))


def test_claim_checks():
    from mmstable.evaluation.pareto import claim_checks
    causal = [pt('raw', 2., 8., 'raw'), pt('K', 2., 5., 'Kalman'),
              pt('K2', 3., 2., 'Kalman')]
    summaries = {
        # refined (2, 3.5): front 5 at NME 2 → gain 0.3 → goal met
        'moving_jittered': scenario_summary(
            causal + [pt('refined', 2., 3.5, 'refined')]),
        # refined (2.05, 4.9): NME +2.5 % (fails the NME check); front at
        # 2.05 = 5 − 3·0.05 = 4.85 → gain 1 − 4.9/4.85 < 0; K (2, 5) does
        # not dominate (5 > 4.9)
        'fast_jittered': scenario_summary(
            causal + [pt('refined', 2.05, 4.9, 'refined')]),
        # refined (2, 6) dominated by K (2, 5)
        'still_exact': scenario_summary(
            causal + [pt('refined', 2., 6., 'refined')]),
    }
    lines = claim_checks(summaries)
    assert lines[0].startswith('PASS moving_jittered: refined not dominated')
    assert lines[2].startswith('PASS moving_jittered: refined NMF 30.0% '
                               'below') and lines[2].endswith(': met)')
    assert lines[4].startswith('FAIL fast_jittered: refined NME 2.05')
    assert lines[5].startswith('FAIL fast_jittered: refined NMF 1.0% above')
    assert lines[5].endswith('not met)')
    assert lines[6].startswith('FAIL still_exact: refined not dominated')
    assert len(lines) == 8  # no NMF-gain check on an exact-box scenario


def test_float_noise_is_a_tie_not_dominance():
    # an untrained refiner returns raw up to float noise: not dominated
    s = compare_to_front(pt('R', 2., 5.000001, 'refined'),
                         [pt('raw', 2., 5., 'raw')])
    assert s['dominated_by'] is None
    s = compare_to_front(pt('R', 2., 5.01, 'refined'),
                         [pt('raw', 2., 5., 'raw')])
    assert s['dominated_by'] == 'raw'


def test_plot_title_states_the_sign_of_the_gain(tmp_path, monkeypatch):
    # gain = 1 − NMF / front NMF: 0.12 is 12 % *less* flicker than the front.
    import copy

    from matplotlib.axes import Axes

    from mmstable.visualization import plot_pareto
    metric = ParetoSweep(extra_pred_keys=dict(Raw='raw_keypoints'),
                         keypoint_indices=(0, 1),
                         grids=dict(EMA=[dict(type='EMAFilter', alpha=0.5)]))
    metric.process(None, sweep_samples())
    metric.evaluate(3)
    titles = []
    real_set_title = Axes.set_title
    monkeypatch.setattr(Axes, 'set_title', lambda self, text, *a, **k: (
        titles.append(text), real_set_title(self, text, *a, **k))[1])
    for gain, word in ((0.12, '12% below'), (-0.3, '30% above')):
        summaries = copy.deepcopy(metric.summaries)
        for s in summaries.values():
            s['standing'] = dict(gain=gain, dominated_by=None)
        titles.clear()
        plot_pareto(metric.points, str(tmp_path / 'p.png'), summaries,
                    scenarios=['moving_jittered'])
        assert titles == [f'moving_jittered\nrefined NMF {word} causal front']
