"""TrajectoryPlotHook (tools/test.py --plots) on hand-made test outputs."""
from types import SimpleNamespace

import numpy as np
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


def test_writes_trajectory_and_allan_plots(tmp_path):
    hook = HOOKS.build(dict(type='TrajectoryPlotHook',
                            out_dir=str(tmp_path), max_videos=1))
    rng = np.random.default_rng(0)
    gt = rng.uniform(0, 100, (68, 2))
    hook.before_test(None)
    # two videos, frames handed over out of order as ranks interleave them
    for frame in (2, 0, 1, 3):
        outs = [
            _sample(v, frame, gt + rng.normal(0, .1, gt.shape),
                    gt + rng.normal(0, 1, gt.shape), gt) for v in ('a', 'b')
        ]
        hook.after_test_iter(None, 0, outputs=outs)
    assert len(hook.records) == 8
    runner = SimpleNamespace(rank=0,
                             logger=MMLogger.get_instance('plot_hook_test'))
    metrics = {'ADEV@1': .1, 'ADEV@2': .07, 'Raw/ADEV@1': 1., 'Raw/ADEV@2': .7,
               'S1/ADEV@1': 5., 'MAV': .01}
    hook.after_test_epoch(runner, metrics)
    assert (tmp_path / 'trajectories_a.png').stat().st_size > 0
    assert not (tmp_path / 'trajectories_b.png').exists()  # max_videos=1
    assert (tmp_path / 'allan_deviation.png').stat().st_size > 0
    curves = hook._allan_curves(metrics)
    assert set(curves) == {'refined', 'Raw'}  # scenario keys left out
    np.testing.assert_array_equal(curves['Raw'][0], [1, 2])
    np.testing.assert_allclose(curves['Raw'][1], [1., .7])
    assert hook.records == []
