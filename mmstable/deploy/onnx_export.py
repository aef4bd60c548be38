"""Export :class:`~mmstable.deploy.StatefulStep` to ONNX.

The graph is traced with PyTorch's TorchScript exporter (``dynamo=False``):
the dynamo exporter refuses the data-dependent branches of PDC and of the
state warp, and needs onnxscript. Three aten ops have no ONNX symbolic there;
they are mapped, only while :func:`export_onnx` runs
(:func:`_export_symbolics`), to:

- ``aten::threshold`` (PDC's kept mass, ``F.threshold(x, t, 0)``):
  ``Where(x > t, x, v)``, its definition;
- ``aten::linalg_inv`` (the 3×3 crop and warp matrices):
  ``com.microsoft::Inverse``, an ONNX Runtime contrib op (the graph then
  needs ONNX Runtime, or another runtime with that op);
- ``aten::hypot`` (the similarity's scale clamp): ``Sqrt(a² + b²)``.

Dynamic batch: the exporter turns a few shapes of the refiner's cell into
constants (the size of a tensor behind ``Tensor.unflatten`` is read from the
trace). :func:`_free_batch` traces twice (batch 2 and 3) and turns every
``Reshape`` whose shape constant differs between the two gets its batch-2
output shape with ``-1`` at the element that differs; any other constant
that depends on the batch is refused with an error.

The model file carries, as metadata ``mmstable`` (JSON), what a runtime
needs besides the graph: the input size, the state spec, the test pipeline,
a JSON-able ``dataset_meta`` and the source config / checkpoint names
(:func:`read_metadata`).
"""
import contextlib
import json
import os
import os.path as osp
import tempfile
from typing import Optional

import numpy as np
import torch
from torch import nn

from .stateful_step import StatefulStep

__all__ = ['export_onnx', 'read_metadata', 'OPSET']

OPSET = 20  # AffineGrid (the state warp) needs 20
METADATA_KEY = 'mmstable'


# outputs of _nan_to_num in the graph being exported (Value.unique()):
# finite by construction
_FINITE = set()


def _threshold(g, x, threshold, value):
    """``F.threshold``: ``x <= t ? value : x`` (so NaN stays NaN, as in
    PyTorch)."""
    if x.unique() in _FINITE and _maybe_const(value, 'f') == 0.:
        # x finite: x · [x > t] is exactly that (up to the sign of zeros,
        # which no sum sees) and 5x faster in ONNX Runtime than its Where
        # on PDC's maps
        keep = g.op('Greater', x, threshold)
        return g.op('Mul', x, g.op('CastLike', keep, x))
    drop = g.op('LessOrEqual', x, threshold)
    return g.op('Where', drop, g.op('CastLike', value, x), x)


def _maybe_const(value, desc):
    from torch.onnx._internal.torchscript_exporter import symbolic_helper
    return symbolic_helper._maybe_get_const(value, desc)


def _hypot(g, a, b):
    return g.op('Sqrt', g.op('Add', g.op('Mul', a, a), g.op('Mul', b, b)))


def _inverse(g, x):
    return g.op('com.microsoft::Inverse', x).setType(x.type())


def _const(g, value, dtype=torch.float32):
    return g.op('Constant', value_t=torch.tensor(value, dtype=dtype))


def _nan_to_num(g, x, nan, posinf, neginf):
    """``nan_to_num(x, 0, 0, 0)`` (PDC's cleaning) as ``Where(|x| < inf,
    x, 0)``: 3 ops instead of the default's 12 (with float64 casts of the
    whole map); the same values (NaN and ±inf fail ``|x| < inf``)."""
    from torch.onnx._internal.torchscript_exporter import (symbolic_helper,
                                                           symbolic_opset10)
    args = [_maybe_const(v, 'f') for v in (nan, posinf, neginf)]
    if any(a is None or not isinstance(a, float) or a != 0. for a in args) \
            or not symbolic_helper._is_fp(x):
        return symbolic_opset10.nan_to_num(g, x, nan, posinf, neginf)
    finite = g.op('Less', g.op('Abs', x),
                  g.op('CastLike', _const(g, float('inf')), x))
    out = g.op('Where', finite, x, g.op('CastLike', _const(g, 0.), x))
    _FINITE.add(out.unique())
    return out


def _einsum(g, equation, tensor_list, path=None):
    """``TiedGroupConv1x1``'s ``einsum('ngchw,oc->ngohw')`` as one MatMul
    (ONNX Runtime's Einsum runs it 5x slower); other equations: Einsum."""
    from torch.onnx._internal.torchscript_exporter import (symbolic_helper,
                                                           symbolic_opset12)
    eq = _maybe_const(equation, 's')
    tensors = symbolic_helper._unpack_list(tensor_list)
    if eq != 'ngchw,oc->ngohw':
        return symbolic_opset12.einsum(g, equation, tensor_list, path)
    x, w = tensors
    i64 = torch.int64
    shape = g.op('Shape', x)
    flat = g.op('Reshape', x, _const(g, [0, 0, 0, -1], i64))
    out = g.op('MatMul', w, flat)  # (o, c) @ (n, g, c, h·w)
    size = g.op('Concat', g.op('Slice', shape, _const(g, [0], i64),
                               _const(g, [2], i64)),
                g.op('Slice', g.op('Shape', w), _const(g, [0], i64),
                     _const(g, [1], i64)),
                g.op('Slice', shape, _const(g, [3], i64),
                     _const(g, [5], i64)), axis_i=0)
    return g.op('Reshape', out, size)


def _grid_sampler(g, x, grid, mode, padding_mode, align_corners):
    """The state warp's ``grid_sample`` (bilinear, zeros padding, pixel
    centres at the corners: ``warp_maps``) as 4 row gathers of the
    channels-last maps and their weighted sum, with PyTorch's own weights
    (``grid_sampler_2d`` CPU kernel: ``nw = (x_se - x)(y_se - y)`` ...).
    ONNX Runtime's GridSample recomputes each pixel's corners and weights
    per channel (1.2 ms of the demo's step for 272 maps of 16x16). Other
    modes: GridSample."""
    from torch.onnx._internal.torchscript_exporter import (symbolic_helper,
                                                           symbolic_opset20)
    args = [_maybe_const(v, t) for v, t in
            ((mode, 'i'), (padding_mode, 'i'), (align_corners, 'b'))]
    if args != [0, 0, True] or symbolic_helper._get_tensor_rank(x) != 4:
        return symbolic_opset20._grid_sampler(g, x, grid, mode, padding_mode,
                                              align_corners)
    i64 = torch.int64
    shape = g.op('Shape', x)

    def dim(k, dtype=torch.float32):
        v = g.op('Gather', shape, _const(g, k, i64), axis_i=0)
        return v if dtype == i64 else g.op('CastLike', v, grid)

    n, h, w = dim(0, i64), dim(2), dim(3)
    one = _const(g, 1.)

    def coord(k, size):  # ((g + 1) / 2) * (size - 1), as PyTorch
        v = g.op('Gather', grid, _const(g, k, i64), axis_i=3)
        return g.op('Mul', g.op('Div', g.op('Add', v, one), _const(g, 2.)),
                    g.op('Sub', size, one))

    def inside(v, size):
        return g.op('And', g.op('GreaterOrEqual', v, _const(g, 0.)),
                    g.op('Less', v, size))

    ix, iy = coord(0, w), coord(1, h)  # (N, Ho, Wo)
    x0, y0 = g.op('Floor', ix), g.op('Floor', iy)
    x1, y1 = g.op('Add', x0, one), g.op('Add', y0, one)
    # the maps as rows (N·H·W, C) and a row of zeros, which the corners
    # outside the map read (PyTorch skips them: a NaN or inf of the map
    # must not enter through a zero weight)
    rows = g.op('Pad', g.op('Flatten', g.op(
        'Transpose', x, perm_i=[0, 2, 3, 1]), axis_i=3),
                _const(g, [0, 0, 1, 0], i64))
    size = g.op('Mul', dim(2, i64), dim(3, i64))
    outside = g.op('Mul', n, size)  # the zero row
    base = g.op('Mul', g.op('Range', _const(g, 0, i64), n, _const(g, 1, i64)),
                size)  # each track's first row
    base = g.op('Reshape', base, _const(g, [-1, 1, 1], i64))
    out = None
    # nw, ne, sw, se: (corner x, corner y, weight factors) as PyTorch
    for cx, cy, wx, wy in ((x0, y0, (x1, ix), (y1, iy)),
                           (x1, y0, (ix, x0), (y1, iy)),
                           (x0, y1, (x1, ix), (iy, y0)),
                           (x1, y1, (ix, x0), (iy, y0))):
        valid = g.op('And', inside(cx, w), inside(cy, h))
        # weight · [inside]: 0 outside, NaN for a NaN grid (as PyTorch)
        weight = g.op('Mul', g.op('Mul', g.op('Sub', *wx), g.op('Sub', *wy)),
                      g.op('CastLike', valid, grid))
        index = g.op('Add', g.op('Mul', cy, w), cx)
        index = g.op('Cast', g.op('Where', valid, index, _const(g, 0.)),
                     to_i=7)  # INT64
        index = g.op('Where', valid, g.op('Add', index, base), outside)
        value = g.op('Gather', rows, index, axis_i=0)
        term = g.op('Mul', value, g.op('Unsqueeze', weight,
                                       _const(g, [3], i64)))
        out = term if out is None else g.op('Add', out, term)
    return g.op('Transpose', out, perm_i=[0, 3, 1, 2])


def _topk1(g, x, dim, keepdim):
    """Value and first index of the maximum along ``dim`` as one TopK
    (ONNX Runtime's ArgMax is 1.4x slower than TopK, and ReduceMax +
    ArgMax read the maps twice). TopK(1) picks the first maximum, and a NaN
    as the maximum, as PyTorch does."""
    i64 = torch.int64
    values, indices = g.op('TopK', x, _const(g, [1], i64), axis_i=dim,
                           largest_i=1, sorted_i=1, outputs=2)
    if not keepdim:
        axes = _const(g, [dim], i64)
        values = g.op('Squeeze', values, axes)
        indices = g.op('Squeeze', indices, axes)
    return values, indices


def _max(g, x, dim_or_y=None, keepdim=None):
    """``torch.max(x, dim, keepdim)`` as :func:`_topk1`; the other forms
    (``max(x)``, ``max(x, y)``): PyTorch's."""
    from torch.onnx._internal.torchscript_exporter import (symbolic_helper,
                                                           symbolic_opset18)
    dim = _maybe_const(dim_or_y, 'i') if keepdim is not None else None
    if not isinstance(dim, int) or symbolic_helper._is_tensor_list(x):
        return symbolic_opset18.max(g, x, dim_or_y, keepdim)
    return _topk1(g, x, dim, bool(_maybe_const(keepdim, 'b')))


def _argmax(g, x, dim, keepdim):
    """``argmax(x, dim)`` as the index of :func:`_topk1`; ``dim=None``:
    PyTorch's."""
    from torch.onnx._internal.torchscript_exporter import symbolic_opset12
    axis = _maybe_const(dim, 'i')
    if not isinstance(axis, int):
        return symbolic_opset12.argmax(g, x, dim, keepdim)
    return _topk1(g, x, axis, bool(_maybe_const(keepdim, 'b')))[1]


@contextlib.contextmanager
def _export_symbolics():
    """Register the symbolics above for the duration of an export only
    (PyTorch's registry is process-wide)."""
    from torch.onnx import (register_custom_op_symbolic,
                            unregister_custom_op_symbolic)
    ops = {
        'aten::threshold': _threshold,
        'aten::linalg_inv': _inverse,
        'aten::hypot': _hypot,
        'aten::nan_to_num': _nan_to_num,
        'aten::einsum': _einsum,
        'aten::grid_sampler': _grid_sampler,
        'aten::max': _max,
        'aten::argmax': _argmax,
    }
    for name, fn in ops.items():
        register_custom_op_symbolic(name, fn, OPSET)
    _FINITE.clear()
    try:
        yield
    finally:
        _FINITE.clear()
        for name in ops:
            unregister_custom_op_symbolic(name, OPSET)


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.generic, )):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


@contextlib.contextmanager
def _quiet_stdout():
    """Silence file descriptor 1 (the exporter's C++ log of the graph,
    written with ``verbose=True``, the only way to keep the source stacks)."""
    import sys
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, 'w') as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _trace(step: StatefulStep,
           out_file: str,
           batch_size: int,
           keep_source: bool = False) -> dict:
    w, h = step.input_size
    gen = torch.Generator().manual_seed(0)
    crop = torch.rand(batch_size, 3, h, w, generator=gen) * 255
    affine = torch.eye(3).repeat(batch_size, 1, 1)
    args = (crop, affine, *step.zero_state(batch_size))
    names = step.input_names + step.output_names
    quiet = _quiet_stdout() if keep_source else contextlib.nullcontext()
    with _export_symbolics(), torch.no_grad(), quiet:
        torch.onnx.export(
            step, args, out_file, input_names=step.input_names,
            output_names=step.output_names,
            dynamic_axes={n: {0: 'N'} for n in names}, opset_version=OPSET,
            dynamo=False, verbose=keep_source)
    return {n: a.numpy() for n, a in zip(step.input_names, args)}


def _free_batch(proto, other, feeds: dict) -> int:
    """Make ``proto`` (traced at batch 2) batch-free using ``other`` (the
    same graph traced at batch 3): a Reshape whose shape constant differs
    between the two gets, as its shape, the output shape it has at batch 2
    (ONNX Runtime run on ``feeds``) with ``-1`` at the one element that
    differs. Returns how many were changed."""
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper
    nodes, others = list(proto.graph.node), list(other.graph.node)
    if [n.op_type for n in nodes] != [n.op_type for n in others]:
        raise RuntimeError(
            'export_onnx: the graphs traced at two batch sizes differ in '
            'structure; expected the same ops (is there a Python branch on '
            'the batch size in the model?)')
    consumers = {}
    for n in nodes:
        for i, name in enumerate(n.input):
            consumers.setdefault(name, []).append((n, i))
    found = []
    for n, o in zip(nodes, others):
        if n.op_type != 'Constant':
            continue
        a = numpy_helper.to_array(n.attribute[0].t)
        b = numpy_helper.to_array(o.attribute[0].t)
        if a.shape == b.shape and (a == b).all():
            continue
        users = consumers.get(n.output[0], [])
        if (a.shape != b.shape or a.ndim != 1 or (a != b).sum() != 1
                or not users or any(u.op_type != 'Reshape' or i != 1
                                    for u, i in users)):
            raise RuntimeError(
                f'export_onnx: constant {n.output[0]} ({a.tolist()} vs '
                f'{b.tolist()}) depends on the batch and is not a Reshape '
                'shape with one batch-dependent element; expected shapes '
                'computed from the input (x.shape) in the model code.')
        found.append((n, a != b, users))
    if not found:
        return 0
    probe = onnx.ModelProto()
    probe.CopyFrom(proto)
    names = sorted({u.output[0] for _, _, users in found for u, _ in users})
    for name in names:
        probe.graph.output.add().name = name
    session = ort.InferenceSession(probe.SerializeToString(),
                                   providers=['CPUExecutionProvider'])
    shapes = dict(zip(names, (r.shape for r in session.run(names, feeds))))
    for n, diff, users in found:
        (shape, ) = {shapes[u.output[0]] for u, _ in users}
        shape = np.array(shape, dtype=np.int64)
        shape[diff] = -1
        n.attribute[0].t.CopyFrom(numpy_helper.from_array(shape))
    return len(found)


def _drop_full_slices(proto) -> int:
    """Remove each ``Slice`` that keeps all of its input:
    ``x[0:x.shape[0]]`` (PDC's one-chunk ``maps[i:i + step]``), i.e. starts
    ``[0]``, axes ``[0]``, steps ``[1]`` (or absent) and ends
    ``Unsqueeze(Gather(Shape(x), 0), [0])`` of the same ``x``. Its
    consumers read ``x`` instead, so that ONNX Runtime's common
    subexpression elimination merges the two cleanings of the same maps in
    PDC (the kept mass and the argmax fallback). Returns how many."""
    from onnx import numpy_helper
    g = proto.graph
    prod = {o: n for n in g.node for o in n.output}

    def const(name):
        n = prod.get(name)
        if n is None or n.op_type != 'Constant':
            return None
        return numpy_helper.to_array(n.attribute[0].t).tolist()

    def size_of_axis0(name, data):
        n = prod.get(name)
        if n is None or n.op_type != 'Unsqueeze' or const(n.input[1]) != [0]:
            return False
        n = prod.get(n.input[0])
        if n is None or n.op_type != 'Gather' or const(n.input[1]) != 0:
            return False
        n = prod.get(n.input[0])
        return (n is not None and n.op_type == 'Shape'
                and n.input[0] == data and not n.attribute)

    outputs = {o.name for o in g.output}
    alias = {}
    for n in g.node:
        if n.op_type != 'Slice' or n.output[0] in outputs:
            continue
        ins = list(n.input) + [''] * (5 - len(n.input))
        if (const(ins[1]) == [0] and size_of_axis0(ins[2], ins[0])
                and (ins[3] == '' or const(ins[3]) == [0])
                and (ins[4] == '' or const(ins[4]) == [1])):
            alias[n.output[0]] = ins[0]
    if alias:
        keep = [n for n in g.node if not (n.op_type == 'Slice'
                                          and n.output[0] in alias)]
        for n in keep:
            for i, name in enumerate(n.input):
                if name in alias:
                    n.input[i] = alias[name]
        # and the nodes that only fed them (ONNX Runtime warns about
        # unused initializers otherwise)
        while True:
            used = {i for n in keep for i in n.input} | outputs
            live = [n for n in keep if any(o in used for o in n.output)]
            if len(live) == len(keep):
                break
            keep = live
        del g.node[:]
        g.node.extend(keep)
    return len(alias)


def export_onnx(model: nn.Module,
                out_file: str,
                config_name: Optional[str] = None,
                checkpoint_name: Optional[str] = None,
                keep_source: bool = False) -> StatefulStep:
    """Write ``model``'s streaming step to ``out_file`` (dynamic batch N).

    Args:
        model (nn.Module): from :func:`mmstable.apis.init_model` (eval mode,
            CPU).
        out_file (str): the ``.onnx`` file to write.
        config_name, checkpoint_name (str, optional): recorded in the
            metadata.
        keep_source (bool): keep, in each node's ``doc_string``, the
            Python stack that traced it (for :func:`~mmstable.deploy.
            profile.profile_onnx`'s parts; a larger file).

    Returns:
        StatefulStep: the exported module (the torch reference).
    """
    import onnx
    step = StatefulStep(model.cpu().eval()).eval()
    feeds = _trace(step, out_file, 2, keep_source)
    with tempfile.TemporaryDirectory() as tmp:
        _trace(step, osp.join(tmp, 'b3.onnx'), 3)
        other = onnx.load(osp.join(tmp, 'b3.onnx'))
    proto = onnx.load(out_file)
    _free_batch(proto, other, feeds)
    _drop_full_slices(proto)
    pipeline = model.cfg.test_dataloader.dataset.pipeline
    meta = dict(
        version=1,
        input_size=list(step.input_size),
        heatmap_size=list(step.heatmap_size),
        num_keypoints=step.num_keypoints,
        stateful=step.stateful,
        max_frame_gap=int(getattr(model.head, 'max_frame_gap', 1)),
        # per state input: shape per track, dtype, initial value ('zeros',
        # or 'eye' for the refiner's identity affine: TrackState.zeros)
        state_spec={
            k: [list(shape), dtype,
                'eye' if v.ndim == 3 and v.shape[-2:] == (3, 3)
                and bool((v == torch.eye(3)).all()) else 'zeros']
            for (k, (shape, dtype)), v in zip(step.state_spec.items(),
                                              step.zero_state(1))
        },
        # the graph's own inputs: a plain model's graph does not use (and
        # has no) crop_affine
        input_names=[i.name for i in proto.graph.input],
        output_names=step.output_names,
        test_pipeline=_jsonable([dict(p) for p in pipeline]),
        dataset_meta=_jsonable({
            k: v for k, v in (model.dataset_meta or {}).items()
            if k in ('dataset_name', 'num_keypoints', 'flip_indices',
                     'keypoint_id2name', 'sigmas')
        }),
        default_scope=model.cfg.get('default_scope', 'mmpose'),
        config=config_name, checkpoint=checkpoint_name)
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(meta)
    onnx.save(proto, out_file)
    return step


def read_metadata(onnx_file: str) -> dict:
    """The ``mmstable`` metadata of an exported file (see the module
    docstring); ``ValueError`` naming the file when it has none."""
    import onnxruntime as ort
    sess_opts = ort.SessionOptions()
    sess_opts.intra_op_num_threads = 1
    session = ort.InferenceSession(onnx_file, sess_opts,
                                   providers=['CPUExecutionProvider'])
    props = session.get_modelmeta().custom_metadata_map
    if METADATA_KEY not in props:
        raise ValueError(
            f'{onnx_file}: expected an ONNX file written by '
            'tools/deploy/export_onnx.py (metadata "mmstable"); found '
            f'metadata keys {sorted(props)}. Re-export the model with '
            'tools/deploy/export_onnx.py CONFIG CKPT OUT.onnx.')
    return json.loads(props[METADATA_KEY])
