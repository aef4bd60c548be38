"""The image and face-box contract of :mod:`mmstable.apis` (checked once,
where an image enters: :meth:`StableFaceTracker.update`, the face
detectors).

Images (``check_image``) — what OpenCV's ``imread`` / ``VideoCapture`` give:

- dtype ``uint8`` (0..255): used as is;
- float (16/32/64 bit) with every value finite and in **[0, 255]**: rounded
  to ``uint8``. A float image whose maximum is in (0, 1] is refused: it is
  almost surely scaled to [0, 1] and would reach the model 255 times too dark
  (issue 12: landmarks off by 45 px on average, no error). Multiply it by 255;
- any other dtype (``bool``, ``uint16``, signed integers) is refused: a
  16-bit frame may hold 10, 12 or 16 significant bits, so no one rule maps it
  to 8 bits; convert it yourself (e.g. ``(img >> 8).astype(np.uint8)`` for
  full-range 16 bit);
- shape (H, W) or (H, W, 1) grey -> replicated to 3 channels; (H, W, 3) BGR;
  (H, W, 4) BGRA -> alpha dropped; H, W >= 1. Anything else is refused.

Face boxes (``check_boxes``): ``x1, y1, x2, y2[, score]`` in image pixels.
A box with a NaN/inf value, ``x2 <= x1`` or ``y2 <= y1`` (inverted or zero
area), or entirely outside the image is invalid: an error naming the box
(``invalid_boxes='error'``, default) or skipped with a warning naming it
(``'skip'``). Boxes partly outside the image are fine.
"""
import warnings
from typing import Optional, Tuple

import numpy as np

__all__ = ['check_image', 'check_boxes']


def check_image(image, where: str = 'image') -> np.ndarray:
    """Return ``image`` as an (H, W, 3) ``uint8`` BGR array (see the module
    docstring for the rules); raise ``TypeError`` / ``ValueError`` naming
    ``where`` otherwise."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f'{where}: expected a numpy image (H, W, 3) uint8 '
                        f'BGR, got {type(image).__name__}')
    shape = image.shape
    if not (image.ndim == 2 or
            (image.ndim == 3 and shape[2] in (1, 3, 4))) or 0 in shape[:2]:
        raise ValueError(
            f'{where}: expected an image of shape (H, W, 3) BGR, (H, W, 4) '
            f'BGRA, (H, W, 1) or (H, W) grey with H, W >= 1, got shape '
            f'{shape}')
    dtype = image.dtype
    if dtype == np.uint8:
        pass
    elif np.issubdtype(dtype, np.floating):
        if not np.isfinite(image).all():
            raise ValueError(f'{where}: the {dtype} image has NaN or inf '
                             'values; expected finite values in [0, 255]')
        lo, hi = float(image.min()), float(image.max())
        if lo < 0 or hi > 255:
            raise ValueError(
                f'{where}: a float image must have values in [0, 255], found '
                f'[{lo:.4g}, {hi:.4g}]')
        if 0 < hi <= 1:
            raise ValueError(
                f'{where}: the {dtype} image has values in [{lo:.4g}, '
                f'{hi:.4g}], i.e. it looks scaled to [0, 1]; mmstable expects '
                'uint8 or float in [0, 255]: multiply it by 255 (or pass the '
                'uint8 image)')
        image = np.rint(image).astype(np.uint8)
    else:
        hint = (' (a 16-bit image: convert it to 8 bits yourself, e.g. '
                '(img >> 8).astype(np.uint8) for full-range 16 bit)'
                if dtype == np.uint16 else '')
        raise TypeError(
            f'{where}: expected a uint8 image (or float in [0, 255]), got '
            f'dtype {dtype}{hint}')
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    elif image.shape[2] == 4:
        image = image[..., :3]  # BGRA -> BGR, as cv2.COLOR_BGRA2BGR
    return image


def check_boxes(boxes,
                image_shape: Optional[Tuple[int, int]],
                where: str = 'face boxes',
                invalid_boxes: str = 'error') -> np.ndarray:
    """Validate face boxes; return them as float32 (N, 5) (score 1 added to
    (N, 4) boxes), without the invalid ones when ``invalid_boxes='skip'``.

    Args:
        boxes (array-like): (N, 4) or (N, 5) ``x1, y1, x2, y2[, score]``;
            empty: no face.
        image_shape (tuple, optional): (H, W) of the image the boxes are
            in; ``None``: not known yet (the outside-the-image test is left
            out).
        where (str): how to name the boxes in messages (e.g. the frame).
        invalid_boxes (str): ``'error'`` (raise ``ValueError`` naming the
            first invalid box) or ``'skip'`` (drop each with a warning
            naming it).
    """
    if invalid_boxes not in ('error', 'skip'):
        raise ValueError("invalid_boxes must be 'error' or 'skip', got "
                         f'{invalid_boxes!r}')
    try:
        arr = np.asarray(boxes, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f'{where}: expected (N, 4) or (N, 5) numbers x1, '
                         f'y1, x2, y2[, score]; {e}') from e
    if arr.size == 0:
        return np.zeros((0, 5), np.float32)
    if arr.ndim != 2 or arr.shape[1] not in (4, 5):
        raise ValueError(f'{where}: face boxes must be (N, 4) or (N, 5) x1, '
                         f'y1, x2, y2[, score]; got shape {arr.shape}')
    if arr.shape[1] == 4:
        arr = np.concatenate([arr, np.ones((len(arr), 1))], axis=1)
    h, w = image_shape[:2] if image_shape is not None else (np.inf, np.inf)
    size = f' (image {w}x{h})' if image_shape is not None else ''
    keep = np.ones(len(arr), bool)
    for i, box in enumerate(arr):
        why = _invalid_reason(box, h, w)
        if why is None:
            continue
        msg = (f'{where}: box {i} [{", ".join(f"{v:.6g}" for v in box[:4])}]'
               f' {why}{size}')
        if invalid_boxes == 'error':
            raise ValueError(msg + '; fix the boxes or the detector, or pass '
                             "invalid_boxes='skip' to drop such boxes")
        warnings.warn(msg + '; skipped')
        keep[i] = False
    return arr[keep].astype(np.float32)


def _invalid_reason(box: np.ndarray, h: int, w: int) -> Optional[str]:
    x1, y1, x2, y2, score = box
    if not np.isfinite(box[:4]).all():
        return 'has NaN or inf coordinates'
    if not np.isfinite(score):
        return f'has a non-finite score {score}'
    if x2 < x1 or y2 < y1:
        return 'is inverted (x2 < x1 or y2 < y1)'
    if x2 == x1 or y2 == y1:
        return 'has zero area'
    if x2 <= 0 or y2 <= 0 or x1 >= w or y1 >= h:
        return 'lies entirely outside the image'
    return None
