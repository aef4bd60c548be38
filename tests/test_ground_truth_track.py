"""Scoring a tracked video against known landmarks (demo_video --gt-file):
hand-computed NME / NMF, face choice, misses, bad landmark files."""
import json

import numpy as np
import pytest

from mmstable.evaluation import (load_ground_truth_track,
                                 score_against_ground_truth)


def _face(kpts, raw=None):
    return dict(
        keypoints=np.asarray(kpts).tolist(),
        raw_keypoints=None if raw is None else np.asarray(raw).tolist())


def _gt():
    # 68 points spanning a 256 x 256 box (LDEQ's face scale s_t = 1), outer
    # eye corners 36 and 45 are 100 px apart
    k = np.zeros((68, 2))
    k[:, 0] = np.linspace(0, 256, 68)
    k[:, 1] = np.linspace(0, 256, 68)[::-1]
    k[36], k[45] = (50., 100.), (150., 100.)
    return k


def test_nme_and_nmf_by_hand():
    g = _gt()
    gt = {0: g, 1: g, 2: g}
    shift = np.array([2., 0.])
    records = [
        # frame 0: stabilised 2 px off everywhere, raw exact
        dict(frame_id=0, faces=[_face(g + shift, g)]),
        # frame 1: stabilised exact, raw 4 px off; a far face is ignored
        dict(frame_id=1, faces=[_face(g + 500.), _face(g, g + 2 * shift)]),
        # frame 2: no face (a miss)
        dict(frame_id=2, faces=[]),
    ]
    s = score_against_ground_truth(records, gt)
    assert (s['frames'], s['missed']) == (3, 1)
    # NME: stabilised (2 + 0) / 2 px over 100 px = 1 %; raw (0 + 4) / 2 = 2 %
    assert s['NME']['stabilised'] == pytest.approx(1.)
    assert s['NME']['raw'] == pytest.approx(2.)
    # NMF: one difference (frames 0 -> 1; frame 2 missing): error change
    # 2 px on every landmark, 4 px raw, face scale 1 -> NMJ 200 / 400
    assert s['NMF']['stabilised'] == pytest.approx(200.)
    assert s['NMF']['raw'] == pytest.approx(400.)


def test_no_raw_and_bad_records():
    g = _gt()
    s = score_against_ground_truth(
        [dict(frame_id=0, faces=[_face(g)]),
         dict(frame_id=1, faces=[_face(g)])], {0: g, 1: g})
    assert set(s['NME']) == {'stabilised'} and s['NMF']['stabilised'] == 0.
    with pytest.raises(ValueError, match='5 landmarks, the ground truth 68'):
        score_against_ground_truth(
            [dict(frame_id=0, faces=[_face(np.zeros((5, 2)))])], {0: g})
    with pytest.raises(ValueError, match='no frame of the video has ground'):
        score_against_ground_truth([dict(frame_id=0, faces=[])], {})


def test_load_landmark_json_and_bad_files(tmp_path):
    path = tmp_path / 'clip.json'
    path.write_text(json.dumps(dict(frames=[
        dict(frame_id=1, keypoints=[[1, 2], [3, 4]]),
        dict(frame_id=0, keypoints=[[5, 6], [7, 8]])])))
    gt = load_ground_truth_track(str(path))
    assert sorted(gt) == [0, 1]
    np.testing.assert_array_equal(gt[1], [[1, 2], [3, 4]])
    bad = {
        'no "frames" list': dict(videos=[]),
        'frame_id': dict(frames=[dict(keypoints=[[1, 2]])]),
        'finite': dict(frames=[dict(frame_id=0, keypoints=[[1, None]])]),
        'landmarks, earlier frames': dict(frames=[
            dict(frame_id=0, keypoints=[[1, 2]]),
            dict(frame_id=1, keypoints=[[1, 2], [3, 4]])]),
        'repeated': dict(frames=[dict(frame_id=0, keypoints=[[1, 2]]),
                                 dict(frame_id=0, keypoints=[[1, 2]])]),
    }
    for match, content in bad.items():
        path.write_text(json.dumps(content))
        with pytest.raises(ValueError, match=match):
            load_ground_truth_track(str(path))
    path.write_text('{not json')
    with pytest.raises(ValueError, match='cannot read the landmark JSON'):
        load_ground_truth_track(str(path))
