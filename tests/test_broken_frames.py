"""Broken-frame lists are read from JSON; a pickled .npy is refused and its
payload never runs (issue 12, item 1)."""
import importlib.util
import json
import os.path as osp

import numpy as np
import pytest

from mmpose.registry import DATASETS
from mmstable.datasets.broken_frames import (convert_broken_frames,
                                             load_broken_frames,
                                             read_pickled_broken_frames)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOLS = osp.join(REPO, 'tools', 'dataset_converters')


class Payload:
    """Unpickling this creates ``marker`` (what an attacker's file would
    do with os.system)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, 'w'))


def write_payload(path, marker, shape='dict'):
    """An object-array .npy whose unpickling creates ``marker``."""
    if shape == 'dict':  # MMPose's layout: a 0-d array holding a dict
        value = np.empty((), dtype=object)
        value[()] = {'401': [731, Payload(marker)]}
    else:
        value = np.array([Payload(marker), 1], dtype=object)
    np.save(path, value, allow_pickle=True)
    return str(path)


@pytest.mark.parametrize('shape', ['dict', 'array'])
def test_payload_is_real_when_unpickled(tmp_path, shape):
    """Guard for the tests below: np.load with pickles allowed DOES run it."""
    marker = tmp_path / 'pwned'
    path = write_payload(tmp_path / 'evil.npy', marker, shape)
    np.load(path, allow_pickle=True)
    assert marker.exists()


@pytest.mark.parametrize('shape', ['dict', 'array'])
def test_load_broken_frames_refuses_pickled_npy(tmp_path, shape):
    marker = tmp_path / 'pwned'
    path = write_payload(tmp_path / 'evil.npy', marker, shape)
    with pytest.raises(ValueError) as info:
        load_broken_frames(path)
    msg = str(info.value)
    assert f'Refusing to load {path}' in msg
    assert 'broken_frames_to_json.py' in msg and 'evil.json' in msg
    assert not marker.exists()


def test_video_clip_dataset_refuses_pickled_npy(mmpose_testdata, tmp_path):
    marker = tmp_path / 'pwned'
    path = write_payload(tmp_path / 'evil.npy', marker)
    root = osp.join(mmpose_testdata, '300vw')
    with pytest.raises(ValueError, match='Refusing to load .*evil.npy'):
        DATASETS.build(
            dict(type='VideoClipDataset',
                 data_root=root,
                 ann_file='anno_300vw.json',
                 data_prefix=dict(img=''),
                 test_mode=True,
                 broken_frames=path))
    assert not marker.exists()


def load_tool(name):
    path = osp.join(TOOLS, name)
    spec = importlib.util.spec_from_file_location(name[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_converter_cli_refuses_pickled_npy(mmpose_testdata, tmp_path,
                                           capsys):
    """300vw_to_coco.py's entry point (in-process: a subprocess re-imports
    torch and MMPose, ~10 s)."""
    marker = tmp_path / 'pwned'
    path = write_payload(tmp_path / 'evil.npy', marker)
    out = tmp_path / 'out.json'
    rc = load_tool('300vw_to_coco.py').main([
        osp.join(mmpose_testdata, '300vw'),
        str(out), '--no-extract', '--broken-frames', path
    ])
    err = capsys.readouterr().err
    assert rc == 1
    assert err.startswith(f'300vw_to_coco.py: error: Refusing to load {path}')
    assert 'broken_frames_to_json.py' in err and err.count('\n') == 1
    assert not marker.exists() and not out.exists()


def test_static_reader_matches_mmpose_list(mmpose_testdata, tmp_path):
    """The opcode walk reads MMPose's real list exactly; the reference is
    np.load of that trusted fixture with pickles allowed (test only)."""
    src = osp.join(mmpose_testdata, '300vw', 'broken_frames.npy')
    ref = np.load(src, allow_pickle=True).item()
    out = tmp_path / 'broken.json'
    data = convert_broken_frames(src, str(out))
    assert data == {k: sorted(v) for k, v in ref.items()}
    assert len(data) == 16 and 731 in data['401']
    assert json.loads(out.read_text()) == data
    assert load_broken_frames(str(out)) == {k: set(v)
                                            for k, v in ref.items()}


@pytest.mark.parametrize('shape, match',
                         [('dict', 'refers to io.open'),
                          ('array', 'expected a pickled 0-d object array')])
def test_static_reader_refuses_payload(tmp_path, shape, match):
    marker = tmp_path / 'pwned'
    path = write_payload(tmp_path / 'evil.npy', marker, shape)
    with pytest.raises(ValueError, match=match):
        read_pickled_broken_frames(path)
    assert not marker.exists()


def test_convert_tool_refuses_payload(tmp_path, capsys):
    marker = tmp_path / 'pwned'
    path = write_payload(tmp_path / 'evil.npy', marker)
    out = tmp_path / 'evil.json'
    rc = load_tool('broken_frames_to_json.py').main([path, str(out)])
    err = capsys.readouterr().err
    assert rc == 1
    assert 'evil.npy' in err and 'refers to io.open' in err
    assert not marker.exists() and not out.exists()


def test_static_reader_refuses_other_content(tmp_path):
    numeric = tmp_path / 'numeric.npy'
    np.save(numeric, np.arange(4))
    with pytest.raises(ValueError, match='0-d object array'):
        read_pickled_broken_frames(str(numeric))
    wrong = tmp_path / 'wrong.npy'
    value = np.empty((), dtype=object)
    value[()] = {'401': ['a']}
    np.save(wrong, value, allow_pickle=True)
    with pytest.raises(ValueError, match=r"wrong\.npy: video '401' lists "
                       r"'a'"):
        read_pickled_broken_frames(str(wrong))
    garbage = tmp_path / 'garbage.npy'
    garbage.write_bytes(b'not a numpy file')
    with pytest.raises(ValueError, match=r'garbage\.npy is not a valid'):
        read_pickled_broken_frames(str(garbage))


def test_load_broken_frames_errors(tmp_path):
    assert load_broken_frames(None) == {}
    assert load_broken_frames({'001': [3, 1]}) == {'001': {1, 3}}
    with pytest.raises(FileNotFoundError, match='nope.json'):
        load_broken_frames(str(tmp_path / 'nope.json'))
    bad_json = tmp_path / 'bad.json'
    bad_json.write_text('{"401": [731,\n')
    with pytest.raises(ValueError, match=r'bad\.json:2:1: not valid JSON'):
        load_broken_frames(str(bad_json))
    as_list = tmp_path / 'list.json'
    as_list.write_text('[731]')
    with pytest.raises(ValueError, match=r'list\.json must hold a dict'):
        load_broken_frames(str(as_list))
    zero = tmp_path / 'zero.json'
    zero.write_text('{"401": [0]}')
    with pytest.raises(ValueError, match='1-based'):
        load_broken_frames(str(zero))
    numeric = tmp_path / 'numeric.npy'
    np.save(numeric, np.arange(4))
    with pytest.raises(ValueError, match=r'numeric \.npy array'):
        load_broken_frames(str(numeric))
    txt = tmp_path / 'frames.txt'
    txt.write_text('731')
    with pytest.raises(ValueError, match=r'must be a \.json file'):
        load_broken_frames(str(txt))
