"""tools/demo_video.py end to end on CPU (``main(argv)`` in-process) on
synthetic face videos, and its handling of bad input."""
import importlib.util
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest

from mmstable.apis import StableFaceTracker, init_model
from test_apis import landmark_boxes, synthetic_frames, write_tiny_model

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load_demo():
    spec = importlib.util.spec_from_file_location(
        'demo_video', osp.join(REPO, 'tools', 'demo_video.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


demo = load_demo()


def write_video(path, frames, fourcc='mp4v', fps=25):
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps,
                             (w, h))
    assert writer.isOpened()
    for f in frames:
        writer.write(f)
    writer.release()
    return str(path)


def read_video(path):
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


@pytest.fixture(scope='module')
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp('demo_models')
    return dict(stable=write_tiny_model(root, True),
                plain=write_tiny_model(root, False))


@pytest.fixture(scope='module')
def clip(tmp_path_factory):
    frames, kpts = synthetic_frames(12, size=96, seed=3)
    path = write_video(tmp_path_factory.mktemp('clip') / 'face.mp4', frames)
    return path, landmark_boxes(kpts)


def run(models, kind, source, out_dir, *extra):
    cfg, ckpt = models[kind]
    return demo.main([
        str(source), '--config', cfg, '--checkpoint', ckpt, '--out-dir',
        str(out_dir), '--device', 'cpu', *extra
    ])


def test_demo_end_to_end_side_by_side(models, clip, tmp_path, capsys):
    video, _ = clip
    out = run(models, 'stable', video, tmp_path, '--full-frame',
              '--side-by-side')
    frames = read_video(out['video'])
    assert len(frames) == 12
    assert frames[0].shape[:2] == (96, 192)  # raw | stabilised
    with open(out['json']) as f:
        data = json.load(f)
    assert data['num_frames'] == 12 and len(data['frames']) == 12
    assert [r['frame_id'] for r in data['frames']] == list(range(12))
    faces = [r['faces'] for r in data['frames']]
    assert all(len(f) == 1 and f[0]['track_id'] == 0 for f in faces)
    assert np.asarray(faces[0][0]['keypoints']).shape == (68, 2)
    assert faces[0][0]['raw_keypoints'] is not None
    assert osp.getsize(out['png']) > 0 and cv2.imread(out['png']) is not None
    assert set(out['mav']) == {'raw', 'stabilised'}
    assert 'fps' in capsys.readouterr().out


def test_demo_face_gap_resets_track(models, clip, tmp_path):
    video, boxes = clip
    gap = (4, 5, 6)
    entries = [[] if t in gap else [b.tolist()] for t, b in enumerate(boxes)]
    bbox_file = tmp_path / 'boxes.json'
    bbox_file.write_text(json.dumps(entries))
    out = run(models, 'stable', video, tmp_path / 'out', '--bbox-file',
              str(bbox_file))
    assert len(read_video(out['video'])) == 12
    with open(out['json']) as f:
        records = json.load(f)['frames']
    assert [r['missing'] for r in records] == [t in gap for t in range(12)]
    ids = [r['faces'][0]['track_id'] if r['faces'] else None for r in records]
    assert ids == [0] * 4 + [None] * 3 + [1] * 5
    assert records[7]['faces'][0]['track_frame'] == 0

    # after the gap: what a fresh tracker gives on the same decoded frames
    frames = read_video(video)
    tracker = StableFaceTracker(init_model(*models['stable'], device='cpu'))
    for t in range(7, 12):
        (res, ) = tracker.update(frames[t], boxes[t][None])
        np.testing.assert_allclose(
            records[t]['faces'][0]['keypoints'], res.keypoints, atol=2e-3)


def test_demo_plain_model_filter_and_haar(models, tmp_path):
    # the Haar cascade fires on the synthetic faces at 128 px
    frames, _ = synthetic_frames(6, size=128, seed=1)
    video = write_video(tmp_path / 'haar.avi', frames, 'MJPG')
    out = run(models, 'plain', video, tmp_path / 'out', '--side-by-side',
              '--filter', "dict(type='OneEuroFilter', min_cutoff=0.01)")
    with open(out['json']) as f:
        records = json.load(f)['frames']
    assert len(records) == 6
    assert sum(not r['missing'] for r in records) >= 4
    face = next(r['faces'][0] for r in records if r['faces'])
    assert face['raw_keypoints'] is not None  # unfiltered plain output
    assert len(read_video(out['video'])) == 6


def test_demo_resolution_change(models, tmp_path):
    small, _ = synthetic_frames(3, size=96, seed=4)
    large, _ = synthetic_frames(3, size=128, seed=4)
    folder = tmp_path / 'frames'
    folder.mkdir()
    for i, f in enumerate(list(small) + list(large)):
        cv2.imwrite(str(folder / f'{i:04d}.png'), f)
    out = run(models, 'stable', folder, tmp_path / 'out', '--full-frame')
    with open(out['json']) as f:
        records = json.load(f)['frames']
    assert [r['width'] for r in records] == [96] * 3 + [128] * 3
    assert [r['faces'][0]['track_id'] for r in records] == [0] * 3 + [1] * 3
    frames = read_video(out['video'])
    assert len(frames) == 6 and frames[-1].shape[:2] == (96, 96)


def test_demo_missing_unreadable_and_empty(models, tmp_path):
    missing = tmp_path / 'nope.mp4'
    with pytest.raises(FileNotFoundError, match='nope.mp4'):
        run(models, 'stable', missing, tmp_path / 'out')
    bad = tmp_path / 'bad.mp4'
    bad.write_text('not a video')
    with pytest.raises(OSError, match='bad.mp4'):
        run(models, 'stable', bad, tmp_path / 'out')
    empty = _empty_avi(tmp_path / 'empty.avi')
    with pytest.raises(ValueError, match='empty.avi.*no frames'):
        run(models, 'stable', empty, tmp_path / 'out')
    assert not osp.exists(tmp_path / 'out' / 'empty.mp4')
    os.mkdir(tmp_path / 'no_frames')
    with pytest.raises(ValueError, match='no_frames'):
        run(models, 'stable', tmp_path / 'no_frames', tmp_path / 'out')


def _empty_avi(path):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), 25,
                             (64, 64))
    writer.release()
    return str(path)


def test_bbox_file_formats(tmp_path):
    p = tmp_path / 'b.json'
    p.write_text(json.dumps({'2': [[1, 2, 30, 40]], '5': [1, 2, 3, 4, 0.9]}))
    boxes = demo.load_bbox_file(str(p))
    assert boxes[2].shape == (1, 4) and boxes[5].shape == (1, 5)
    p.write_text(json.dumps([[[1, 2, 3]]]))
    with pytest.raises(ValueError, match='b.json'):
        demo.load_bbox_file(str(p))
    assert demo.parse_filter('mediapipe_face') == 'mediapipe_face'
    assert demo.parse_filter("dict(type='OneEuroFilter', beta=1)") == dict(
        type='OneEuroFilter', beta=1)
    with pytest.raises(ValueError, match='--filter'):
        demo.parse_filter("dict(type=__import__('os'))")


# ------------------------------------------- outputs never overwrite inputs
def _sha(path):
    import hashlib
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_out_dir_of_the_video_is_refused_subprocess(models, tmp_path):
    """issue 12 item 2: ``--out-dir`` = the video's folder would write
    ``face.mp4`` over ``face.mp4``: refused before anything is written."""
    import subprocess
    import sys
    frames, _ = synthetic_frames(4, size=96, seed=5)
    video = write_video(tmp_path / 'face.mp4', frames)
    before, listing = _sha(video), sorted(os.listdir(tmp_path))
    cfg, ckpt = models['stable']
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'demo_video.py'), video,
         '--config', cfg, '--checkpoint', ckpt, '--out-dir', str(tmp_path),
         '--device', 'cpu', '--full-frame'],
        capture_output=True, text=True, timeout=120,
        env=dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore'))
    assert proc.returncode == 1, proc.stderr
    assert 'Traceback' not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert f'output video {tmp_path}/face.mp4' in lines[0]
    assert f'input source {video}' in lines[0] and '--out-dir' in lines[0]
    assert _sha(video) == before
    assert sorted(os.listdir(tmp_path)) == listing  # nothing written


def test_no_output_overwrites_any_input(models, tmp_path):
    frames, kpts = synthetic_frames(4, size=96, seed=5)
    src_dir = tmp_path / 'src'
    src_dir.mkdir()
    video = write_video(src_dir / 'face.mp4', frames)
    checksum = _sha(video)

    def refused(out_dir, *extra, source=video, match):
        with pytest.raises(ValueError, match=match):
            run(models, 'stable', source, out_dir, '--full-frame', *extra)

    # a symlink to the video's folder
    link = tmp_path / 'link'
    link.symlink_to(src_dir, target_is_directory=True)
    refused(link, match=rf'output video {link}/face.mp4: it is the same '
            rf'file as the input source {video}')
    # a hard link of the video where the output goes
    out = tmp_path / 'hard'
    out.mkdir()
    os.link(video, out / 'face.mp4')
    refused(out, match='same file as the input source')
    # the JSON output would overwrite the box file
    (src_dir / 'face.json').write_text(json.dumps([]))
    box_video = write_video(tmp_path / 'face.avi', frames, 'MJPG')
    with pytest.raises(ValueError, match=r'output JSON .*face.json: it is '
                       r'the same file as the input --bbox-file'):
        run(models, 'stable', box_video, src_dir, '--bbox-file',
            str(src_dir / 'face.json'))
    # a folder of frames: outputs inside it are refused
    folder = tmp_path / 'frames'
    folder.mkdir()
    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / f'{i:04d}.png'), f)
    refused(folder, source=folder, match=r'output video .*frames.mp4: it '
            'lies inside the input source')
    assert _sha(video) == checksum
    assert sorted(os.listdir(folder)) == [f'{i:04d}.png' for i in range(4)]
    # the video's folder under another name (a different video) is fine
    other = write_video(src_dir / 'other.avi', frames, 'MJPG')
    out = run(models, 'stable', other, src_dir, '--full-frame')
    assert out['video'] == str(src_dir / 'other.mp4')
    assert _sha(video) == checksum
