"""Issue 13: the streaming step exported to ONNX (mmstable.deploy) tracks
like the torch model, state carried (≤ 1e-3 px over 100 frames)."""
import copy
import os.path as osp

import numpy as np
import pytest
import torch

from mmstable.apis import StableFaceTracker, init_model
from mmstable.deploy import (OnnxTopdownModel, StatefulStep, export_onnx,
                             read_metadata)
from mmstable.deploy.verify import synthetic_clip, track_agreement

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO = osp.join(ROOT, 'configs/demo/synthetic_jitter.py')
DEMO_IMAGE = osp.join(ROOT, 'configs/demo/synthetic_image_model.py')
WFLW = osp.join(ROOT, 'configs/wflw_hrnet_jitter.py')
# Random weights give flat maps near 0. Θ_PDC = 0 keeps mass in every map
# (the graph's PDC is compared, not its argmax fallback) and makes PDC
# continuous (a pixel crossing 0 carries no mass; with Θ_PDC > 0 a pixel
# within float rounding of Θ_PDC enters in one runtime and not the other).
# _refiner_model also lifts the maps by 1 (the final layer's bias): a map
# with only a few barely positive pixels has a tiny mass, and its centre
# moves by ~1e-3 px with the ~1e-6 relative difference between the two
# runtimes' convolutions; a trained model's peaks, like the lifted maps, have
# a well-conditioned mass (measured on HRNet, 40 frames: 1e-3 px without the
# lift, 7e-5 px with it). Flip test is not in the graph (StatefulStep).
PDC0 = dict(
    model=dict(
        head=dict(decoder=dict(pdc_threshold=0., threshold_mode='absolute')),
        test_cfg=dict(flip_test=False)))
TOL = 1e-3  # px, issue 13's acceptance


def _refiner_model(config, seed=0, cfg_options=None):
    """Random weights (maps lifted by 1, see PDC0); the refiner's own
    parameters (zero-initialised Δ, gain, keypoint stage's output layer)
    perturbed so that its state changes the output."""
    torch.manual_seed(seed)  # the random weights of the model
    options = copy.deepcopy(PDC0)
    if cfg_options:
        options.update(cfg_options)
    model = init_model(config, None, device='cpu',
                       cfg_options=options).eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.head.base_head.final_layer.bias += 1.
        for name, p in model.head.named_parameters():
            if not name.startswith('base_head'):
                p.add_(torch.randn(p.shape, generator=gen) * 0.1)
    return model


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    model = _refiner_model(DEMO)
    path = str(tmp_path_factory.mktemp('onnx') / 'demo.onnx')
    step = export_onnx(model, path, config_name=DEMO)
    return model, step, path


def test_demo_graph_interface(demo):
    model, step, path = demo
    meta = read_metadata(path)
    assert meta['stateful'] and meta['input_size'] == [128, 128]
    assert meta['num_keypoints'] == 68 and meta['config'] == DEMO
    # refiner state (h, c at half the 32x32 heatmap, 2 channels x 68 maps)
    # and the keypoint stage's state are graph inputs and outputs
    assert meta['state_spec']['refiner_h'][:2] == [[136, 16, 16], 'float32']
    assert meta['state_spec']['refiner_affine'][2] == 'eye'
    assert 'filter_position' in meta['state_spec']
    assert meta['input_names'][:2] == ['crop', 'crop_affine']
    assert meta['output_names'][:4] == [
        'keypoints', 'keypoint_scores', 'raw_keypoints', 'raw_keypoint_scores'
    ]


def test_demo_dynamic_batch_matches_torch_step(demo):
    """Batches 1, 3 and 5 (traced at 2), state carried for 3 steps, moving
    crop affines: the graph equals the torch module it was traced from —
    in the sessions with N fixed (1, 3) and in the dynamic-N one (5 >
    MAX_FIXED_BATCH)."""
    _, step, path = demo
    onnx_model = OnnxTopdownModel(path, threads=1)
    assert OnnxTopdownModel.MAX_FIXED_BATCH == 4
    gen = torch.Generator().manual_seed(1)
    for n in (1, 3, 5):
        state = step.zero_state(n)
        affine = torch.eye(3).repeat(n, 1, 1)
        for _ in range(3):
            crop = torch.rand(n, 3, 128, 128, generator=gen) * 255
            affine = affine.clone()
            affine[:, :2, 2] += torch.randn(n, 2, generator=gen) * 3
            with torch.no_grad():
                ref = step(crop, affine, *state)
            out = onnx_model.step(
                crop.numpy(), affine.numpy(), {
                    f'state_{k}': v.numpy()
                    for k, v in zip(step.state_spec, state)
                })
            for name, r in zip(step.output_names, ref):
                assert out[name].shape == tuple(r.shape), name
                np.testing.assert_allclose(out[name], r.numpy(), atol=1e-3,
                                           rtol=1e-4, err_msg=name)
            state = list(ref[4:])
    assert sorted(onnx_model._sessions, key=str) == [1, 3, None]


def test_demo_tracker_100_frames_two_tracks(demo):
    """The acceptance test: torch vs ONNX Runtime through StableFaceTracker,
    100 frames, two faces per frame (batch 2, one state per track), boxes
    jittered so the state is warped every frame."""
    model, _, path = demo
    frames, boxes = synthetic_clip(100, faces=2)
    worst = track_agreement(model, init_model(path, onnx_threads=1), frames,
                            boxes)
    assert worst['frames'] == 100
    assert worst['keypoints'] <= TOL and worst['raw_keypoints'] <= TOL


def test_demo_state_is_carried(demo):
    """The state matters: the same frames with every frame starting a new
    track (no state) give other refined landmarks than the carried run, and
    the ONNX path reproduces the carried one."""
    _, _, path = demo
    frames, boxes = synthetic_clip(8, faces=1)
    carried = StableFaceTracker(init_model(path, onnx_threads=1))
    fresh = StableFaceTracker(init_model(path, onnx_threads=1))
    diff = 0.
    for frame, box in zip(frames, boxes):
        (a, ) = carried.update(frame, box)
        fresh.reset()
        (b, ) = fresh.update(frame, box)
        assert b.track_frame == 0
        np.testing.assert_allclose(a.raw_keypoints, b.raw_keypoints,
                                   atol=1e-4)
        diff = max(diff, float(np.abs(a.keypoints - b.keypoints).max()))
    assert a.track_frame == 7
    assert diff > 0.1


def test_wflw_hrnet_tracker_100_frames():
    """configs/wflw_hrnet_jitter.py (HRNetV2-W18, 98 landmarks, the refiner
    and its keypoint stage; random weights): torch vs ONNX over 100 frames,
    state carried. At 64x64 input (16x16 maps) instead of 256x256 to fit
    the suite's time budget (the same graph at a quarter of the side;
    256x256 with the same code, by hand: 7.6e-5 px refined, 3.3e-5 px raw
    over 100 frames, 67 s)."""
    model = _refiner_model(
        WFLW, cfg_options={
            'model.head.decoder.input_size': (64, 64),
            'model.head.decoder.heatmap_size': (16, 16),
            'test_dataloader.dataset.pipeline.2.input_size': (64, 64)
        })
    assert model.head.decoder.input_size == (64, 64)
    frames, boxes = synthetic_clip(100, faces=1)
    with _tmp_onnx() as path:
        export_onnx(model, path)
        worst = track_agreement(model, init_model(path, onnx_threads=2),
                                frames, boxes)
    assert worst['frames'] == 100
    assert worst['keypoints'] <= TOL and worst['raw_keypoints'] <= TOL


def test_plain_model_export_same_interface(tmp_path):
    """An MMPose model without refiner (PDC decoder): no state inputs, the
    same outputs; agrees with the torch model through the tracker."""
    model = init_model(
        DEMO_IMAGE, None, device='cpu',
        cfg_options=dict(model=dict(head=dict(decoder=dict(
            type='PDCCodec', pdc_threshold=0.))))).eval()
    path = str(tmp_path / 'plain.onnx')
    step = export_onnx(model, path)
    meta = read_metadata(path)
    assert not meta['stateful'] and meta['state_spec'] == {}
    assert step.input_names == ['crop', 'crop_affine']
    assert meta['input_names'] == ['crop']  # the graph does not use it
    frames, boxes = synthetic_clip(5, faces=2)
    worst = track_agreement(model, init_model(path, onnx_threads=1), frames,
                            boxes)
    assert worst['keypoints'] <= TOL


def _keypoint_stage_model(config=DEMO, seed=0, keypoint_filter=None):
    """Random weights (maps lifted, as _refiner_model), the keypoint
    stage's MLP perturbed, the map stage left at its zero init (an
    identity, as configs/demo/real_jitter.py keeps it)."""
    torch.manual_seed(seed)
    options = copy.deepcopy(PDC0)
    if keypoint_filter is not None:
        options['model']['head']['keypoint_filter'] = keypoint_filter
    model = init_model(config, None, device='cpu',
                       cfg_options=options).eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.head.base_head.final_layer.bias += 1.
        for p in model.head.keypoint_filter.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.1)
    return model


def test_map_stage_is_identity_only_when_it_adds_nothing():
    head = _keypoint_stage_model().head
    assert head.map_stage_is_identity()
    # the default real-face model's config keeps its map stage at that init
    real = init_model(osp.join(ROOT, 'configs/demo/real_jitter.py'), None,
                      device='cpu')
    assert real.head.map_stage_is_identity()
    frozen = real.cfg.model.frozen_modules
    assert all(f'head.{k}' in frozen for k in ('cell', 'out_proj',
                                               'input_gain'))
    assert not any(p.requires_grad for n, p in real.head.named_parameters()
                   if not n.startswith('keypoint_filter.'))
    for name in ('out_proj.bias', 'input_gain'):
        other = copy.deepcopy(head)
        with torch.no_grad():
            dict(other.named_parameters())[name].add_(1e-3)
        assert not other.map_stage_is_identity(), name
    gated = init_model(DEMO, None, device='cpu', cfg_options=dict(
        model=dict(head=dict(memory='gated')))).head
    assert not gated.map_stage_is_identity()


def test_identity_map_stage_skipped_in_torch_and_in_the_graph(tmp_path):
    """The skip changes nothing: the torch model that skips the identity
    map stage tracks like one forced through it (same landmarks, 30
    frames, two faces, moving boxes), and its export has no map-stage
    state, only the keypoint stage's, and agrees with torch ≤ 1e-3 px over
    100 frames."""
    model = _keypoint_stage_model()
    forced = copy.deepcopy(model)
    forced.head.map_stage_is_identity = lambda: False
    frames, boxes = synthetic_clip(100, faces=2)
    worst = track_agreement(model, forced, frames[:30], boxes[:30])
    assert worst['keypoints'] == 0. and worst['raw_keypoints'] == 0.
    path = str(tmp_path / 'identity.onnx')
    step = export_onnx(model, path)
    meta = read_metadata(path)
    assert meta['stateful']
    assert sorted(meta['state_spec']) == [
        'filter_count', 'filter_cov', 'filter_innovation', 'filter_position',
        'filter_velocity'
    ]
    assert step.output_names[4:] == [
        f'new_state_filter_{f}'
        for f in ('position', 'velocity', 'cov', 'count', 'innovation')
    ]
    worst = track_agreement(model, init_model(path, onnx_threads=1), frames,
                            boxes)
    assert worst['frames'] == 100
    assert worst['keypoints'] <= TOL and worst['raw_keypoints'] <= TOL
    # the keypoint stage acts: the refined landmarks are not the raw ones
    tracker = StableFaceTracker(init_model(path, onnx_threads=1))
    moved = 0.
    for frame, box in zip(frames[:5], boxes[:5]):
        for face in tracker.update(frame, box):
            moved = max(moved, float(np.abs(face.keypoints -
                                            face.raw_keypoints).max()))
    assert moved > 0.01


def test_face_frame_keypoint_stage_exported(tmp_path):
    """AdaptiveKalmanFilter(frame='face'): its state has K + 2 rows (shape,
    then pose) in the graph, and the export tracks like torch ≤ 1e-3 px
    over 100 frames, two faces, moving boxes."""
    model = _keypoint_stage_model(keypoint_filter=dict(
        type='AdaptiveKalmanFilter', frame='face'))
    frames, boxes = synthetic_clip(100, faces=2)
    path = str(tmp_path / 'face.onnx')
    export_onnx(model, path)
    spec = read_metadata(path)['state_spec']
    k = model.head.keypoint_filter.num_rows(68) - 2
    assert k == 68 and tuple(spec['filter_position'][0]) == (70, 2)
    worst = track_agreement(model, init_model(path, onnx_threads=1), frames,
                            boxes)
    assert worst['frames'] == 100
    assert worst['keypoints'] <= TOL and worst['raw_keypoints'] <= TOL


def test_crop_offset_keypoint_stage_exported(tmp_path):
    """AdaptiveKalmanFilter(crop_offset=True): the offset's running mean is
    one more state in the graph (and only then), the crop centre comes
    from the crop's affine, and the export tracks like torch ≤ 1e-3 px
    over 100 frames, two faces, moving boxes."""
    model = _keypoint_stage_model(keypoint_filter=dict(
        type='AdaptiveKalmanFilter', crop_offset=True))
    with torch.no_grad():
        model.head.keypoint_filter.crop_gain.copy_(torch.tensor([0.1, 0.3]))
    frames, boxes = synthetic_clip(100, faces=2)
    path = str(tmp_path / 'crop_offset.onnx')
    export_onnx(model, path)
    spec = read_metadata(path)['state_spec']
    assert tuple(spec['filter_offset'][0]) == (2, )
    worst = track_agreement(model, init_model(path, onnx_threads=1), frames,
                            boxes)
    assert worst['frames'] == 100
    assert worst['keypoints'] <= TOL and worst['raw_keypoints'] <= TOL


def test_msra_decoder_is_refused():
    model = init_model(DEMO_IMAGE, None, device='cpu').eval()
    with pytest.raises(ValueError, match="decoder.type='PDCCodec'"):
        StatefulStep(model)


def test_flip_test_is_refused():
    model = init_model(DEMO, None, device='cpu',
                       cfg_options=dict(model=dict(test_cfg=dict(
                           flip_test=True)))).eval()
    with pytest.raises(ValueError, match='flip_test=False'):
        StatefulStep(model)


def test_onnx_file_without_metadata_is_refused(tmp_path):
    path = str(tmp_path / 'bare.onnx')
    torch.onnx.export(torch.nn.Linear(2, 2), (torch.zeros(1, 2), ), path,
                      dynamo=False)
    with pytest.raises(ValueError, match='export_onnx.py CONFIG CKPT'):
        read_metadata(path)


def test_init_model_onnx_refuses_checkpoint(demo):
    _, _, path = demo
    with pytest.raises(ValueError, match='takes no checkpoint'):
        init_model(path, 'x.pth')
    with pytest.raises(FileNotFoundError, match='missing.onnx'):
        init_model('missing.onnx')


class _tmp_onnx:

    def __enter__(self):
        import tempfile
        self.dir = tempfile.TemporaryDirectory()
        return osp.join(self.dir.name, 'model.onnx')

    def __exit__(self, *exc):
        self.dir.cleanup()


# ------------------------------------------------------- real-time loop
class _CountingDetector:

    def __init__(self, boxes):
        self.boxes, self.calls, self.index = boxes, 0, 0

    def __call__(self, frame):
        self.calls += 1
        return self.boxes[self.index]


def _loop_frames(frames, detector):
    for i, frame in enumerate(frames):
        detector.index = i
        yield i, frame


class _StubTracker:
    """StableFaceTracker's interface: one face whose landmarks are a fixed
    square, scores per frame from ``scores``; records the boxes given."""
    track_by = 'landmarks'

    def __init__(self, scores):
        self.scores, self.given, self.frame = scores, [], 0

    def reset(self):
        pass

    def update(self, frame, boxes=None):
        from mmstable.apis import TrackResult
        self.given.append(None if boxes is None else np.asarray(boxes))
        kpts = np.array([[10., 20.], [50., 20.], [30., 60.]], np.float32)
        score = self.scores[self.frame]
        self.frame += 1
        return [TrackResult(0, kpts, np.full(3, score), None, None, 0)]


def test_realtime_loop_detector_only_when_needed():
    """Frames 0-5: the detector runs at frame 0 only, then the crop is the
    landmark box; the score drops at frame 3 (0.1 < 0.3): the detector runs
    at frame 4 (the next one)."""
    from mmstable.deploy import RealtimeFaceLoop
    scores = [0.9, 0.9, 0.9, 0.1, 0.9, 0.9]
    tracker = _StubTracker(scores)
    detector = _CountingDetector([np.array([[0., 0., 80., 80.]])] * 6)
    loop = RealtimeFaceLoop(tracker, detector, score_thr=0.3)
    frames = np.zeros((6, 100, 100, 3), np.uint8)
    stats = loop.run(_loop_frames(frames, detector))
    assert detector.calls == stats.detector_runs == 2
    assert stats.processed == 6 and stats.dropped == 0
    assert len(stats.latencies) == 6
    landmark_box = [10., 20., 50., 60.]
    for i in (1, 2, 3, 5):
        np.testing.assert_array_equal(tracker.given[i], [landmark_box])
    for i in (0, 4):
        np.testing.assert_array_equal(tracker.given[i], [[0., 0., 80., 80.]])


def test_realtime_loop_redetects_every_n():
    from mmstable.deploy import RealtimeFaceLoop
    tracker = _StubTracker([0.9] * 7)
    detector = _CountingDetector([np.array([[0., 0., 80., 80.]])] * 7)
    loop = RealtimeFaceLoop(tracker, detector, redetect_every=3)
    stats = loop.run(_loop_frames(np.zeros((7, 100, 100, 3), np.uint8),
                                  detector))
    assert stats.detector_runs == 3  # frames 0, 3, 6


def test_realtime_loop_drops_late_frames(demo):
    """A camera at 10 000 fps delivers faster than a step: frames whose
    successor has arrived are dropped; every frame is processed or
    dropped."""
    from mmstable.deploy import RealtimeFaceLoop
    _, _, path = demo
    frames, boxes = synthetic_clip(12, faces=1)
    detector = _CountingDetector(boxes)
    loop = RealtimeFaceLoop(
        StableFaceTracker(init_model(path, onnx_threads=1),
                          track_by='landmarks'), detector)
    stats = loop.run(_loop_frames(frames, detector), fps=10000.)
    assert stats.processed + stats.dropped == 12
    assert stats.dropped >= 6 and stats.processed >= 1


def test_realtime_loop_needs_landmark_tracking(demo):
    from mmstable.deploy import RealtimeFaceLoop
    _, _, path = demo
    with pytest.raises(ValueError, match="track_by='landmarks'"):
        RealtimeFaceLoop(StableFaceTracker(init_model(path)), lambda f: [])


def test_demo_video_realtime_with_onnx(demo, tmp_path):
    """tools/demo_video.py --realtime on an exported model: JSON of the
    processed frames, fps and latency returned."""
    import importlib.util
    import json

    import cv2
    _, _, path = demo
    frames, boxes = synthetic_clip(10, faces=1)
    video = str(tmp_path / 'face.mp4')
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*'mp4v'), 25,
                             frames.shape[2:0:-1])
    for frame in frames:
        writer.write(frame)
    writer.release()
    box_file = tmp_path / 'boxes.json'
    box_file.write_text(json.dumps(boxes.tolist()))
    spec = importlib.util.spec_from_file_location(
        'demo_video', osp.join(ROOT, 'tools', 'demo_video.py'))
    demo_video = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo_video)
    out = demo_video.main([
        video, '--config', path, '--out-dir',
        str(tmp_path / 'out'), '--bbox-file',
        str(box_file), '--realtime', '--fps', '25', '--threads', '1'
    ])
    assert out['num_frames'] + out['dropped'] == 10
    assert out['latency_p95_ms'] >= out['latency_median_ms'] > 0
    with open(out['json']) as f:
        record = json.load(f)
    assert record['realtime'] and len(record['frames']) == out['num_frames']


def test_onnx_track_states_continuation_rule():
    """As ConvLSTMRefineHead: a face continues its track's state iff its
    frame_id follows the track's last one by 1..max_frame_gap; a track
    absent from a call is dropped; no video_id: initial state."""
    from mmstable.deploy import OnnxTrackStates
    spec = {'state_x': ((2, ), 'float32', 'zeros')}
    zeros = {'state_x': np.zeros((1, 2), np.float32)}
    store = OnnxTrackStates(spec, zeros, max_frame_gap=2)
    keys = [('a', 0), ('b', 0)]
    assert store.gather(keys)['state_x'].tolist() == [[0, 0], [0, 0]]
    store.scatter(keys, {'state_x': np.array([[1, 1], [2, 2]], np.float32)})
    # a: gap 2 (continues), b: gap 3 (resets), None: no track
    got = store.gather([('a', 2), ('b', 3), None])['state_x']
    assert got.tolist() == [[1, 1], [0, 0], [0, 0]]
    store.scatter([('a', 2)], {'state_x': np.array([[5, 5]], np.float32)})
    # b was absent from the last call: dropped
    got = store.gather([('a', 3), ('b', 1)])['state_x']
    assert got.tolist() == [[5, 5], [0, 0]]
    store.reset_state()
    assert store.gather([('a', 4)])['state_x'].tolist() == [[0, 0]]


# ---------------------------------------------------------------- the cost
def _ort_run(path, feeds):
    import onnxruntime as ort
    sess = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    return sess.run(None, {k: v.numpy() for k, v in feeds.items()})


class _Ops(torch.nn.Module):
    """The ops export_onnx maps to its own symbolics."""

    def __init__(self, threshold=True):
        super().__init__()
        self.threshold = threshold  # PyTorch's exporter has no threshold

    def forward(self, maps, theta):
        import torch.nn.functional as F
        grid = F.affine_grid(theta, list(maps.shape), align_corners=True)
        warped = F.grid_sample(maps, grid, mode='bilinear',
                               padding_mode='zeros', align_corners=True)
        n, c, h, w = maps.shape
        weight = torch.arange(1., 7.).view(2, 3)
        tied = torch.einsum('ngchw,oc->ngohw', maps.view(n, 2, 3, h, w),
                            weight)
        clean = torch.nan_to_num(maps, nan=0., posinf=0., neginf=0.)
        if not self.threshold:
            return warped, tied, clean
        peak, where = maps.flatten(2).max(-1)
        return (warped, tied, clean, F.threshold(clean, 0.5, 0.),
                F.threshold(maps, 0.5, 0.), maps[0:maps.shape[0]] * 2,
                maps[0:1] * 3, peak, where, maps.max(1, keepdim=True)[1],
                clean.flatten(-2).argmax(dim=-1))


def test_export_symbolics_match_torch(tmp_path):
    """grid_sample as row gathers (samples inside, across the border and
    outside the map, and a NaN grid), TiedGroupConv1x1's einsum as MatMul,
    nan_to_num as one Where, PDC's threshold as a product on cleaned maps
    (Where on others), max(dim) / argmax(dim) as TopK (a NaN is the
    maximum, the first of equal maxima wins: an all-zero map): ONNX Runtime
    equals torch; a full-range Slice is dropped, a partial one kept; the
    default symbolics are back after the export."""
    import onnx

    from mmstable.deploy.onnx_export import (_drop_full_slices,
                                             _export_symbolics, OPSET)
    gen = torch.Generator().manual_seed(0)
    maps = torch.randn(3, 6, 5, 7, generator=gen)
    maps[0, 1, 2, 3], maps[1, 2, 0, 0] = float('nan'), float('inf')
    maps[1, 3, 4, 6] = -float('inf')
    maps[2, 4] = 0.
    theta = torch.tensor([[[0.9, 0.3, 0.4], [-0.2, 1.2, -0.5]],
                          [[1.5, 0., 0.9], [0., 1.5, 0.]],
                          [[1., 0., 0.], [0., float('nan'), 0.]]])
    path = str(tmp_path / 'ops.onnx')
    with _export_symbolics():
        torch.onnx.export(_Ops(), (maps, theta), path, opset_version=OPSET,
                          input_names=['maps', 'theta'],
                          dynamic_axes={'maps': {0: 'N'}, 'theta': {0: 'N'}},
                          dynamo=False)
    proto = onnx.load(path)
    assert _drop_full_slices(proto) == 1
    onnx.save(proto, path)
    ops = [n.op_type for n in proto.graph.node]
    assert 'GridSample' not in ops and 'Einsum' not in ops
    assert 'ArgMax' not in ops and ops.count('TopK') == 3
    assert ops.count('IsNaN') == 0
    assert [n.op_type for n in proto.graph.node
            if 'maps' in n.input[:1]].count('Slice') == 1
    ref = _Ops()(maps, theta)
    out = _ort_run(path, dict(maps=maps, theta=theta))
    for r, o in zip(ref, out):
        assert o.shape == tuple(r.shape)
        np.testing.assert_allclose(o, r.numpy(), atol=1e-5, rtol=1e-5,
                                   equal_nan=True)
    assert out[8][0, 1] == 2 * 7 + 3  # the NaN
    assert (out[8][2, 4] == 0).all() and (out[10][2, 4] == 0).all()
    # the registry is PyTorch's again (GridSample, Einsum, IsNaN)
    plain = str(tmp_path / 'plain.onnx')
    torch.onnx.export(_Ops(threshold=False), (maps, theta), plain,
                      opset_version=OPSET, dynamo=False)
    ops = [n.op_type for n in onnx.load(plain).graph.node]
    assert 'GridSample' in ops and 'Einsum' in ops and 'IsNaN' in ops


def test_profile_onnx_parts(tmp_path):
    """profile_onnx attributes every kernel's time to a part of the step
    (the sums agree) and finds the refiner's parts in the demo graph."""
    from mmstable.deploy.profile import PARTS, profile_onnx
    model = _refiner_model(DEMO)
    path = str(tmp_path / 'demo_src.onnx')
    export_onnx(model, path, keep_source=True)
    res = profile_onnx(path, runs=2, warmup=1)
    assert set(res['by_part']) <= set(PARTS)
    for part in ('image model', 'normalise', 'PDC raw', 'PDC refined',
                 'warp: keypoints', 'warp: motion', 'warp: resample',
                 'ConvLSTM', 'Δ + upsample', 'keypoint stage'):
        assert res['by_part'].get(part, 0) > 0, part
    assert sum(res['by_part'].values()) == pytest.approx(res['kernel_ms'])
    assert sum(res['by_op'].values()) == pytest.approx(res['kernel_ms'])
    assert res['by_part']['image model'] > res['by_part']['ConvLSTM']
    assert 0 < res['shape_ops_nodes'] < res['nodes']


def test_benchmark_models_time_what_they_ship(monkeypatch):
    """tools/benchmark_streaming.py: the default real-face model's step
    skips its identity map stage; the demo's and HRNet's untrained
    refiners are timed with their map stage (a trained one's cost).
    Untrained weights: a checkpoint of an earlier ``make demo`` in the
    working copy is not what this test is about."""
    import runpy

    import mmstable.apis.default_model as default_model

    def not_built():
        raise FileNotFoundError('no default real-face model (test)')

    monkeypatch.setattr(default_model, 'default_face_model', not_built)
    tool = runpy.run_path(osp.join(ROOT, 'tools', 'benchmark_streaming.py'))
    args = tool['parse_args']([])
    assert args.models == ['real', 'hrnet'] and args.e2e_model == 'real'
    args.real_checkpoint = None
    _, skipped = tool['build_model']('real', True, args)
    assert skipped
    model, skipped = tool['build_model']('demo', True, args)
    assert not skipped
    assert StatefulStep(model).refiner_fields[:2] == ['h', 'c']
    plain, skipped = tool['build_model']('real', False, args)
    assert not skipped and not hasattr(plain.head, 'refine')


def test_nonrigid_prediction_exported(tmp_path):
    """nonrigid_prediction: the refined history (two frames of PDC-decoded
    output landmarks, the running mean of their non-rigid motion) is state
    of the graph, and the export tracks like torch ≤ 1e-3 px over 100
    frames, two faces, moving boxes."""
    options = copy.deepcopy(PDC0)
    options['model']['head'].update(nonrigid_prediction=1.,
                                    nonrigid_smoothing=0.5)
    model = _refiner_model(DEMO, cfg_options=options)
    frames, boxes = synthetic_clip(100, faces=2)
    path = str(tmp_path / 'nonrigid.onnx')
    export_onnx(model, path, config_name=DEMO)
    spec = read_metadata(path)['state_spec']
    assert tuple(spec['refiner_refined'][0]) == (2, 68, 2)
    assert 'refiner_refined_count' in spec
    assert tuple(spec['refiner_refined_velocity'][0]) == (68, 2)
    worst = track_agreement(model, init_model(path, onnx_threads=1), frames,
                            boxes)
    assert worst['frames'] == 100
    assert worst['keypoints'] <= TOL and worst['raw_keypoints'] <= TOL
