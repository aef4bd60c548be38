"""Frames of a video file, a camera or a folder of images, in order, with
an account of the frames that could not be read.

OpenCV stops a video at the first frame it cannot decode and says nothing:
a file whose header announces 72 frames but that was cut after 33 simply
ends early (issue 12, item 6). :class:`FrameSource` keeps the announced
count and :meth:`FrameSource.unread` reports how many frames were lost and
from which index, so that a tool can say so and exit non-zero.
"""
import os
import os.path as osp
from typing import Iterator, List, Optional, Tuple

import cv2
import numpy as np

__all__ = ['FrameSource', 'IMAGE_EXTS']

IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


class FrameSource:
    """Frames of a video file, a camera or a folder (images sorted by name).

    Iterating yields ``(index, frame)``: ``frame`` is a BGR ``uint8`` image
    as OpenCV reads it, or ``None`` for an image of a folder that cannot be
    read. A video ends at the first frame OpenCV cannot read;
    :meth:`unread` then compares with the count the file announces
    (``num_frames``, read when the source is opened).

    Args:
        source (str): a video file, a camera index (``'0'``, when no file of
            that name exists) or a folder of images.

    Raises:
        FileNotFoundError: no such file or folder.
        OSError: OpenCV cannot open the video or the camera.

    Attributes:
        name (str): the file's stem, the folder's name or ``camera<i>``.
        is_camera (bool): a live camera (no frame count).
        num_frames (int): frames announced by the container, or images in
            the folder; 0: unknown (camera).
        frame_size (tuple | None): (H, W) a video file announces; ``None``
            for folders (each image has its own) and cameras.
    """

    def __init__(self, source: str):
        self.source = source
        self.files: Optional[List[str]] = None
        self.cap = None
        self.is_camera = source.isdigit() and not osp.exists(source)
        if self.is_camera:
            self.name = f'camera{source}'
            self.cap = cv2.VideoCapture(int(source))
            if not self.cap.isOpened():
                raise OSError(f'cannot open camera {source} (OpenCV '
                              'VideoCapture failed)')
        elif osp.isdir(source):
            self.name = osp.basename(osp.normpath(source))
            self.files = sorted(
                osp.join(source, f) for f in os.listdir(source)
                if f.lower().endswith(IMAGE_EXTS))
        elif not osp.exists(source):
            raise FileNotFoundError(f'no such video file or folder: {source}')
        else:
            self.name = osp.splitext(osp.basename(source))[0]
            self.cap = cv2.VideoCapture(source)
            if not self.cap.isOpened():
                raise OSError(f'cannot read video {source}: OpenCV could not '
                              'open it (not a video, an unsupported codec, or '
                              'a file without frames)')
        # the container's frame count and size, read before the capture is
        # released
        self.num_frames = self._count()
        self.frame_size = None
        if self.cap is not None and not self.is_camera:
            w = int(self.cap.get(cv2.CAP_PROP_FRAME_WIDTH))
            h = int(self.cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
            self.frame_size = (h, w) if h > 0 and w > 0 else None
        self.unread_files: List[int] = []

    @property
    def fps(self) -> Optional[float]:
        if self.cap is None:
            return None
        fps = self.cap.get(cv2.CAP_PROP_FPS)
        return fps if fps and 0 < fps < 1000 else None

    def _count(self) -> int:
        """Expected number of frames (0: unknown)."""
        if self.files is not None:
            return len(self.files)
        if self.is_camera:
            return 0
        return max(int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0)

    def __iter__(self) -> Iterator[Tuple[int, Optional[np.ndarray]]]:
        """``(index, frame)``; ``frame`` is ``None`` for an image of a folder
        that cannot be read. A video ends at the first frame OpenCV cannot
        read; :meth:`unread` compares with the container's frame count."""
        self.unread_files: List[int] = []
        if self.files is not None:
            for i, f in enumerate(self.files):
                img = cv2.imread(f, cv2.IMREAD_COLOR)
                if img is None:
                    self.unread_files.append(i)
                yield i, img
            return
        index = 0
        while True:
            ok, frame = self.cap.read()
            if not ok:
                return
            yield index, frame
            index += 1

    def unread(self, num_read: int,
               stop: Optional[int] = None) -> Tuple[int, Optional[int]]:
        """``(count, first index)`` of the frames that could not be read,
        out of the expected ones (the first ``stop`` if given); ``(0,
        None)`` for a camera or when nothing is missing."""
        if self.files is not None:
            lost = [i for i in self.unread_files if stop is None or i < stop]
            return len(lost), (lost[0] if lost else None)
        expected = self.num_frames
        if stop is not None:
            expected = min(expected, stop)
        if self.is_camera or num_read >= expected:
            return 0, None
        return expected - num_read, num_read

    def close(self):
        if self.cap is not None:
            self.cap.release()
