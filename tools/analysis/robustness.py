"""Stability under synthetic noise and blur (paper §4.4, fig. 8).

The same clips are degraded at each level — additive Gaussian noise of
standard deviation σ (8-bit intensity units) or a Gaussian blur of kernel
size k (OpenCV's sigma for that k) — and every method sees exactly the same
degraded frames (the noise is seeded per level and clip). For each level and
method the tool reports MCV, MAV (and NME where the clips have ground truth):
raw (the frozen image model), raw + test-time filters, refined (the model
with the ConvLSTM head). The paper uses 30 DDD segments with small face
motion and gives no level values; :data:`DEFAULT_LEVELS` is our choice.

Core (testable without a model): :func:`run_robustness` with
``predict_fn(frames, clip) -> (T, K, 2)`` callables.

Example::

    python tools/analysis/robustness.py DATA_CONFIG \\
        --raw CONFIG CHECKPOINT --refined CONFIG CHECKPOINT \\
        --filters mediapipe_face mmpose0x_one_euro --num-videos 30 \\
        --out-dir work_dirs/robustness
"""
import argparse
import csv
import json
import os
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence

import cv2
import numpy as np

#: name, additive noise σ (0-255 units), blur kernel size (0 = none).
DEFAULT_LEVELS = (
    dict(name='clean'),
    dict(name='noise σ=5', noise_sigma=5.),
    dict(name='noise σ=10', noise_sigma=10.),
    dict(name='noise σ=20', noise_sigma=20.),
    dict(name='noise σ=40', noise_sigma=40.),
    dict(name='blur k=5', blur_ksize=5),
    dict(name='blur k=9', blur_ksize=9),
    dict(name='blur k=15', blur_ksize=15),
    dict(name='blur k=25', blur_ksize=25),
)

PredictFn = Callable[[List[np.ndarray], dict], np.ndarray]


def degrade(frames: Sequence[np.ndarray],
            noise_sigma: float = 0.,
            blur_ksize: int = 0,
            seed: int = 0) -> List[np.ndarray]:
    """Blur (optics) then add noise (sensor) to every frame.

    Args:
        frames: T images (H, W[, C]) uint8.
        noise_sigma (float): Std of additive Gaussian noise, 0-255 units.
        blur_ksize (int): Odd Gaussian kernel size; < 2 means no blur.
        seed (int): Noise seed.

    Returns:
        list[np.ndarray]: T uint8 images.
    """
    if blur_ksize > 1 and blur_ksize % 2 == 0:
        raise ValueError(f'blur_ksize must be odd, got {blur_ksize}')
    rng = np.random.default_rng(seed)
    out = []
    for img in frames:
        x = np.asarray(img).astype(np.float32)
        if blur_ksize > 1:
            x = cv2.GaussianBlur(x, (blur_ksize, blur_ksize), 0)
        if noise_sigma > 0:
            x = x + rng.normal(0., noise_sigma, x.shape).astype(np.float32)
        out.append(np.clip(np.rint(x), 0, 255).astype(np.uint8))
    return out


def _samples(clip: dict, pred: np.ndarray) -> List[dict]:
    """Per-frame data samples as an MMEngine evaluator hands them."""
    T = pred.shape[0]
    frame_ids = clip.get('frame_ids', range(T))
    out = []
    for t, fid in zip(range(T), frame_ids):
        sample = dict(
            video_id=clip['video_id'],
            frame_id=int(fid),
            pred_instances=dict(keypoints=pred[t][None]))
        if clip.get('scenario') is not None:
            sample['scenario'] = clip['scenario']
        if clip.get('gt') is not None:
            gt = np.asarray(clip['gt'])[t]
            sample['gt_instances'] = dict(
                keypoints=gt[None],
                keypoints_visible=np.ones((1, gt.shape[0]), np.float32))
        out.append(sample)
    return out


def run_robustness(clips: Sequence[dict],
                   predictors: Dict[str, PredictFn],
                   levels: Sequence[dict] = DEFAULT_LEVELS,
                   filters: Sequence = ('mediapipe_face', ),
                   filter_source: Optional[str] = None,
                   nme_keypoint_indices: Sequence[int] = (36, 45),
                   seed: int = 0) -> List[dict]:
    """Degrade → predict → MCV / MAV / NME table (one row per level, method).

    Args:
        clips: dicts with ``video_id``, ``frames`` (T uint8 images) and
            optional ``gt`` (T, K, 2), ``frame_ids``, ``bboxes`` (T, 4) xyxy,
            ``scenario``.
        predictors: method name -> ``predict_fn(frames, clip)`` returning
            (T, K, 2) image-pixel landmarks, frames in order (it may read
            ``clip['bboxes']`` / ``clip['video_id']``).
        levels: dicts with ``name`` and optional ``noise_sigma``,
            ``blur_ksize``.
        filters: Test-time filters (presets / configs, see
            :class:`mmstable.evaluation.metrics.BaseVideoMetric`) applied to
            ``filter_source``'s predictions; rows ``'<source>+<filter>'``.
        filter_source: Method whose output is filtered; default the first.
        nme_keypoint_indices: NME normalisation pair (68-pt outer eye
            corners); NME is reported when every clip has ``gt``.
        seed (int): Base noise seed.

    Returns:
        list[dict]: rows with ``level``, ``noise_sigma``, ``blur_ksize``,
        ``method``, ``MCV``, ``MAV`` and ``NME`` (when ground truth exists).
    """
    from mmstable.evaluation.metrics import MAV, MCV, VideoNME
    if filter_source is None:
        filter_source = next(iter(predictors))
    with_gt = all(c.get('gt') is not None for c in clips)
    rows = []
    for li, level in enumerate(levels):
        noise = float(level.get('noise_sigma', 0.))
        ksize = int(level.get('blur_ksize', 0))
        degraded = [
            degrade(c['frames'], noise, ksize, seed=seed + 1000 * li + ci)
            for ci, c in enumerate(clips)
        ]
        for method, predict_fn in predictors.items():
            flt = list(filters) if method == filter_source else []
            metrics = [MCV(filters=flt), MAV(filters=flt)]
            if with_gt:
                metrics.append(
                    VideoNME(
                        filters=flt, keypoint_indices=nme_keypoint_indices))
            for clip, frames in zip(clips, degraded):
                pred = np.asarray(predict_fn(frames, clip), dtype=np.float64)
                samples = _samples(clip, pred)
                for m in metrics:
                    m.process(None, samples)
            results = {}
            for m in metrics:
                results.update(m.evaluate(len(m.results)))
            variants = [''] + [n for n, _ in metrics[0].filters]
            for variant in variants:
                row = dict(
                    level=level['name'],
                    noise_sigma=noise,
                    blur_ksize=ksize,
                    method=f'{method}+{variant}' if variant else method)
                for name in ('MCV', 'MAV', 'NME'):
                    key = f'{variant}/{name}' if variant else name
                    if key in results:
                        row[name] = results[key]
                rows.append(row)
    return rows


def write_table(rows: Sequence[dict], out_dir: str) -> Dict[str, str]:
    """Write ``robustness.csv``, ``robustness.json`` and
    ``robustness.png`` into ``out_dir``; returns their paths."""
    from mmstable.visualization import plot_robustness
    os.makedirs(out_dir, exist_ok=True)
    cols = list(dict.fromkeys(k for r in rows for k in r))
    paths = dict(
        csv=osp.join(out_dir, 'robustness.csv'),
        json=osp.join(out_dir, 'robustness.json'),
        png=osp.join(out_dir, 'robustness.png'))
    with open(paths['csv'], 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=cols)
        writer.writeheader()
        writer.writerows(rows)
    with open(paths['json'], 'w') as f:
        json.dump(list(rows), f, indent=1, ensure_ascii=False)
    plot_robustness(rows, paths['png'])
    return paths


# ------------------------------------------------------------ with a model
def make_model_predict_fn(config: str,
                          checkpoint: str,
                          device: str = 'cuda:0',
                          batch_size: int = 16) -> PredictFn:
    """A ``predict_fn`` running an MMPose top-down model frame by frame.

    Frames go through the model's test pipeline in order, in batches of
    ``batch_size`` consecutive frames carrying ``video_id`` / ``frame_id`` /
    ``clip_len=1`` (docs/conventions.md §1), so a recurrent head keeps its
    state along the clip and resets between clips. Each frame's box is
    ``clip['bboxes'][t]`` (xyxy) or the whole image.
    """
    import torch
    from mmengine.dataset import Compose, pseudo_collate
    from mmengine.registry import init_default_scope
    from mmpose.apis import init_model

    import mmstable  # noqa: F401  registers mmstable modules

    model = init_model(config, checkpoint, device=device)
    init_default_scope(model.cfg.get('default_scope', 'mmpose'))
    pipeline = Compose(model.cfg.test_dataloader.dataset.pipeline)

    def predict(frames: List[np.ndarray], clip: dict) -> np.ndarray:
        frame_ids = list(clip.get('frame_ids', range(len(frames))))
        infos = []
        for t, img in enumerate(frames):
            if clip.get('bboxes') is not None:
                bbox = np.asarray(clip['bboxes'][t], np.float32)[None]
            else:
                h, w = img.shape[:2]
                bbox = np.array([[0, 0, w, h]], np.float32)
            info = dict(
                img=img,
                bbox=bbox,
                bbox_score=np.ones(1, np.float32),
                video_id=clip['video_id'],
                frame_id=int(frame_ids[t]),
                clip_len=1)
            info.update(model.dataset_meta)
            infos.append(info)
        out = []
        for i in range(0, len(infos), batch_size):
            batch = pseudo_collate(
                [pipeline(x) for x in infos[i:i + batch_size]])
            with torch.no_grad():
                results = model.test_step(batch)
            out.extend(r.pred_instances.keypoints[0] for r in results)
        return np.stack(out)

    return predict


def load_clips(data_config: str,
               num_videos: Optional[int] = None,
               max_frames: Optional[int] = None) -> List[dict]:
    """Clips from a dataset config's ``test_dataloader.dataset``.

    Reads the annotations only (``get_data_info``; ``video_id`` and
    ``frame_id`` as docs/conventions.md §1), then loads each frame's image.
    """
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpose.registry import DATASETS

    import mmstable  # noqa: F401

    cfg = Config.fromfile(data_config)
    init_default_scope(cfg.get('default_scope', 'mmpose'))
    ds_cfg = cfg.test_dataloader.dataset.copy()
    ds_cfg['pipeline'] = []
    ds_cfg['test_mode'] = True
    dataset = DATASETS.build(ds_cfg)
    videos: Dict = {}
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        videos.setdefault(info['video_id'], []).append(info)
    clips = []
    for video_id, infos in list(videos.items())[:num_videos]:
        infos = sorted(infos, key=lambda x: x['frame_id'])[:max_frames]
        kpts = [x.get('keypoints') for x in infos]
        clips.append(
            dict(
                video_id=video_id,
                frame_ids=[int(x['frame_id']) for x in infos],
                frames=[cv2.imread(x['img_path']) for x in infos],
                bboxes=np.concatenate([x['bbox'] for x in infos]),
                gt=None if any(k is None for k in kpts) else
                np.concatenate(kpts)[..., :2],
                scenario=infos[0].get('scenario')))
    return clips


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('data_config', help='config whose '
                        'test_dataloader.dataset gives the clips')
    parser.add_argument('--raw', nargs=2, metavar=('CONFIG', 'CHECKPOINT'),
                        required=True, help='frozen image model')
    parser.add_argument('--refined', nargs=2,
                        metavar=('CONFIG', 'CHECKPOINT'),
                        help='model with the ConvLSTM refine head')
    parser.add_argument('--filters', nargs='*', default=['mediapipe_face'],
                        help='filter presets applied to the raw model')
    parser.add_argument('--num-videos', type=int, default=30)
    parser.add_argument('--max-frames', type=int, default=None)
    parser.add_argument('--device', default='cuda:0')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out-dir', default='work_dirs/robustness')
    return parser.parse_args()


def main():
    args = parse_args()
    clips = load_clips(args.data_config, args.num_videos, args.max_frames)
    predictors = dict(
        raw=make_model_predict_fn(*args.raw, device=args.device))
    if args.refined:
        predictors['refined'] = make_model_predict_fn(
            *args.refined, device=args.device)
    rows = run_robustness(
        clips, predictors, filters=args.filters, seed=args.seed)
    paths = write_table(rows, args.out_dir)
    for row in rows:
        print('  '.join(f'{k}={v:.4g}' if isinstance(v, float) else
                        f'{k}={v}' for k, v in row.items()))
    print('wrote', ', '.join(paths.values()))


if __name__ == '__main__':
    main()
