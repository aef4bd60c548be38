"""mmstable.utils.safe_paths.check_no_overwrite: no output path equals or
contains an input path (issue 12 item 2)."""
import os

import pytest

from mmstable.utils.safe_paths import (OutputOverwritesInputError,
                                       check_no_overwrite)


@pytest.fixture
def tree(tmp_path):
    (tmp_path / 'in').mkdir()
    (tmp_path / 'out').mkdir()
    video = tmp_path / 'in' / 'face.mp4'
    video.write_bytes(b'video')
    return tmp_path, video


def test_distinct_paths_pass(tree):
    root, video = tree
    check_no_overwrite({'video': root / 'out' / 'face.mp4'},
                       {'source': video, 'camera': None})
    # the output folder may hold the input, under another name
    check_no_overwrite({'video': root / 'in' / 'face_out.mp4', 'x': None},
                       {'source': video})


def test_same_path_relative_and_absolute(tree, monkeypatch):
    root, video = tree
    monkeypatch.chdir(root / 'out')
    with pytest.raises(OutputOverwritesInputError) as info:
        check_no_overwrite({'output video': '../in/face.mp4'},
                           {'source': str(video)}, hint='pass another --out')
    assert str(info.value) == (
        f'refusing to write the output video ../in/face.mp4: it is the same '
        f'file as the input source {video}; an output never overwrites an '
        'input; pass another --out')
    assert isinstance(info.value, ValueError)


def test_symlinked_file_and_folder(tree):
    root, video = tree
    link = root / 'out' / 'face.mp4'
    link.symlink_to(video)
    with pytest.raises(OutputOverwritesInputError, match='same file'):
        check_no_overwrite({'video': link}, {'source': video})
    # the input given through a symlinked folder: its real path is named
    folder_link = root / 'link'
    folder_link.symlink_to(root / 'in', target_is_directory=True)
    with pytest.raises(OutputOverwritesInputError,
                       match=rf'input source {folder_link}/face.mp4 \(real '
                       rf'path {video}\)'):
        check_no_overwrite({'video': video}, {'source': folder_link /
                                              'face.mp4'})


def test_hard_link(tree):
    root, video = tree
    os.link(video, root / 'out' / 'copy.mp4')
    with pytest.raises(OutputOverwritesInputError, match='same file'):
        check_no_overwrite({'video': root / 'out' / 'copy.mp4'},
                           {'source': video})


def test_inside_an_input_folder_or_containing_an_input(tree):
    root, video = tree
    with pytest.raises(OutputOverwritesInputError,
                       match=r'in/x/y.json: it lies inside the input frames'):
        check_no_overwrite({'json': root / 'in' / 'x' / 'y.json'},
                           {'frames': root / 'in'})
    with pytest.raises(OutputOverwritesInputError,
                       match='is a folder that contains the input source'):
        check_no_overwrite({'work dir': root}, {'source': video})
    # a sibling whose name starts like the input folder is not inside it
    check_no_overwrite({'json': root / 'in2' / 'y.json'},
                       {'frames': root / 'in'})
