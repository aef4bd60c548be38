"""Does an exported model track like its torch original? (issue 13's
acceptance: ≤ 1e-3 px over a 100-frame clip with the state carried.)"""
from typing import Dict, Sequence

import numpy as np

__all__ = ['track_agreement', 'synthetic_clip']


def synthetic_clip(num_frames: int = 100,
                   image_size: int = 192,
                   seed: int = 0,
                   box_jitter: float = 0.03,
                   faces: int = 1):
    """A synthetic face video and per-frame face boxes: the landmark box
    with its centre and size jittered (σ = ``box_jitter`` × face size, as a
    detector's), so the crop moves and the refiner's state is warped every
    frame. ``faces=2`` adds a second box (shifted by 10 % of the face) per
    frame: two tracks, stepped as a batch of 2.

    Returns:
        tuple: frames (F, H, W, 3) uint8 BGR and boxes (F, faces, 4) xyxy.
    """
    from mmstable.datasets.synthetic import FaceVideoGenerator
    video = FaceVideoGenerator(image_size=image_size).generate(
        seed, num_frames)
    rng = np.random.default_rng(seed)
    lo, hi = video.keypoints.min(1), video.keypoints.max(1)
    centre, size = (lo + hi) / 2, (hi - lo).max(1, keepdims=True)
    boxes = []
    for f in range(faces):
        c = centre + rng.normal(0, box_jitter, centre.shape) * size + \
            0.1 * f * size
        s = size * (1 + rng.normal(0, box_jitter, size.shape))
        boxes.append(np.concatenate([c - s / 2, c + s / 2], 1))
    return video.frames, np.stack(boxes, 1).astype(np.float32)


def track_agreement(reference,
                    candidate,
                    frames: Sequence[np.ndarray],
                    boxes: Sequence[np.ndarray],
                    track_by: str = 'bbox') -> Dict[str, float]:
    """Run both models through :class:`~mmstable.apis.StableFaceTracker`
    on the same frames and boxes; the largest differences (image pixels)
    of the landmarks and of the raw landmarks, and the frames compared.

    Args:
        reference, candidate: models for the tracker (torch from
            :func:`~mmstable.apis.init_model`, or an
            :class:`~mmstable.deploy.OnnxTopdownModel`).
        frames: (H, W, 3) uint8 BGR images.
        boxes: per frame, (N, 4) face boxes.
        track_by (str): as the tracker's.
    """
    from mmstable.apis import StableFaceTracker
    trackers = [
        StableFaceTracker(m, track_by=track_by)
        for m in (reference, candidate)
    ]
    worst = dict(keypoints=0., raw_keypoints=0., frames=0)
    for frame, box in zip(frames, boxes):
        a, b = (t.update(frame, box) for t in trackers)
        if len(a) != len(b):
            raise AssertionError(f'{len(a)} vs {len(b)} faces')
        for ra, rb in zip(a, b):
            worst['keypoints'] = max(
                worst['keypoints'],
                float(np.abs(ra.keypoints - rb.keypoints).max()))
            if ra.raw_keypoints is not None and rb.raw_keypoints is not None:
                worst['raw_keypoints'] = max(
                    worst['raw_keypoints'],
                    float(np.abs(ra.raw_keypoints - rb.raw_keypoints).max()))
        worst['frames'] += 1
    return worst
