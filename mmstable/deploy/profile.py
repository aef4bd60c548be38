"""Where the time of an exported step goes in ONNX Runtime (issue 13).

:func:`profile_onnx` runs a graph written by :func:`~mmstable.deploy.
export_onnx` with ONNX Runtime's profiler (``SessionOptions.
enable_profiling``) on one track, its state carried from step to step, and
sums the kernel time of every node per op type and per *part* of the step:

- ``image model``: the frozen backbone + heatmap head (MMPose);
- ``normalise``: the data preprocessor's channel swap, mean and std;
- ``PDC raw`` / ``PDC refined``: :func:`mmstable.codecs.pdc_codec._pdc` on
  the frozen model's maps and on the refined ones;
- ``warp: keypoints``: the frozen model's argmax keypoints in image space
  (``ConvLSTMRefineHead._warp_inputs``);
- ``warp: motion``: the similarity fit and ``W_t`` (``motion_matrix``);
- ``warp: resample``: ``warp_maps`` (the affine grid and GridSample);
- ``ConvLSTM``: the pooled input and the cell;
- ``Δ + upsample``: the refiner's output layer (``_delta``);
- ``keypoint stage``: the keypoint filter's step and the crop ↔ image
  transforms around it;
- ``layout (ORT)``: nodes ONNX Runtime inserts itself (NCHWc reorders);
- ``other``: the rest (the step's packing).

A node's part is read from the Python stack the exporter records in its
``doc_string`` when the graph is traced with ``keep_source=True``
(:func:`export_onnx`), falling back to its module scope
(``/backbone/...``) for ONNX Runtime's fused nodes, which keep the name of
the node they replaced. Shape ops (``Shape``, ``Gather`` of a shape,
``Unsqueeze`` ...) are also counted together (``shape ops``).
"""
import collections
import json
import os.path as osp
import re
import tempfile
import time
from typing import Dict, Optional

import numpy as np

__all__ = ['profile_onnx', 'node_parts', 'SHAPE_OPS', 'PARTS']

#: op types that only move or compute shapes / indices
SHAPE_OPS = frozenset({
    'Shape', 'Gather', 'Unsqueeze', 'Squeeze', 'Concat', 'Reshape', 'Slice',
    'Cast', 'Constant', 'ConstantOfShape', 'Expand', 'Range', 'Identity',
    'Size', 'Transpose', 'Split', 'Flatten'
})

PARTS = ('image model', 'normalise', 'PDC raw', 'PDC refined',
         'warp: keypoints', 'warp: motion', 'warp: resample', 'ConvLSTM',
         'Δ + upsample', 'keypoint stage', 'layout (ORT)', 'other')

_FRAME = re.compile(r'^(?P<file>.*)\((?P<line>\d+)\): (?P<fn>\w+)$')
_IMAGE_SCOPES = ('/backbone', '/neck', '/deconv_layers', '/final_layer',
                 '/conv_layers', '/base_head')


def _stack(doc: str):
    """(file basename, line, function) of the recorded stack, innermost
    first."""
    frames = []
    for line in doc.splitlines():
        m = _FRAME.match(line.strip())
        if m:
            frames.append((osp.basename(m['file']), int(m['line']), m['fn']))
    return frames


def _part_of(name: str, frames, pdc_lines) -> str:
    fns = [fn for _, _, fn in frames]
    if name.startswith(_IMAGE_SCOPES) or 'extract_feat' in fns or \
            '_base_forward' in fns:
        return 'image model'
    if '_pdc' in fns:
        line = next(ln for f, ln, fn in frames
                    if f == 'stateful_step.py' and fn == 'forward')
        return 'PDC raw' if line == min(pdc_lines) else 'PDC refined'
    if 'warp_maps' in fns:
        return 'warp: resample'
    if 'motion_matrix' in fns or 'carried_to' in fns:
        return 'warp: motion'
    if '_warp_inputs' in fns:
        return 'warp: keypoints'
    if name.startswith('/cell') or '_avg_pool' in fns:
        return 'ConvLSTM'
    if name.startswith('/out_proj') or '_delta' in fns:
        return 'Δ + upsample'
    if name.startswith('/keypoint_filter') or 'step' in fns:
        return 'keypoint stage'
    if frames and frames[0][0] == 'stateful_step.py':
        return _wrapper_part(frames[0][1])
    return 'other'


_WRAPPER_LINES: Dict[int, str] = {}


def _wrapper_part(line: int) -> str:
    """Parts of :meth:`StatefulStep.forward` by its source lines (read
    once: the lines of the normalisation and of the keypoint stage)."""
    if not _WRAPPER_LINES:
        from . import stateful_step
        with open(stateful_step.__file__) as f:
            src = f.read()
        part = 'other'
        for i, text in enumerate(src.splitlines(), 1):
            if 'pre._channel_conversion' in text:
                part = 'normalise'
            elif 'feats = ' in text:
                part = 'other'
            elif 'inverse = torch.linalg.inv(crop_affine)' in text:
                part = 'keypoint stage'
            elif 'new_state += ' in text:
                part = 'other'
            _WRAPPER_LINES[i] = part
    return _WRAPPER_LINES.get(line, 'other')


def node_parts(proto) -> Dict[str, str]:
    """``{node name: part}`` of an ONNX graph exported with
    ``keep_source=True`` (nodes without a recorded stack: by scope)."""
    stacks = {n.name: _stack(n.doc_string) for n in proto.graph.node}
    pdc_lines = {
        ln
        for frames in stacks.values() if any(fn == '_pdc'
                                             for _, _, fn in frames)
        for f, ln, fn in frames if f == 'stateful_step.py' and fn == 'forward'
    }
    return {
        name: _part_of(name, frames, pdc_lines)
        for name, frames in stacks.items()
    }


def _runtime_part(name: str, parts: Dict[str, str]) -> str:
    """The part of a node in ONNX Runtime's optimised graph: its own name,
    or that of the node a fusion started from (``X_output_0_nchwc``,
    ``X/SomethingFusion``)."""
    if name in parts:
        return parts[name]
    for suffix in ('_output_0_nchwc', '_nchwc'):
        if name.endswith(suffix):
            base = name[:-len(suffix)]
            # the output of node X is named X_output_0: the producer
            cands = [n for n in parts if base.startswith(n)]
            if cands:
                return parts[max(cands, key=len)]
            return 'image model' if base.startswith(_IMAGE_SCOPES) else \
                'other'
    head = name.split('/')
    for i in range(len(head), 1, -1):
        key = '/'.join(head[:i])
        if key in parts:
            return parts[key]
    if name.startswith(('Reorder', 'Squeeze_token', 'Unsqueeze_token')) or \
            '_token_' in name:
        return 'layout (ORT)'
    return 'other'


def default_feeds(session, meta: dict, batch: int = 1, seed: int = 0):
    """Random crops (0..255), identity crop affines and the initial state
    of ``batch`` tracks, by input name."""
    w, h = meta['input_size']
    rng = np.random.default_rng(seed)
    feeds = {}
    for i in session.get_inputs():
        if i.name == 'crop':
            feeds[i.name] = (rng.random((batch, 3, h, w)) * 255).astype(
                np.float32)
        elif i.name == 'crop_affine':
            feeds[i.name] = np.repeat(np.eye(3, dtype=np.float32)[None],
                                      batch, 0)
        else:
            shape, dtype, init = meta['state_spec'][i.name[len('state_'):]]
            value = np.zeros([batch, *shape], dtype)
            if init == 'eye':
                value[:] = np.eye(3)
            feeds[i.name] = value
    return feeds


def profile_onnx(onnx_file: str,
                 runs: int = 100,
                 threads: int = 1,
                 warmup: int = 5,
                 feeds: Optional[dict] = None,
                 fixed_batch: bool = True) -> dict:
    """Profile ``runs`` steps of one track (state carried) in ONNX Runtime.

    Args:
        onnx_file (str): written by :func:`~mmstable.deploy.export_onnx`
            (``keep_source=True`` for the parts; otherwise every node of the
            refiner is ``other``).
        runs (int): profiled steps (after ``warmup`` unprofiled ones).
        threads (int): intra-op threads.
        feeds (dict, optional): the first step's inputs
            (:func:`default_feeds`).
        fixed_batch (bool): fix the batch dimension ``N`` to that of the
            feeds (as :class:`~mmstable.deploy.OnnxTopdownModel` does), so
            that ONNX Runtime folds the shape arithmetic.

    Returns:
        dict: ``median_ms`` (session run, profiler off), ``kernel_ms``
        (sum of kernel times per step, profiler on), ``nodes`` (kernels run
        per step), ``by_op`` / ``by_part`` (ms per step, descending) and
        ``shape_ops_ms``, ``shape_ops_nodes``.
    """
    import onnx
    import onnxruntime as ort

    from .onnx_export import read_metadata
    meta = read_metadata(onnx_file)
    parts = node_parts(onnx.load(onnx_file, load_external_data=False))

    def session(prefix: Optional[str] = None):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        if fixed_batch:
            opts.add_free_dimension_override_by_name('N', batch)
        if prefix:
            opts.enable_profiling = True
            opts.profile_file_prefix = prefix
        return ort.InferenceSession(onnx_file, opts,
                                    providers=['CPUExecutionProvider'])

    batch = len(feeds['crop']) if feeds else 1
    plain = session()
    inputs = dict(feeds or default_feeds(plain, meta))
    names = [o.name for o in plain.get_outputs()]
    for _ in range(warmup):  # the state of a running track
        out = dict(zip(names, plain.run(None, inputs)))
        inputs.update({
            k: out['new_' + k]
            for k in inputs if 'new_' + k in out
        })
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        plain.run(None, inputs)
        times.append(time.perf_counter() - start)

    with tempfile.TemporaryDirectory() as tmp:
        prof = session(osp.join(tmp, 'ort'))
        for _ in range(warmup + runs):
            prof.run(None, inputs)
        path = prof.end_profiling()
        with open(path) as f:
            events = json.load(f)
    # skip the warm-up runs (first-run allocations)
    starts = sorted(e['ts'] for e in events if e.get('name') == 'model_run')
    first = starts[warmup]
    per_node, op_of = collections.defaultdict(float), {}
    for e in events:
        if e.get('cat') == 'Node' and e['name'].endswith(
                '_kernel_time') and e['ts'] >= first:
            name = e['name'][:-len('_kernel_time')]
            per_node[name] += e['dur'] / 1e3 / runs
            op_of[name] = e['args'].get('op_name', '?')
    by_op, by_part = collections.Counter(), collections.Counter()
    shape_ms, shape_nodes = 0., 0
    for name, ms in per_node.items():
        by_op[op_of[name]] += ms
        by_part[_runtime_part(name, parts)] += ms
        if op_of[name] in SHAPE_OPS:
            shape_ms += ms
            shape_nodes += 1
    return dict(
        median_ms=1e3 * float(np.median(times)),
        kernel_ms=sum(per_node.values()),
        nodes=len(per_node),
        by_op=dict(by_op.most_common()),
        by_part=dict(by_part.most_common()),
        shape_ops_ms=shape_ms,
        shape_ops_nodes=shape_nodes)
