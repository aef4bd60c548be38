"""Stable face landmarks on a video, a camera or a folder of frames.

Reads frames with OpenCV, finds faces (OpenCV's bundled Haar cascade by
default, offline; an MMDetection detector with ``--det-config``; boxes from
``--bbox-file``; or ``--full-frame``), runs the model frame by frame through
:class:`mmstable.apis.StableFaceTracker` and writes to ``--out-dir``:

- ``<name>.mp4``: the frames with landmarks drawn (``--side-by-side``: raw
  | stabilised, raw being the frozen model's output for an mmstable model, or
  the unfiltered output of a plain MMPose model run with ``--filter``);
- ``<name>.json``: per frame, the faces (track id, box, landmarks, scores,
  raw landmarks); a frame without a face has ``"missing": true``;
- ``<name>_stability.png``: landmark trajectories of the longest track and
  the per-landmark Allan variance (MAV, docs/conventions.md §4) of raw vs
  stabilised.

No output overwrites an input: an ``--out-dir`` where ``<name>.mp4`` /
``.json`` / ``_stability.png`` would replace the video, the box file, the
config or the checkpoint (symlinks and hard links included), or inside a
folder of frames, is refused before anything is written.

Exit codes (expected failures print one line ``demo_video.py: error: ...``
naming the file and the fix, no traceback):

- 0: done;
- 1: an input cannot be used (missing, unreadable, empty, corrupt or unsafe
  video / config / checkpoint / box file; a checkpoint that does not fit the
  model; an output would overwrite an input): found before anything is
  written, except an invalid face box found mid-run (outside its image in a
  folder of images, or from a detector; see ``--invalid-boxes``), which
  stops the run at that frame;
- 2: bad command line (missing ``--checkpoint``, bad option values);
- 3: incomplete: some frames could not be read (a truncated or damaged
  video, unreadable images in a folder). The outputs cover the frames read;
  stderr and the JSON (``unread_frames``, ``first_unread_frame``) say how
  many were lost and from which index.

Usage::

    python tools/demo_video.py VIDEO_OR_CAMERA_INDEX_OR_FOLDER \\
        [--config CONFIG --checkpoint CKPT] --out-dir OUT [--side-by-side]

Without ``--config`` it runs the default real-face model that ``make demo``
builds (``configs/demo/real_jitter.py`` + ``work_dirs/demo/real_refiner``:
an image model trained on real-textured faces, issue 11, and the refiner on
top); until it is built it says so and exits 2. ``--gt-file`` (a landmark
JSON as ``tools/dataset_converters/make_real_face_clip.py`` writes) scores
the stabilised and the raw landmarks against known ones (NME, NMF).
"""
import argparse
import json
import os
import os.path as osp
import sys
import tempfile
import time
from typing import List, Optional, Tuple

# FFmpeg's own messages about a damaged file ("overread 8", ...) would
# interleave with the tool's one-line report of it (exit code 3)
os.environ.setdefault('OPENCV_FFMPEG_LOGLEVEL', '-8')  # AV_LOG_QUIET

import cv2  # noqa: E402
import numpy as np  # noqa: E402

RAW_COLOR, STABLE_COLOR = (0, 0, 255), (0, 255, 0)  # BGR
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INCOMPLETE = 0, 1, 2, 3


class UsageError(Exception):
    """A bad command line (exit code 2)."""


class _Parser(argparse.ArgumentParser):

    def error(self, message):  # one line instead of usage + message
        raise UsageError(message)


def parse_args(argv=None):
    parser = _Parser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        'source', help='video file, camera index (e.g. 0) or a folder of '
        'frames (sorted by name)')
    parser.add_argument(
        '--config', help='model config (default: the real-face model '
        'make demo builds, with its checkpoint)')
    parser.add_argument('--checkpoint',
                        help='model weights (required with --config)')
    parser.add_argument(
        '--random-weights', action='store_true',
        help='run without --checkpoint, on random weights (debugging only: '
        'the landmarks are meaningless)')
    parser.add_argument(
        '--allow-partial-load', action='store_true',
        help='load a checkpoint that does not fit the model anyway (weights '
        'that do not fit stay random; debugging only)')
    parser.add_argument('--out-dir', required=True)
    parser.add_argument('--device', default=None,
                        help='default: cuda:0 if available, else cpu')
    parser.add_argument('--side-by-side', action='store_true',
                        help='draw raw | stabilised side by side')
    parser.add_argument(
        '--filter', default=None,
        help='online filter per track: a preset name (mediapipe_face, '
        'mmpose0x_one_euro) or a config dict, e.g. '
        '"dict(type=\'OneEuroFilter\', min_cutoff=0.01)"; the baseline for '
        'a plain MMPose model')
    boxes = parser.add_mutually_exclusive_group()
    boxes.add_argument(
        '--bbox-file', help='JSON face boxes instead of a detector: a list '
        'with one entry per frame, or a dict frame index -> entry; an entry '
        'is a list of [x1, y1, x2, y2(, score)] in pixels; frames without '
        'an entry have no face')
    boxes.add_argument('--full-frame', action='store_true',
                       help='no detector: the whole frame is the face box')
    boxes.add_argument('--det-config', help='MMDetection detector config')
    parser.add_argument('--det-checkpoint', help='MMDetection weights')
    parser.add_argument('--det-score-thr', type=float, default=0.5)
    parser.add_argument('--det-cat-id', type=int, nargs='+', default=[0],
                        help='labels of the detector that are faces')
    parser.add_argument('--track-by', choices=['bbox', 'landmarks'],
                        default='bbox', help='association / crop rule of '
                        'StableFaceTracker')
    parser.add_argument('--iou-thr', type=float, default=0.3)
    parser.add_argument('--max-faces', type=int, default=None)
    parser.add_argument(
        '--invalid-boxes', choices=['error', 'skip'], default='error',
        help='a face box with NaN, inverted, of zero area or outside its '
        'frame: stop with an error naming it (default), or skip it with a '
        'warning naming it')
    parser.add_argument('--max-frames', type=int, default=None,
                        help='stop after this many frames (cameras)')
    parser.add_argument('--fps', type=float, default=None,
                        help='frame rate of the output video (default: the '
                        'source\'s, 30 for cameras and folders)')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch CPU threads (ONNX Runtime\'s for an '
                        '.onnx --config)')
    parser.add_argument(
        '--realtime', action='store_true',
        help='real-time loop (mmstable.deploy.RealtimeFaceLoop): the next '
        'crop from the current landmarks (--track-by landmarks), the '
        'detector only to start tracks and when a track\'s score drops, a '
        'video file played as a camera at its fps with late frames dropped; '
        'prints fps and latency, writes the JSON of the processed frames '
        '(no video, no plot)')
    parser.add_argument('--show', action='store_true',
                        help='--realtime: a live window (needs a display)')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='--realtime: re-detect when a track\'s mean '
                        'landmark score drops below this')
    parser.add_argument(
        '--gt-file', help='known landmarks of the video (make_real_face_'
        'clip.py\'s JSON): print NME and NMF of stabilised and raw, and '
        'add them to the output JSON ("ground_truth")')
    args = parser.parse_args(argv)
    if args.config is None:
        if args.checkpoint is not None or args.random_weights:
            raise UsageError('--checkpoint / --random-weights need --config')
        from mmstable.apis import default_face_model
        try:
            args.config, args.checkpoint = default_face_model()
        except FileNotFoundError as e:
            raise UsageError(str(e)) from e
    if args.config.endswith('.onnx'):
        # an exported model (tools/deploy/export_onnx.py) has its weights
        if args.checkpoint is not None or args.random_weights:
            raise UsageError('--config is an exported .onnx model: it takes '
                             'no --checkpoint / --random-weights')
    elif args.checkpoint is None and not args.random_weights:
        raise UsageError('no --checkpoint: pass the model weights with '
                         '--checkpoint CKPT (or --random-weights to debug '
                         'on random weights)')
    if args.checkpoint is not None and args.random_weights:
        raise UsageError('--checkpoint and --random-weights exclude each '
                         'other')
    for name in ('max_faces', 'max_frames', 'threads'):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(f'--{name.replace("_", "-")} must be >= 1, got '
                             f'{value}')
    if args.fps is not None and not 0 < args.fps < 1000:
        raise UsageError(f'--fps must be in (0, 1000), got {args.fps}')
    if not 0 <= args.iou_thr < 1:
        raise UsageError(f'--iou-thr must be in [0, 1), got {args.iou_thr}')
    if args.gt_file and args.realtime:
        raise UsageError('--gt-file scores every frame; --realtime drops late '
                         'frames: run without --realtime to score')
    if args.det_checkpoint and not args.det_config:
        raise UsageError('--det-checkpoint needs --det-config')
    try:
        args.filter = parse_filter(args.filter)
    except ValueError as e:
        raise UsageError(str(e)) from e
    return args


# ------------------------------------------------------------------- input
def load_bbox_file(path: str):
    """Frame index -> (N, 4 or 5) float32 boxes; every error names ``path``
    and the frame. Boxes with NaN/inf, inverted or zero-area are refused
    here; a box outside its frame is refused by the tracker."""
    from mmstable.apis.image_input import check_boxes
    if not osp.isfile(path):
        raise FileNotFoundError(f'--bbox-file {path}: no such file')
    try:
        with open(path, encoding='utf-8') as f:
            data = json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f'--bbox-file {path}: not valid JSON ({e})') from e
    fmt = ('expected a list (one entry per frame) or a dict frame index -> '
           'boxes, each entry a list of [x1, y1, x2, y2(, score)]')
    if isinstance(data, list):
        items = list(enumerate(data))
    elif isinstance(data, dict):
        try:
            items = [(int(k), v) for k, v in data.items()]
        except ValueError as e:
            raise ValueError(f'--bbox-file {path}: a key is not a frame '
                             f'index ({e}); {fmt}') from e
    else:
        raise ValueError(f'--bbox-file {path}: {fmt}')
    boxes = {}
    for i, entry in items:
        where = f'--bbox-file {path}: frame {i}'
        try:
            arr = np.asarray(entry if entry else [], np.float32)
        except (TypeError, ValueError) as e:
            raise ValueError(f'{where}: {fmt} ({e})') from e
        if arr.ndim == 1 and arr.size in (4, 5):
            arr = arr[None]
        if arr.size and (arr.ndim != 2 or arr.shape[1] not in (4, 5)):
            raise ValueError(f'{where}: boxes must be [[x1, y1, x2, y2(, '
                             f'score)], ...], got shape {arr.shape}')
        arr = arr.reshape(-1, arr.shape[-1] if arr.size else 4)
        check_boxes(arr, None, where)  # the frame size is not known yet
        boxes[i] = arr
    return boxes


def parse_filter(text: Optional[str]):
    """A preset name, ``dict(type='OneEuroFilter', ...)`` or a JSON-like
    ``{...}``; literals only (never evaluated as code)."""
    if text is None or not text.lstrip().startswith(('dict(', '{')):
        return text
    from mmstable.utils import parse_dict_option
    try:
        return parse_dict_option(text, '--filter')
    except ValueError as e:
        raise ValueError(f'--filter {text!r}: expected a preset name or '
                         f"dict(type='OneEuroFilter', ...) ({e})") from e


def build_detector(args):
    if args.full_frame or args.bbox_file:
        return None
    from mmstable.apis import HaarFaceDetector, MMDetFaceDetector
    if args.det_config:
        if not osp.isfile(args.det_config):
            raise FileNotFoundError(f'--det-config {args.det_config}: no such'
                                    ' file')
        try:
            return MMDetFaceDetector(args.det_config, args.det_checkpoint,
                                     device=args.device or 'cpu',
                                     score_thr=args.det_score_thr,
                                     cat_ids=args.det_cat_id)
        except ImportError as e:
            raise ValueError(f'--det-config: {_one_line(e)}') from e
    return HaarFaceDetector()


def check_filter(spec) -> None:
    """Build ``--filter`` once, so that a bad one is a usage error (exit 2)
    before the model loads; the tracker builds one per track."""
    if spec is None:
        return
    from mmstable.evaluation.filters import build_filter
    try:
        name, filt = build_filter(spec)
    except (KeyError, TypeError, ValueError) as e:
        raise UsageError(f'--filter {spec!r}: {_one_line(e)}') from e
    if not filt.online:
        raise UsageError(f'--filter {spec!r}: {name} is offline (needs the '
                         'whole track); pass an online filter such as '
                         'mediapipe_face or OneEuroFilter')


# ------------------------------------------------------------------ output
def draw(frame: np.ndarray, results, which: str, label: str) -> np.ndarray:
    img = frame.copy()
    radius = max(1, round(min(img.shape[:2]) / 200))
    color = RAW_COLOR if which == 'raw' else STABLE_COLOR
    for r in results:
        kpts = r.raw_keypoints if which == 'raw' else r.keypoints
        x1, y1, x2, y2 = (int(round(v)) for v in r.bbox)
        cv2.rectangle(img, (x1, y1), (x2, y2), (255, 128, 0), 1)
        cv2.putText(img, f'#{r.track_id}', (x1, max(y1 - 3, 10)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 128, 0), 1)
        if kpts is None:
            continue
        for x, y in np.asarray(kpts):
            if np.isfinite(x) and np.isfinite(y):
                cv2.circle(img, (int(round(x)), int(round(y))), radius, color,
                           -1, cv2.LINE_AA)
    text = label if results else f'{label}: no face'
    cv2.putText(img, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                (255, 255, 255), 1, cv2.LINE_AA)
    return img


def _round(a, nd=3):
    return None if a is None else np.round(np.asarray(a, float), nd).tolist()


def frame_record(index: int, frame: np.ndarray, results) -> dict:
    return dict(
        frame_id=index,
        width=int(frame.shape[1]),
        height=int(frame.shape[0]),
        missing=not results,
        faces=[
            dict(track_id=int(r.track_id), track_frame=int(r.track_frame),
                 bbox=_round(r.bbox), keypoints=_round(r.keypoints),
                 scores=_round(r.scores, 4),
                 raw_keypoints=_round(r.raw_keypoints)) for r in results
        ])


def longest_track(records: List[dict]) -> Tuple[Optional[int], dict]:
    """Track id with the most frames, and its series ``raw`` / ``stabilised``
    (T, K, 2) with the frame ids."""
    tracks = {}
    for rec in records:
        for face in rec['faces']:
            tracks.setdefault(face['track_id'], []).append(
                (rec['frame_id'], face))
    if not tracks:
        return None, {}
    tid = max(tracks, key=lambda k: (len(tracks[k]), -k))
    faces = tracks[tid]
    series = dict(stabilised=np.array([f['keypoints'] for _, f in faces]))
    if all(f['raw_keypoints'] is not None for _, f in faces):
        series = dict(raw=np.array([f['raw_keypoints'] for _, f in faces]),
                      **series)
    return tid, dict(series=series,
                     frame_ids=np.array([i for i, _ in faces]))


def plot_stability(records: List[dict], out_png: str) -> dict:
    """Trajectories (mmstable's ``plot_trajectories``) above the
    per-landmark Allan variance of the longest track; returns its MAV per
    series."""
    with tempfile.TemporaryDirectory() as tmp:
        return _plot_stability(records, out_png, tmp)


def _plot_stability(records: List[dict], out_png: str, tmp: str) -> dict:
    """:func:`plot_stability`, its two panels drawn in folder ``tmp``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from mmstable.evaluation.functional import allan_variance
    from mmstable.visualization import plot_trajectories

    tid, track = longest_track(records)
    fig = Figure(figsize=(10, 3))
    ax = fig.subplots()
    mav = {}
    if tid is None or len(track['frame_ids']) < 2:
        ax.text(0.5, 0.5, 'no track with 2 frames or more: no stability '
                'plot', ha='center', va='center')
        ax.set_axis_off()
        traj = None
    else:
        series = track['series']
        width = 0.8 / len(series)
        for i, (name, s) in enumerate(series.items()):
            avar = allan_variance(s, tau=1)
            mav[name] = float(np.nanmean(avar))
            ax.bar(np.arange(len(avar)) + (i - (len(series) - 1) / 2) * width,
                   avar, width, label=f'{name} (MAV {mav[name]:.3g} px²)')
        ax.set_xlabel('landmark')
        ax.set_ylabel('Allan variance τ=1 (px²)')
        ax.set_title(f'track #{tid}: {len(track["frame_ids"])} frames')
        ax.legend(fontsize='small')
        traj = osp.join(tmp, 'trajectories.png')
        plot_trajectories(series, traj, frame_ids=track['frame_ids'],
                          title=f'track #{tid}')
    fig.tight_layout()
    FigureCanvasAgg(fig)
    bars = osp.join(tmp, 'mav.png')
    fig.savefig(bars, dpi=100)
    parts = [cv2.imread(p) for p in (traj, bars) if p is not None]
    width = max(p.shape[1] for p in parts)
    parts = [
        cv2.copyMakeBorder(p, 0, 0, 0, width - p.shape[1],
                           cv2.BORDER_CONSTANT, value=(255, 255, 255))
        for p in parts
    ]
    cv2.imwrite(out_png, np.concatenate(parts, axis=0))
    return mav


# -------------------------------------------------------------------- main
def output_paths(out_dir: str, name: str) -> Tuple[str, str, str]:
    """The video, JSON and plot the demo writes for source ``name``."""
    return (osp.join(out_dir, f'{name}.mp4'), osp.join(out_dir,
                                                       f'{name}.json'),
            osp.join(out_dir, f'{name}_stability.png'))


def check_input_files(args) -> None:
    """Every input file given exists and is a file (URLs of checkpoints
    excepted: MMEngine downloads them)."""
    for flag in ('config', 'checkpoint', 'bbox_file', 'det_config',
                 'det_checkpoint', 'gt_file'):
        path = getattr(args, flag)
        if path is None or '://' in path:
            continue
        name = '--' + flag.replace('_', '-')
        if not osp.exists(path):
            raise FileNotFoundError(f'{name} {path}: no such file')
        if not osp.isfile(path):
            raise ValueError(f'{name} {path}: a folder, expected a file')


def load_model(args):
    """``init_model`` with one-line errors naming the file to fix."""
    from mmengine.config import Config

    from mmstable.apis import init_model
    from mmstable.utils.checkpoint import (CheckpointError,
                                           CheckpointMismatchError)
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'--config {args.config}: no such file; pass '
                                'a model config (.py)')
    if args.config.endswith('.onnx'):
        return init_model(args.config, onnx_threads=args.threads)
    try:
        cfg = Config.fromfile(args.config)
    except Exception as e:  # syntax errors, bad _base_, ...
        raise ValueError(f'--config {args.config}: cannot read the config: '
                         f'{_one_line(e)}') from e
    try:
        return init_model(cfg, args.checkpoint, device=args.device,
                          allow_partial_load=args.allow_partial_load or None)
    except CheckpointMismatchError as e:
        raise ValueError(
            f'--checkpoint {args.checkpoint}: {_one_line(e)} (here: '
            '--allow-partial-load)') from e
    except CheckpointError as e:  # names the file and the fix
        raise ValueError(f'--checkpoint: {_one_line(e)}') from e
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ValueError(
            f'--config {args.config}: cannot build the model '
            f'({type(e).__name__}: {_one_line(e)}); fix the config') from e


def _one_line(error: BaseException) -> str:
    text = error.args[0] if isinstance(error, KeyError) and error.args \
        else error  # str(KeyError) is the repr of its message
    text = ' '.join(str(text).split())
    return text or type(error).__name__


def main(argv=None) -> dict:
    """Run the demo; returns the output paths, frame count, fps and the
    frames that could not be read (``unread_frames``,
    ``first_unread_frame``)."""
    args = parse_args(argv)
    import torch
    from mmengine.utils import ProgressBar

    from mmstable.apis import FrameSource, StableFaceTracker
    from mmstable.apis.image_input import check_boxes
    from mmstable.utils.safe_paths import check_no_overwrite
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device is not None:
        try:
            device = torch.device(args.device)
        except RuntimeError as e:
            raise UsageError(f'--device {args.device}: {_one_line(e)}') from e
        if device.type == 'cuda' and not torch.cuda.is_available():
            raise UsageError(f'--device {args.device}: CUDA is not available '
                             'here; pass --device cpu')

    source = FrameSource(args.source)  # fails early on a bad source
    check_input_files(args)
    out_video, out_json, out_png = output_paths(args.out_dir, source.name)
    # before anything is created or written (issue 12, item 2)
    check_no_overwrite(
        {'output video': out_video, 'output JSON': out_json,
         'output plot': out_png},
        {'source': None if source.is_camera else args.source,
         '--bbox-file': args.bbox_file, '--config': args.config,
         '--checkpoint': args.checkpoint, '--det-config': args.det_config,
         '--det-checkpoint': args.det_checkpoint,
         '--gt-file': args.gt_file},
        hint='pass another --out-dir')
    bbox_file = load_bbox_file(args.bbox_file) if args.bbox_file else None
    gt_track = None
    if args.gt_file:
        from mmstable.evaluation import load_ground_truth_track
        gt_track = load_ground_truth_track(args.gt_file)
    if bbox_file and source.frame_size and args.invalid_boxes == 'error':
        # a video has one size: boxes outside it are refused before anything
        # is written (a folder's images are checked frame by frame)
        for index, boxes in bbox_file.items():
            check_boxes(boxes, source.frame_size,
                        f'--bbox-file {args.bbox_file}: frame {index}')
    check_filter(args.filter)
    model = load_model(args)
    if args.realtime:
        return run_realtime(args, source, model, bbox_file, out_json)
    tracker = StableFaceTracker(
        model, detector=build_detector(args), filter=args.filter,
        iou_thr=args.iou_thr, track_by=args.track_by,
        max_faces=args.max_faces, invalid_boxes=args.invalid_boxes)

    try:
        os.makedirs(args.out_dir, exist_ok=True)
    except OSError as e:
        raise OSError(f'--out-dir {args.out_dir}: cannot create it '
                      f'({e.strerror})') from e
    fps_out = args.fps or source.fps or 30.
    total = source.num_frames
    if args.max_frames:
        total = min(total, args.max_frames) if total else args.max_frames
    progress = ProgressBar(total) if total else None

    records, writer, size, num_read = [], None, None, 0
    start = time.perf_counter()
    try:
        for index, frame in source:
            if args.max_frames and index >= args.max_frames:
                break
            if frame is None:  # an unreadable image: its tracks end here
                tracker.reset()
                continue
            num_read += 1
            if args.full_frame:
                boxes = None  # the tracker uses the whole frame
            elif bbox_file is not None:
                boxes = bbox_file.get(index, np.zeros((0, 4), np.float32))
            else:
                boxes = None  # the tracker asks the detector
            try:
                results = tracker.update(frame, boxes)
            except ValueError as e:
                if bbox_file is None:
                    raise
                raise ValueError(f'--bbox-file {args.bbox_file}: {e}') from e
            records.append(frame_record(index, frame, results))

            canvas = draw(frame, results, 'stable', 'stabilised')
            if args.side_by_side:
                canvas = np.concatenate(
                    [draw(frame, results, 'raw', 'raw'), canvas], axis=1)
            if writer is None:
                size = canvas.shape[1::-1]
                writer = cv2.VideoWriter(out_video,
                                         cv2.VideoWriter_fourcc(*'mp4v'),
                                         fps_out, size)
                if not writer.isOpened():
                    raise OSError(f'cannot write video {out_video}; check '
                                  '--out-dir')
            if canvas.shape[1::-1] != size:
                # one video has one size: later frames of another resolution
                # are scaled to the first (the JSON keeps the real size)
                canvas = cv2.resize(canvas, size)
            writer.write(canvas)
            if progress is not None:
                progress.update()
    finally:
        source.close()
        if writer is not None:
            writer.release()
    elapsed = time.perf_counter() - start
    if not records:
        raise ValueError(f'{args.source}: no frames could be read (empty '
                         'video, or no readable image)')
    unread, first_unread = source.unread(num_read, args.max_frames)
    scores = None
    if gt_track is not None:
        from mmstable.evaluation import score_against_ground_truth
        read = {r['frame_id'] for r in records}
        scores = score_against_ground_truth(
            records, {t: k for t, k in gt_track.items() if t in read})

    with open(out_json, 'w') as f:
        json.dump(
            dict(source=args.source, config=args.config,
                 checkpoint=args.checkpoint, num_frames=len(records),
                 unread_frames=unread, first_unread_frame=first_unread,
                 **({} if scores is None else dict(ground_truth=scores)),
                 frames=records), f)
    mav = plot_stability(records, out_png)
    fps = len(records) / max(elapsed, 1e-9)
    print(f'\n{len(records)} frames in {elapsed:.2f} s: {fps:.2f} fps '
          f'(detection, landmarks, drawing); missing face in '
          f'{sum(r["missing"] for r in records)} frames')
    if mav:
        print('MAV of the longest track: ' +
              ', '.join(f'{k} {v:.4g} px²' for k, v in mav.items()))
    if scores is not None:
        print(f'against {args.gt_file} ({scores["frames"]} frames, face '
              f'missed in {scores["missed"]}): ' + '; '.join(
                  f'{name} NME {scores["NME"][name]:.2f} % (outer eye '
                  f'corners), NMF {scores["NMF"][name]:.1f}'
                  for name in scores['NME']))
    print(f'wrote {out_video}, {out_json}, {out_png}')
    return dict(video=out_video, json=out_json, png=out_png,
                num_frames=len(records), fps=fps, mav=mav, scores=scores,
                unread_frames=unread, first_unread_frame=first_unread,
                source=args.source)


def run_realtime(args, source, model, bbox_file, out_json) -> dict:
    """``--realtime``: :class:`mmstable.deploy.RealtimeFaceLoop` over the
    source; prints fps and latency, writes the processed frames' JSON."""
    from mmstable.apis import StableFaceTracker
    from mmstable.deploy import RealtimeFaceLoop
    detector = build_detector(args)
    current = {'index': 0}
    if bbox_file is not None:
        def detector(frame):  # noqa: F811
            return bbox_file.get(current['index'], np.zeros((0, 4)))
    elif args.full_frame:
        def detector(frame):  # noqa: F811
            h, w = frame.shape[:2]
            return np.array([[0, 0, w, h]], np.float32)
    tracker = StableFaceTracker(
        model, filter=args.filter, iou_thr=args.iou_thr,
        track_by='landmarks', max_faces=args.max_faces,
        invalid_boxes=args.invalid_boxes)
    loop = RealtimeFaceLoop(tracker, detector, score_thr=args.score_thr)
    show = args.show and _has_display()
    if args.show and not show:
        print('demo_video.py: --show: no display here; running without a '
              'window', file=sys.stderr)
    records = []

    def frames():
        for index, frame in source:
            current['index'] = index
            yield index, frame

    def on_result(index, frame, results):
        records.append(frame_record(index, frame, results))
        if show:
            cv2.imshow('mmstable', draw(frame, results, 'stable', 'stable'))
            cv2.waitKey(1)

    os.makedirs(args.out_dir, exist_ok=True)
    try:
        # a camera delivers in real time already; a file is played at its fps
        stats = loop.run(frames(), fps=None if source.is_camera else
                         (args.fps or source.fps or 30.),
                         on_result=on_result, max_frames=args.max_frames)
    finally:
        source.close()
        if show:
            cv2.destroyAllWindows()
    with open(out_json, 'w') as f:
        json.dump(dict(source=args.source, config=args.config,
                       checkpoint=args.checkpoint, realtime=True,
                       num_frames=len(records), dropped=stats.dropped,
                       detector_runs=stats.detector_runs, frames=records), f)
    print(f'realtime: {stats.summary()}')
    print(f'wrote {out_json}')
    return dict(json=out_json, num_frames=len(records), fps=stats.fps,
                dropped=stats.dropped, detector_runs=stats.detector_runs,
                latency_median_ms=stats.latency_ms(0.5),
                latency_p95_ms=stats.latency_ms(0.95), unread_frames=0,
                first_unread_frame=None, source=args.source)


def _has_display() -> bool:
    return bool(os.environ.get('DISPLAY') or os.environ.get('WAYLAND_DISPLAY')
                or sys.platform in ('darwin', 'win32'))


def cli(argv=None) -> int:
    """:func:`main` with the exit codes of the module docstring; expected
    failures print one line on stderr, no traceback."""
    prog = 'demo_video.py'
    try:
        out = main(argv)
    except UsageError as e:
        print(f'{prog}: error: {e} (see --help)', file=sys.stderr)
        return EXIT_USAGE
    except (OSError, ValueError) as e:  # incl. FileNotFoundError
        print(f'{prog}: error: {_one_line(e)}', file=sys.stderr)
        return EXIT_ERROR
    if out['unread_frames']:
        expected = out['num_frames'] + out['unread_frames']
        print(f'{prog}: error: {out["source"]}: {out["unread_frames"]} of '
              f'its {expected} frames could not be read, the first at index '
              f'{out["first_unread_frame"]} (a truncated or damaged file?); '
              f'the outputs cover the {out["num_frames"]} frames read',
              file=sys.stderr)
        return EXIT_INCOMPLETE
    return EXIT_OK


if __name__ == '__main__':
    sys.exit(cli())
