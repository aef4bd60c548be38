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

from .functional import (frame_nme, interocular_distance, lag_frames,
                         motion_split, nmf)

__all__ = [
    'WHY_ROWS', 'box_jitter_table', 'format_box_jitter_table',
    'moving_head_lag', 'format_moving_head_lag'
]

#: landmark groups of the 68-point (300W) layout, for :func:`moving_head_lag`
GROUPS_68 = (('jaw', range(0, 17)), ('brows', range(17, 27)),
             ('nose', range(27, 36)), ('eyes', range(36, 48)),
             ('mouth', range(48, 68)))

#: (label, generator motion, box centre jitter σ in px)
WHY_ROWS: Tuple[Tuple[str, float, float], ...] = (
    ('still head (motion 0), exact box', 0., 0.),
    ('still head, box centre jittered σ = 2 px', 0., 2.),
    ('still head, box centre jittered σ = 4 px', 0., 4.),
    ('moving head (motion 1), exact box', 1., 0.),
)


def _stream(model, video, boxes, reset_every_frame: bool = False):
    """Refined and raw landmarks (T, K, 2) of a video streamed through
    :class:`mmstable.apis.StableFaceTracker` with the given boxes."""
    from mmstable.apis import StableFaceTracker  # apis imports evaluation
    tracker = StableFaceTracker(model, track_by='bbox', output_raw=True)
    refined, raw = [], []
    for frame, box in zip(video.frames, boxes):
        if reset_every_frame:
            model.head.reset_state()
        res = tracker.update(frame, box[None].astype(np.float32))[0]
        refined.append(res.keypoints)
        raw.append(res.raw_keypoints if res.raw_keypoints is not None
                   else res.keypoints)
    tracker.reset()
    return (np.asarray(refined, np.float64), np.asarray(raw, np.float64))


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
        refined, raw = _stream(model, video, boxes)
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


def moving_head_lag(model,
                    key: Tuple[int, ...] = (777, 5, 0),
                    num_frames: int = 120,
                    noise: float = 1.,
                    motion: float = 1.) -> List[dict]:
    """Where the refiner's extra error on the "Why" table's moving head
    (exact boxes) comes from.

    The video is streamed twice: as a stream (the refiner's state carried)
    and with the state reset before every frame (no memory: what the
    refiner does to a single frame). Per run: NME raw / refined (% of the
    outer-eye-corner distance), the refined track's lag behind raw
    (:func:`~mmstable.evaluation.functional.lag_frames`, frames) on the
    ground truth's rigid and non-rigid motion
    (:func:`~mmstable.evaluation.functional.motion_split`), and, for the
    68-point layout, refined − raw NME per landmark group.

    Returns:
        list[dict]: one dict per run: ``label``, ``NME raw``, ``NME
        refined``, ``lag rigid``, ``lag non-rigid``, ``groups``
        (name -> refined - raw NME), ``speed rigid`` / ``speed non-rigid``
        (mean GT motion per frame, % of the eye-corner distance).
    """
    from mmstable.datasets.synthetic import FaceVideoGenerator

    video = FaceVideoGenerator(noise=noise, motion=motion).generate(
        key, num_frames)
    gt = video.keypoints.astype(np.float64)
    boxes = _square_boxes(gt)
    rigid, non_rigid = motion_split(gt)
    norm = interocular_distance(gt, (36, 45))
    mask = np.ones(gt.shape[:2], bool)
    groups = GROUPS_68 if gt.shape[1] == 68 else ()
    out = []
    for label, reset in (('streamed', False),
                         ('state reset every frame', True)):
        refined, raw = _stream(model, video, boxes, reset_every_frame=reset)
        err_ref = np.linalg.norm(refined - gt, axis=-1) / norm[:, None]
        err_raw = np.linalg.norm(raw - gt, axis=-1) / norm[:, None]
        out.append({
            'label': label,
            'NME raw': 100. * float(np.mean(frame_nme(raw, gt, mask, norm))),
            'NME refined': 100. * float(
                np.mean(frame_nme(refined, gt, mask, norm))),
            'lag rigid': lag_frames(refined, raw, rigid),
            'lag non-rigid': lag_frames(refined, raw, non_rigid),
            'groups': {
                name: 100. * float(err_ref[:, list(idx)].mean() -
                                   err_raw[:, list(idx)].mean())
                for name, idx in groups
            },
            'speed rigid': 100. * float(np.mean(
                np.linalg.norm(rigid, axis=-1) / norm[1:, None])),
            'speed non-rigid': 100. * float(np.mean(
                np.linalg.norm(non_rigid, axis=-1) / norm[1:, None])),
        })
    return out


def format_moving_head_lag(rows: List[dict]) -> str:
    """Markdown table of :func:`moving_head_lag`."""
    names = list(rows[0]['groups']) if rows else []
    lines = [
        '| run | NME raw | NME refined | lag, rigid motion (frames) | '
        'lag, non-rigid motion (frames) | ' +
        ''.join(f'{n} | ' for n in names),
        '|---|---|---|---|---|' + '---|' * len(names)
    ]
    for r in rows:
        lines.append(
            f'| {r["label"]} | {r["NME raw"]:.3f} | {r["NME refined"]:.3f} '
            f'| {r["lag rigid"]:.2f} | {r["lag non-rigid"]:.2f} | ' +
            ''.join(f'{r["groups"][n]:+.3f} | ' for n in names))
    if rows:
        lines.append(
            f'\nGT motion per frame, % of the eye-corner distance: rigid '
            f'{rows[0]["speed rigid"]:.2f}, non-rigid '
            f'{rows[0]["speed non-rigid"]:.2f}; group columns: refined - '
            'raw NME (points of %).')
    return '\n'.join(lines)
