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


def _threshold(g, x, threshold, value):
    keep = g.op('Greater', x, threshold)
    return g.op('Where', keep, x, g.op('CastLike', value, x))


def _hypot(g, a, b):
    return g.op('Sqrt', g.op('Add', g.op('Mul', a, a), g.op('Mul', b, b)))


def _inverse(g, x):
    return g.op('com.microsoft::Inverse', x).setType(x.type())


@contextlib.contextmanager
def _export_symbolics():
    """Register the two symbolics above for the duration of an export only
    (PyTorch's registry is process-wide)."""
    from torch.onnx import (register_custom_op_symbolic,
                            unregister_custom_op_symbolic)
    ops = {
        'aten::threshold': _threshold,
        'aten::linalg_inv': _inverse,
        'aten::hypot': _hypot
    }
    for name, fn in ops.items():
        register_custom_op_symbolic(name, fn, OPSET)
    try:
        yield
    finally:
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


def _trace(step: StatefulStep, out_file: str, batch_size: int) -> dict:
    w, h = step.input_size
    gen = torch.Generator().manual_seed(0)
    crop = torch.rand(batch_size, 3, h, w, generator=gen) * 255
    affine = torch.eye(3).repeat(batch_size, 1, 1)
    args = (crop, affine, *step.zero_state(batch_size))
    names = step.input_names + step.output_names
    with _export_symbolics(), torch.no_grad():
        torch.onnx.export(
            step, args, out_file, input_names=step.input_names,
            output_names=step.output_names,
            dynamic_axes={n: {0: 'N'} for n in names}, opset_version=OPSET,
            dynamo=False)
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


def export_onnx(model: nn.Module,
                out_file: str,
                config_name: Optional[str] = None,
                checkpoint_name: Optional[str] = None) -> StatefulStep:
    """Write ``model``'s streaming step to ``out_file`` (dynamic batch N).

    Args:
        model (nn.Module): from :func:`mmstable.apis.init_model` (eval mode,
            CPU).
        out_file (str): the ``.onnx`` file to write.
        config_name, checkpoint_name (str, optional): recorded in the
            metadata.

    Returns:
        StatefulStep: the exported module (the torch reference).
    """
    import onnx
    step = StatefulStep(model.cpu().eval()).eval()
    feeds = _trace(step, out_file, 2)
    with tempfile.TemporaryDirectory() as tmp:
        _trace(step, osp.join(tmp, 'b3.onnx'), 3)
        other = onnx.load(osp.join(tmp, 'b3.onnx'))
    proto = onnx.load(out_file)
    _free_batch(proto, other, feeds)
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
