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


# ------------------------------------------- exit codes, one-line errors
def run_cli(capsys, *argv):
    """``demo.cli`` (what ``python tools/demo_video.py`` runs): the exit
    code and the tool's stderr, which must be one line and no traceback
    (libraries' Python warnings aside)."""
    import re
    code = demo.cli([str(a) for a in argv])
    err = capsys.readouterr().err
    assert 'Traceback' not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    tool = [ln for ln in lines if ln.startswith('demo_video.py:')]
    others = [ln for ln in lines if ln not in tool]
    assert len(tool) <= 1, err
    assert all(re.search(r'\w*Warning: ', ln) or ln.startswith(' ')
               for ln in others), err
    return code, tool[0] if tool else ''


def _noise_frames(n, size=48, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
            for _ in range(n)]


def test_truncated_video_reports_unread_frames(models, tmp_path, capsys):
    """issue 12 item 6: the AVI header says 24 frames, the file is cut in
    half: exit code 3, the count and the first unread index on stderr and
    in the JSON, outputs for the frames read."""
    path = write_video(tmp_path / 'cut.avi', _noise_frames(24), 'MJPG')
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])
    cap = cv2.VideoCapture(path)
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 24  # header intact
    cap.release()
    num_read = len(read_video(path))
    assert 0 < num_read < 24
    cfg, ckpt = models['plain']
    code, err = run_cli(capsys, path, '--config', cfg, '--checkpoint', ckpt,
                        '--out-dir', tmp_path / 'out', '--device', 'cpu',
                        '--full-frame')
    assert code == demo.EXIT_INCOMPLETE == 3
    assert err == (f'demo_video.py: error: {path}: {24 - num_read} of its 24 '
                   'frames could not be read, the first at index '
                   f'{num_read} (a truncated or damaged file?); the outputs '
                   f'cover the {num_read} frames read')
    with open(tmp_path / 'out' / 'cut.json') as f:
        data = json.load(f)
    assert (data['num_frames'], data['unread_frames'],
            data['first_unread_frame']) == (num_read, 24 - num_read, num_read)
    assert len(read_video(tmp_path / 'out' / 'cut.mp4')) == num_read
    # --max-frames below the cut: complete, exit 0
    code, err = run_cli(capsys, path, '--config', cfg, '--checkpoint', ckpt,
                        '--out-dir', tmp_path / 'out2', '--device', 'cpu',
                        '--full-frame', '--max-frames', num_read)
    assert (code, err) == (0, '')


def test_unreadable_image_in_folder(models, tmp_path, capsys):
    folder = tmp_path / 'frames'
    folder.mkdir()
    for i, f in enumerate(_noise_frames(5)):
        cv2.imwrite(str(folder / f'{i:04d}.png'), f)
    (folder / '0002.png').write_bytes(b'not a png')
    cfg, ckpt = models['plain']
    code, err = run_cli(capsys, folder, '--config', cfg, '--checkpoint', ckpt,
                        '--out-dir', tmp_path / 'out', '--device', 'cpu',
                        '--full-frame')
    assert code == 3 and '1 of its 5 frames could not be read, the first ' \
        'at index 2' in err
    with open(tmp_path / 'out' / 'frames.json') as f:
        records = json.load(f)['frames']
    assert [r['frame_id'] for r in records] == [0, 1, 3, 4]
    # the tracks end at the unreadable frame
    assert [r['faces'][0]['track_id'] for r in records] == [0, 0, 1, 1]


def test_no_checkpoint_is_refused(models, clip, tmp_path, capsys):
    """issue 12 item 8: no silent random weights."""
    video, _ = clip
    cfg, _ = models['stable']
    code, err = run_cli(capsys, video, '--config', cfg, '--out-dir',
                        tmp_path / 'out', '--full-frame')
    assert code == demo.EXIT_USAGE == 2
    assert err == ('demo_video.py: error: no --checkpoint: pass the model '
                   'weights with --checkpoint CKPT (or --random-weights to '
                   'debug on random weights) (see --help)')
    assert not osp.exists(tmp_path / 'out')
    # the same through the command line (fails before the heavy imports)
    import subprocess
    import sys
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'demo_video.py'), video,
         '--config', cfg, '--out-dir', str(tmp_path / 'out')],
        capture_output=True, text=True, timeout=60,
        env=dict(os.environ, PYTHONWARNINGS='ignore'))
    assert (proc.returncode, proc.stderr.strip()) == (2, err)
    code, _ = run_cli(capsys, video, '--config', cfg, '--out-dir',
                      tmp_path / 'out', '--full-frame', '--random-weights',
                      '--max-frames', 2, '--device', 'cpu')
    assert code == 0 and osp.isfile(tmp_path / 'out' / 'face.json')


def _bad_files(tmp_path, models):
    """name -> (path, expected part of the message)."""
    cfg, _ = models['stable']
    files = {}
    empty = tmp_path / 'empty.pth'
    empty.write_bytes(b'')
    files['empty'] = (empty, 'empty or truncated')
    text = tmp_path / 'text.pth'
    text.write_text('hello, not a checkpoint\n')
    files['text'] = (text, 'not a PyTorch checkpoint')
    missing = tmp_path / 'missing.pth'
    files['missing'] = (missing, 'no such file')
    marker = tmp_path / 'PWNED'

    class Payload:

        def __reduce__(self):
            return (os.system, (f'touch {marker}', ))

    unsafe = tmp_path / 'unsafe.pth'
    import torch
    torch.save(dict(state_dict={}, meta=dict(x=Payload())), str(unsafe))
    files['unsafe'] = (unsafe, 'system')
    # 98 landmarks into the 68-landmark model (issue 12 item 3)
    other = tmp_path / 'k98.py'
    other.write_text(open(cfg).read().replace('out_channels=68',
                                              'out_channels=98'))
    from mmstable.apis import init_model
    model98 = init_model(str(other), device='cpu')
    k98 = tmp_path / 'k98.pth'
    torch.save(dict(state_dict=model98.state_dict()), str(k98))
    files['k98'] = (k98, 'head.base_head.final_layer')
    return files, marker


def test_bad_checkpoints_one_line_exit_1(models, clip, tmp_path, capsys):
    """issue 12 item 10: unsafe / corrupt / empty / missing checkpoint."""
    video, _ = clip
    cfg, _ = models['stable']
    files, marker = _bad_files(tmp_path, models)
    for name, (path, match) in files.items():
        code, err = run_cli(capsys, video, '--config', cfg, '--checkpoint',
                            path, '--out-dir', tmp_path / name, '--device',
                            'cpu', '--full-frame')
        assert code == 1, (name, err)
        assert err.startswith('demo_video.py: error: --checkpoint')
        assert str(path) in err and match in err, (name, err)
        assert not osp.exists(tmp_path / name), name  # nothing written
    assert not marker.exists()  # the payload did not run
    # a partial load on purpose
    code, err = run_cli(capsys, video, '--config', cfg, '--checkpoint',
                        files['k98'][0], '--out-dir', tmp_path / 'partial',
                        '--device', 'cpu', '--full-frame', '--max-frames', 2,
                        '--allow-partial-load')
    assert (code, err) == (0, '')


def test_bad_inputs_and_options(models, clip, tmp_path, capsys):
    video, boxes = clip
    cfg, ckpt = models['stable']
    base = ['--checkpoint', ckpt, '--device', 'cpu']
    syntax = tmp_path / 'syntax.py'
    syntax.write_text('model = dict(type=\n')
    unknown = tmp_path / 'unknown.py'
    unknown.write_text(open(cfg).read().replace(
        "type='ResNet'", "type='NoSuchBackbone'"))
    bad_json = tmp_path / 'bad.json'
    bad_json.write_text('[[1, 2')
    nan_box = tmp_path / 'nan.json'
    nan_box.write_text(json.dumps({'3': [[1, 2, 3, 4], [5, 6, 2, 8]]}))
    outside = tmp_path / 'outside.json'
    outside.write_text(json.dumps([[b.tolist()] for b in boxes[:2]] +
                                  [[[4900, 4900, 5000, 5000]]]))
    folder = tmp_path / 'frames'
    folder.mkdir()
    for i, f in enumerate(read_video(video)[:3]):
        cv2.imwrite(str(folder / f'{i:04d}.png'), f)
    cases = [
        # (argv, exit code, expected parts of the message)
        ([tmp_path / 'nope.mp4', '--config', cfg, '--full-frame'], 1,
         ['nope.mp4', 'no such video']),
        ([video, '--config', tmp_path / 'nope.py', '--full-frame'], 1,
         ['--config', 'nope.py', 'no such file']),
        ([video, '--config', syntax, '--full-frame'], 1,
         ['--config', 'syntax.py', 'cannot read the config']),
        ([video, '--config', unknown, '--full-frame'], 1,
         ['--config', 'unknown.py', 'cannot build the model',
          'NoSuchBackbone']),
        ([video, '--config', cfg, '--bbox-file', tmp_path / 'no.json'], 1,
         ['--bbox-file', 'no.json', 'no such file']),
        ([video, '--config', cfg, '--bbox-file', bad_json], 1,
         ['--bbox-file', 'bad.json', 'not valid JSON']),
        ([video, '--config', cfg, '--bbox-file', nan_box], 1,
         ['--bbox-file', 'nan.json', 'frame 3', 'box 1 [5, 6, 2, 8] is '
          'inverted']),
        ([video, '--config', cfg, '--bbox-file', outside], 1,
         ['--bbox-file', 'outside.json', 'frame 2', 'box 0 [4900, 4900, '
          '5000, 5000] lies entirely outside the image (image 96x96)']),
        # the same box in a folder of frames: found at that frame
        ([folder, '--config', cfg, '--bbox-file', outside], 1,
         ['--bbox-file', 'outside.json', 'update (frame 2)', 'box 0 [4900, '
          '4900, 5000, 5000] lies entirely outside the image (image 96x96)']),
        ([video, '--config', cfg, '--full-frame', '--iou-thr', '1.5'], 2,
         ['--iou-thr must be in [0, 1), got 1.5']),
        ([video, '--config', cfg, '--full-frame', '--max-frames', '0'], 2,
         ['--max-frames must be >= 1']),
        ([video, '--config', cfg, '--full-frame', '--filter',
          "dict(type=__import__('os'))"], 2, ['--filter']),
        ([video, '--config', cfg, '--full-frame', '--filter', 'nosuch'], 2,
         ["--filter 'nosuch': Unknown filter preset 'nosuch'"]),
        ([video, '--config', cfg, '--full-frame', '--filter',
          "dict(type='NoSuchFilter')"], 2, ['--filter', 'NoSuchFilter']),
        ([video, '--config', cfg, '--full-frame', '--filter',
          'mmpose0x_savgol'], 2, ['is offline']),
        ([video, '--config', cfg, '--det-config', tmp_path / 'det.py'], 1,
         ['--det-config', 'det.py', 'no such file']),
        ([video, '--config', tmp_path, '--full-frame'], 1,
         [f'--config {tmp_path}: a folder, expected a file']),
        ([video, '--config', cfg, '--full-frame', '--out-dir',
          '/proc/no/such'], 1, ['--out-dir /proc/no/such: cannot create']),
        ([video, '--config', cfg, '--full-frame', '--device', 'gpu7'], 2,
         ['--device gpu7']),
        ([video, '--config', cfg, '--no-such-option'], 2,
         ['unrecognized arguments: --no-such-option']),
        ([video, '--full-frame'], 2, ['--config']),
    ]
    # --invalid-boxes skip: the box is dropped with a warning naming it
    with pytest.warns(UserWarning, match=r'update \(frame 2\): box 0 \[4900'):
        code = demo.cli([str(a) for a in [
            *base, '--out-dir', tmp_path / 'skip', video, '--config', cfg,
            '--bbox-file', outside, '--invalid-boxes', 'skip',
            '--max-frames', 3]])
    assert code == 0
    capsys.readouterr()
    with open(tmp_path / 'skip' / 'face.json') as f:
        assert [r['missing'] for r in json.load(f)['frames']] == [False,
                                                                  False, True]
    for k, (argv, expected, parts) in enumerate(cases):
        out = tmp_path / f'out{k}'
        code, err = run_cli(capsys, *base, '--out-dir', out, *argv)
        assert code == expected, (argv, err)
        if argv[0] != folder:
            assert not osp.exists(out), argv  # nothing written
        assert err.startswith('demo_video.py: error: '), err
        for part in parts:
            assert part in err, (part, err)


# ---------------------------------- default model (issue 11), --gt-file
def test_default_model_is_the_real_face_model(models, clip, tmp_path, capsys,
                                              monkeypatch):
    import mmstable.apis.default_model as default_model
    video, _ = clip
    monkeypatch.setattr(default_model, '_ROOT', str(tmp_path))
    # not built yet: a clear message, exit 2, nothing written, no weights
    code, err = run_cli(capsys, video, '--out-dir', tmp_path / 'out',
                        '--full-frame')
    assert code == 2 and 'default real-face model has not been built' in err
    assert 'make demo' in err and not osp.exists(tmp_path / 'out')
    code, err = run_cli(capsys, video, '--checkpoint', 'x.pth', '--out-dir',
                        tmp_path / 'out')
    assert code == 2 and '--checkpoint / --random-weights need --config' in err
    # built: make demo's layout (config + work dir with last_checkpoint)
    cfg, ckpt = models['stable']
    os.makedirs(tmp_path / 'configs' / 'demo')
    os.makedirs(tmp_path / 'work_dirs' / 'demo' / 'real_refiner')
    with open(cfg) as f:
        (tmp_path / 'configs/demo/real_jitter.py').write_text(f.read())
    (tmp_path / 'work_dirs/demo/real_refiner/last_checkpoint').write_text(
        ckpt)
    code, _ = run_cli(capsys, video, '--out-dir', tmp_path / 'out',
                      '--full-frame', '--device', 'cpu')
    assert code == 0
    with open(tmp_path / 'out' / 'face.json') as f:
        out = json.load(f)
    assert (out['config'], out['checkpoint']) == (
        str(tmp_path / 'configs/demo/real_jitter.py'), ckpt)


def test_gt_file_scores_stabilised_and_raw(models, clip, tmp_path, capsys):
    frames, kpts = synthetic_frames(12, size=96, seed=3)
    video, boxes = clip
    gt = tmp_path / 'face_gt.json'
    gt.write_text(json.dumps(dict(frames=[
        dict(frame_id=t, keypoints=k.tolist()) for t, k in enumerate(kpts)
        if t != 5])))  # frame 5 has no ground truth
    bbox_file = tmp_path / 'boxes.json'
    bbox_file.write_text(json.dumps([[b.tolist()] for b in boxes[:10]]))
    out = run(models, 'stable', video, tmp_path / 'out', '--bbox-file',
              str(bbox_file), '--gt-file', str(gt))  # frames 10, 11: no face
    assert 'against' in capsys.readouterr().out
    with open(out['json']) as f:
        data = json.load(f)
    s = data['ground_truth']
    assert (s['frames'], s['missed']) == (11, 2)
    for name, key in (('stabilised', 'keypoints'), ('raw', 'raw_keypoints')):
        # NME by hand: mean point error over the outer-eye-corner distance,
        # averaged over the 9 frames with a face and ground truth
        errs = [np.linalg.norm(np.array(r['faces'][0][key]) - kpts[t], axis=1)
                .mean() / np.linalg.norm(kpts[t][36] - kpts[t][45])
                for t, r in enumerate(data['frames']) if t not in (5, 10, 11)]
        assert s['NME'][name] == pytest.approx(100 * np.mean(errs), rel=1e-6)
        assert np.isfinite(s['NMF'][name])
    # a landmark file that is not one: exit 1 before anything is written
    gt.write_text('[]')
    code, err = run_cli(capsys, video, '--config', models['stable'][0],
                        '--checkpoint', models['stable'][1], '--out-dir',
                        tmp_path / 'out2', '--full-frame', '--gt-file', gt)
    assert code == 1 and 'no "frames" list' in err
    assert not osp.exists(tmp_path / 'out2')
    code, err = run_cli(capsys, video, '--config', models['stable'][0],
                        '--checkpoint', models['stable'][1], '--out-dir',
                        tmp_path / 'out2', '--realtime', '--gt-file', gt)
    assert code == 2 and '--gt-file scores every frame' in err
