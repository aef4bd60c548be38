"""mmstable.apis.FrameSource: frames in order and an account of the frames
that could not be read (issue 12 item 6)."""
import cv2
import numpy as np
import pytest

from mmstable.apis import FrameSource


def _frames(n, size=32, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
            for _ in range(n)]


def _avi(path, frames):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), 25,
                             frames[0].shape[1::-1])
    for f in frames:
        writer.write(f)
    writer.release()
    return str(path)


def test_complete_video(tmp_path):
    src = FrameSource(_avi(tmp_path / 'v.avi', _frames(6)))
    assert (src.name, src.num_frames, src.is_camera) == ('v', 6, False)
    assert src.frame_size == (32, 32)
    got = [(i, f.shape) for i, f in src]
    src.close()
    assert got == [(i, (32, 32, 3)) for i in range(6)]
    assert src.unread(6) == (0, None)
    assert src.fps is None  # released


def test_truncated_video(tmp_path):
    path = _avi(tmp_path / 'cut.avi', _frames(20))
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])
    src = FrameSource(path)
    assert src.num_frames == 20  # the header survives
    indices = [i for i, _ in src]
    src.close()
    n = len(indices)
    assert 0 < n < 20 and indices == list(range(n))
    assert src.unread(n) == (20 - n, n)
    assert src.unread(n, stop=n) == (0, None)  # --max-frames below the cut
    assert src.unread(n, stop=n + 2) == (2, n)


def test_folder_with_unreadable_image(tmp_path):
    for i, f in enumerate(_frames(4)):
        cv2.imwrite(str(tmp_path / f'{i:02d}.png'), f)
    (tmp_path / '01.png').write_bytes(b'\x89PNG broken')
    (tmp_path / 'notes.txt').write_text('not a frame')
    src = FrameSource(str(tmp_path))
    assert (src.num_frames, src.frame_size) == (4, None)
    got = [(i, f is None) for i, f in src]
    assert got == [(0, False), (1, True), (2, False), (3, False)]
    assert src.unread(3) == (1, 1)
    assert src.unread(1, stop=1) == (0, None)


def test_missing_and_unreadable_sources(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.mp4'):
        FrameSource(str(tmp_path / 'nope.mp4'))
    bad = tmp_path / 'bad.mp4'
    bad.write_text('not a video')
    with pytest.raises(OSError, match='bad.mp4'):
        FrameSource(str(bad))
