"""Smoke check: build MMPose's WFLW HRNetV2 face model through mmstable and run
one forward pass on CPU (no download: random weights)."""
import os.path as osp
import sys
import time

import torch
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
import mmstable  # noqa: E402,F401


def main():
    from mmpose.registry import MODELS
    t0 = time.time()
    cfg = Config.fromfile(osp.join(ROOT, 'tests', 'data', 'tiny_wflw_hrnet.py'))
    model = MODELS.build(cfg.model).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 256, 256), None, mode='tensor')
    print(f'smoke: {cfg.model.type} + {cfg.model.backbone.type} heatmaps '
          f'{tuple(out.shape)} in {time.time() - t0:.1f}s')
    assert tuple(out.shape) == (1, 98, 64, 64)


if __name__ == '__main__':
    main()
