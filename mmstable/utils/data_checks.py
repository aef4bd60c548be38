# Copyright (c) mmstable authors. All rights reserved.
"""Checks of annotation records shared by mmstable's datasets: each error
names the annotation file, the image and what to fix, instead of letting a
bad record reach training (issue 12, items 7 and 10)."""
import json
from contextlib import contextmanager
from typing import Iterator, Optional

import numpy as np


def _where(data_info: dict, source: str) -> str:
    img = data_info.get('img_path') or data_info.get('img_id')
    return f'{source}: image {img!r} (id {data_info.get("id")})'


def check_keypoints(data_info: dict,
                    num_keypoints: Optional[int],
                    source: str,
                    dataset: str = 'dataset') -> None:
    """Raise ``ValueError`` when a record's keypoints do not fit the dataset.

    Args:
        data_info (dict): An MMPose data info with ``keypoints`` of shape
            (N, K, 2) (or (K, 2)); records without keypoints pass.
        num_keypoints (int, optional): The dataset metainfo's K; ``None``
            skips the count check.
        source (str): The annotation file (named in the error).
        dataset (str): The dataset's class name (named in the error).

    Raises:
        ValueError: K differs from ``num_keypoints`` (e.g. a 98-point file
            read as a 68-point set), or a keypoint is NaN / inf.
    """
    keypoints = data_info.get('keypoints')
    if keypoints is None:
        return
    keypoints = np.asarray(keypoints)
    if keypoints.ndim < 2 or keypoints.shape[-1] != 2:
        raise ValueError(f'{_where(data_info, source)}: keypoints must be '
                         f'(N, K, 2), found shape {keypoints.shape}.')
    if num_keypoints is not None and keypoints.shape[-2] != num_keypoints:
        raise ValueError(
            f'{_where(data_info, source)} has {keypoints.shape[-2]} '
            f'keypoints, but the {dataset} metainfo has num_keypoints='
            f'{num_keypoints}. The annotation file and the dataset type / '
            'metainfo must describe the same landmark set (fix ann_file or '
            'the dataset metainfo in the config).')
    finite = np.isfinite(keypoints.astype(np.float64))
    if not finite.all():
        bad = sorted({int(k) for k in np.argwhere(~finite)[:, -2]})
        raise ValueError(
            f'{_where(data_info, source)} has NaN/inf keypoints (landmark '
            f'indices {bad[:10]}{"..." if len(bad) > 10 else ""}); fix or '
            'remove that annotation (unlabelled points are (0, 0) with '
            'visibility 0 in MMPose).')


@contextmanager
def annotation_file_errors(ann_file: str) -> Iterator[None]:
    """Re-raise a JSON syntax or text-encoding error, or MMPose's assertion
    on a missing or non-dict file, met while reading ``ann_file`` as a
    ``ValueError`` naming the file (and line, column)."""
    try:
        yield
    except json.JSONDecodeError as e:
        raise ValueError(f'{ann_file}:{e.lineno}:{e.colno}: the annotation '
                         f'file is not valid JSON ({e.msg}).') from None
    except AssertionError as e:
        # MMPose / xtcocotools assert on a missing file or a non-dict JSON
        raise ValueError(f'{ann_file}: {e} (expected a COCO-style dict with '
                         '"images" and "annotations").') from None
    except UnicodeDecodeError as e:
        raise ValueError(f'{ann_file}: the annotation file is not UTF-8 '
                         f'text (byte {e.object[e.start:e.start + 1]!r} at '
                         f'offset {e.start}); is it the right file?') \
            from None
