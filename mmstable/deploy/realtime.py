"""A real-time face tracking loop, MediaPipe-style (issue 13).

:class:`RealtimeFaceLoop` drives a :class:`~mmstable.apis.StableFaceTracker`
(``track_by='landmarks'``) so that the detector runs only to start tracks:

- the crop of the next frame comes from the current landmarks (the tracker's
  landmark box), given to the tracker as that frame's face boxes, so the
  detector is not called;
- the detector runs when there is no track, when a track's mean landmark
  score drops below ``score_thr`` (the face is lost or occluded), and every
  ``redetect_every`` frames if set (to pick up new faces);
- :meth:`run` takes frames as a camera delivers them (frame i arrives at
  ``i / fps`` after the first): a frame is dropped when the next one has
  already arrived by the time the loop is free (late), so the landmarks are
  never more than about a frame behind; ``fps=None`` processes every frame
  as fast as possible (throughput).

Reported (:class:`LoopStats`): frames processed and dropped, detector runs,
processed fps, and the latency of each processed frame (arrival → result).
"""
import time
from typing import Callable, Iterable, List, NamedTuple, Optional, Tuple

import numpy as np

__all__ = ['RealtimeFaceLoop', 'LoopStats']


class LoopStats(NamedTuple):
    processed: int
    dropped: int
    detector_runs: int
    seconds: float
    latencies: List[float]  # seconds, per processed frame

    @property
    def fps(self) -> float:
        return self.processed / max(self.seconds, 1e-9)

    def latency_ms(self, q: float) -> float:
        """Latency quantile ``q`` in [0, 1] (0.5: median), milliseconds."""
        if not self.latencies:
            return float('nan')
        return 1e3 * float(np.quantile(self.latencies, q))

    def summary(self) -> str:
        return (f'{self.processed} frames processed, {self.dropped} dropped '
                f'(late), {self.detector_runs} detector runs: '
                f'{self.fps:.1f} fps, latency median '
                f'{self.latency_ms(0.5):.1f} ms, p95 '
                f'{self.latency_ms(0.95):.1f} ms')


class RealtimeFaceLoop:
    """Detector only when needed, crop from the landmarks (module
    docstring).

    Args:
        tracker: a :class:`~mmstable.apis.StableFaceTracker` with
            ``track_by='landmarks'``.
        detector (callable): ``frame -> (N, 4 or 5)`` boxes.
        score_thr (float): re-detect when a track's mean keypoint score is
            below this.
        redetect_every (int, optional): also re-detect every this many
            frames.
    """

    def __init__(self,
                 tracker,
                 detector: Callable[[np.ndarray], np.ndarray],
                 score_thr: float = 0.3,
                 redetect_every: Optional[int] = None):
        if tracker.track_by != 'landmarks':
            raise ValueError(
                'RealtimeFaceLoop: expected a StableFaceTracker with '
                f"track_by='landmarks', found {tracker.track_by!r}: the next "
                'crop comes from the current landmarks.')
        if redetect_every is not None and redetect_every < 1:
            raise ValueError('RealtimeFaceLoop: redetect_every must be >= 1 '
                             f'or None, got {redetect_every}')
        self.tracker = tracker
        self.detector = detector
        self.score_thr = float(score_thr)
        self.redetect_every = redetect_every
        self.reset()

    def reset(self) -> None:
        self.tracker.reset()
        self._boxes: Optional[np.ndarray] = None  # next frame's crops
        self._since_detect = 0
        self.detector_runs = 0

    def step(self, frame: np.ndarray) -> list:
        """One frame: the tracker's results (``TrackResult`` per face)."""
        boxes = self._boxes
        if boxes is None or (self.redetect_every
                             and self._since_detect >= self.redetect_every):
            boxes = self.detector(frame)
            self.detector_runs += 1
            self._since_detect = 0
        self._since_detect += 1
        results = self.tracker.update(frame, boxes)
        h, w = frame.shape[:2]
        keep = [
            r for r in results if np.isfinite(r.keypoints).all()
            and float(np.mean(r.scores)) >= self.score_thr
        ]
        if not keep or len(keep) < len(results):
            self._boxes = None  # lost or weak: the detector runs next
        else:
            boxes = [_landmark_box(r.keypoints, w, h) for r in keep]
            self._boxes = None if any(b is None for b in boxes) else \
                np.stack(boxes)
        return results

    def run(self,
            frames: Iterable[Tuple[int, np.ndarray]],
            fps: Optional[float] = None,
            on_result: Optional[Callable] = None,
            max_frames: Optional[int] = None) -> LoopStats:
        """Process ``(index, frame)`` pairs as a camera delivers them at
        ``fps`` (late frames dropped), or all of them as fast as possible
        (``fps=None``). ``on_result(index, frame, results)`` is called per
        processed frame (drawing, a window); its time counts."""
        period = 1. / fps if fps else 0.
        latencies, processed, dropped = [], 0, 0
        start = time.perf_counter()
        for count, (index, frame) in enumerate(frames):
            if max_frames is not None and count >= max_frames:
                break
            arrival = count * period
            now = time.perf_counter() - start
            if fps and now >= arrival + period:
                dropped += 1  # the next frame is already there
                continue
            if fps and now < arrival:
                time.sleep(arrival - now)  # a camera cannot deliver early
            if frame is None:
                self.tracker.reset()
                self._boxes = None
                continue
            results = self.step(frame)
            if on_result is not None:
                on_result(index, frame, results)
            done = time.perf_counter() - start
            latencies.append(done - arrival if fps else done - now)
            processed += 1
        seconds = time.perf_counter() - start
        return LoopStats(processed, dropped, self.detector_runs, seconds,
                         latencies)


def _landmark_box(keypoints: np.ndarray, width: int,
                  height: int) -> Optional[np.ndarray]:
    """The landmarks' box (the tracker's next crop; it may reach outside
    the frame), ``None`` when it lies entirely outside the frame."""
    lo, hi = keypoints.min(0), keypoints.max(0)
    if hi[0] < 0 or hi[1] < 0 or lo[0] > width - 1 or lo[1] > height - 1 \
            or not (hi > lo).all():
        return None
    return np.concatenate([lo, hi]).astype(np.float32)
