"""TrajectoryPlotHook (tools/test.py --plots) on hand-made test outputs: the
figures' lines carry exactly the landmarks handed to the hook, in frame
order, and the PNGs are real drawings (not blank)."""
import os.path as osp
from types import SimpleNamespace

import numpy as np
import pytest
from matplotlib.image import imread
from mmengine.logging import MMLogger
from mmengine.structures import InstanceData

from mmpose.registry import HOOKS
from mmpose.structures import PoseDataSample


def _sample(video, frame, kpts, raw, gt):
    ds = PoseDataSample(metainfo=dict(video_id=video, frame_id=frame))
    ds.pred_instances = InstanceData(keypoints=kpts[None],
                                     raw_keypoints=raw[None])
    ds.gt_instances = InstanceData(keypoints=gt[None])
    return ds


@pytest.fixture
def figures(monkeypatch):
    """Every Figure the plotting functions save, in order (they still
    write their PNGs)."""
    from mmstable.visualization import stability_plots
    saved, save = [], stability_plots._save

    def record(fig, out_png):
        saved.append((fig, out_png))
        return save(fig, out_png)

    monkeypatch.setattr(stability_plots, '_save', record)
    return saved


def _lines(ax):
    return {ln.get_label(): (ln.get_xdata(), ln.get_ydata())
            for ln in ax.get_lines()}


def _not_blank(path):
    img = imread(str(path))
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    # white background plus drawn lines/text: many distinct grey levels
    grey = img[..., :3].mean(-1)
    assert (grey < 0.5).mean() > 0.005, 'almost nothing drawn'
    assert (grey > 0.95).mean() > 0.5, 'no background'


def test_writes_trajectory_and_allan_plots(tmp_path, figures):
    hook = HOOKS.build(dict(type='TrajectoryPlotHook',
                            out_dir=str(tmp_path), max_videos=1))
    rng = np.random.default_rng(0)
    gt = rng.uniform(0, 100, (68, 2))
    given = {}
    hook.before_test(None)
    # two videos, frames handed over out of order as ranks interleave them
    for frame in (2, 0, 1, 3):
        outs = []
        for v in ('a', 'b'):
            refined = gt + rng.normal(0, .1, gt.shape)
            raw = gt + rng.normal(0, 1, gt.shape)
            given[v, frame] = dict(refined=refined, raw=raw)
            outs.append(_sample(v, frame, refined, raw, gt))
        hook.after_test_iter(None, 0, outputs=outs)
    assert len(hook.records) == 8
    runner = SimpleNamespace(rank=0,
                             logger=MMLogger.get_instance('plot_hook_test'))
    metrics = {'ADEV@1': .1, 'ADEV@2': .07, 'Raw/ADEV@1': 1., 'Raw/ADEV@2': .7,
               'S1/ADEV@1': 5., 'MAV': .01}
    hook.after_test_epoch(runner, metrics)
    assert not (tmp_path / 'trajectories_b.png').exists()  # max_videos=1
    assert [osp.basename(p) for _, p in figures] == [
        'trajectories_a.png', 'allan_deviation.png']

    # trajectories of video a: rows = landmarks 36, 45, 30, 48; cols = x, y
    fig = figures[0][0]
    axes = fig.get_axes()
    assert len(axes) == 8
    for row, k in enumerate((36, 45, 30, 48)):
        for col in (0, 1):
            ax = axes[2 * row + col]
            assert ax.get_ylabel() == f'landmark {k} {"xy"[col]} (px)'
            lines = _lines(ax)
            # + the default filter (One Euro) applied to raw
            assert set(lines) == {'GT', 'raw', hook.filter[0], 'refined'}
            for label, (x, y) in lines.items():
                np.testing.assert_array_equal(x, [0, 1, 2, 3])  # sorted
                if label == hook.filter[0]:
                    assert len(y) == 4 and np.isfinite(y).all()
                    continue
                if label == 'GT':
                    expected = [gt[k, col]] * 4
                else:
                    expected = [given['a', f][label][k, col]
                                for f in range(4)]
                np.testing.assert_allclose(y, expected, rtol=1e-6,
                                           err_msg=label)
    assert fig._suptitle.get_text() == 'a'
    _not_blank(tmp_path / 'trajectories_a.png')

    # Allan deviation: log-log, one line per source, scenario keys left out
    ax = figures[1][0].get_axes()[0]
    assert ax.get_xscale() == 'log' and ax.get_yscale() == 'log'
    lines = _lines(ax)
    assert set(lines) == {'refined', 'Raw'}
    np.testing.assert_array_equal(lines['Raw'][0], [1, 2])
    np.testing.assert_allclose(lines['Raw'][1], [1., .7])
    np.testing.assert_allclose(lines['refined'][1], [.1, .07])
    _not_blank(tmp_path / 'allan_deviation.png')
    assert hook.records == []
