"""The single-video check of issue 10's "Why" table: one synthetic video,
crops from exact or centre-jittered boxes, streamed frame by frame.

Rows (:data:`WHY_ROWS`): a still head (motion 0) with the exact box, with the
box centre jittered by σ = 2 px and 4 px, and a moving head (motion 1) with
the exact box; generator seed key (777, 5, 0), 256² frames, noise 1, 120
frames. The exact box is the square around the ground-truth landmarks
(centre of their bounding box, side = its longer side); the test pipeline's
``GetBBoxCenterScale`` pads it by 1.25 as for every crop. Each frame goes
through :class:`mmstable.apis.StableFaceTracker` (``track_by='bbox'``, the
given box is the crop), so the refiner carries its state as when streaming.
NME is in % of the outer-eye-corner distance (landmarks 36 and 45, as the
issue's table), NMF is LDEQ's (:func:`mmstable.evaluation.functional.nmf`).
"""
from typing import List, Sequence, Tuple

import numpy as np

from .functional import frame_nme, interocular_distance, nmf

__all__ = ['WHY_ROWS', 'box_jitter_table', 'format_box_jitter_table']

#: (label, generator motion, box centre jitter σ in px)
WHY_ROWS: Tuple[Tuple[str, float, float], ...] = (
    ('still head (motion 0), exact box', 0., 0.),
    ('still head, box centre jittered σ = 2 px', 0., 2.),
    ('still head, box centre jittered σ = 4 px', 0., 4.),
    ('moving head (motion 1), exact box', 1., 0.),
)


def _square_boxes(kpts: np.ndarray) -> np.ndarray:
    lo, hi = kpts.min(1), kpts.max(1)
    centre, side = (lo + hi) / 2, (hi - lo).max(-1, keepdims=True)
    return np.concatenate([centre - side / 2, centre + side / 2], -1)


def box_jitter_table(model,
                     rows: Sequence[tuple] = WHY_ROWS,
                     key: Tuple[int, ...] = (777, 5, 0),
                     num_frames: int = 120,
                     noise: float = 1.,
                     seed: int = 0) -> List[dict]:
    """Measure the rows.

    Args:
        model (nn.Module): from :func:`mmstable.apis.init_model`.
        rows: ``(label, motion, sigma_px)`` per row.
        key: generator seed key of the video.
        num_frames (int): frames per video.
        noise (float): the generator's noise.
        seed (int): seed of the box jitter (one draw per row and frame).

    Returns:
        list[dict]: per row ``label``, ``NME raw``, ``NME refined`` (%),
        ``NMF raw``, ``NMF refined``.
    """
    from mmstable.apis import StableFaceTracker  # apis imports evaluation
    from mmstable.datasets.synthetic import FaceVideoGenerator

    out = []
    for r, (label, motion, sigma) in enumerate(rows):
        video = FaceVideoGenerator(noise=noise, motion=motion).generate(
            key, num_frames)
        gt = video.keypoints.astype(np.float64)
        boxes = _square_boxes(gt)
        if sigma > 0:
            shift = np.random.default_rng((seed, r)).normal(
                0., sigma, (len(gt), 2))
            boxes = boxes + np.concatenate([shift, shift], -1)
        tracker = StableFaceTracker(model, track_by='bbox', output_raw=True)
        refined, raw = [], []
        for frame, box in zip(video.frames, boxes):
            res = tracker.update(frame, box[None].astype(np.float32))[0]
            refined.append(res.keypoints)
            raw.append(res.raw_keypoints if res.raw_keypoints is not None
                       else res.keypoints)
        tracker.reset()
        mask = np.ones(gt.shape[:2], bool)
        norm = interocular_distance(gt, (36, 45))
        row = dict(label=label)
        for name, pred in (('raw', raw), ('refined', refined)):
            pred = np.asarray(pred, np.float64)
            row[f'NME {name}'] = 100. * float(
                np.nanmean(frame_nme(pred, gt, mask, norm)))
            row[f'NMF {name}'] = nmf(pred, gt)
        out.append(row)
    return out


def format_box_jitter_table(rows: List[dict]) -> str:
    """Markdown table, as in the issue (refined NME > raw + 2 % in bold,
    refined NMF >= raw in bold)."""
    lines = [
        '| video, boxes | NME raw | NME refined | NMF raw | NMF refined |',
        '|---|---|---|---|---|'
    ]
    for r in rows:
        nme = f'{r["NME refined"]:.2f}'
        if r['NME refined'] > r['NME raw'] * 1.02:
            nme = f'**{nme}**'
        flicker = f'{r["NMF refined"]:.1f}'
        if r['NMF refined'] >= r['NMF raw']:
            flicker = f'**{flicker}**'
        lines.append(f'| {r["label"]} | {r["NME raw"]:.2f} | {nme} | '
                     f'{r["NMF raw"]:.1f} | {flicker} |')
    return '\n'.join(lines)
