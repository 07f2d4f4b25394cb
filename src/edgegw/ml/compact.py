"""Smaller ONNX graphs for the same numbers: what skl2onnx writes for a pipeline is one node per
step, and onnxruntime pays a fixed cost per node on every call (~2-5 us each on a Pi-class core,
more than the arithmetic of a 50-row hop).

`compact()` rewrites an exported graph in place:
- the chain of affine steps in front of a tree ensemble (column selection, Scaler, Sub/Add, Mul/Div
  by constants, MatMul by a constant matrix: a StandardScaler + PCA whitening) becomes Sub (the
  Scaler's offsets, so float32 sees small numbers as before), MatMul and Add, with the weights
  worked out in float64;
- a tree ensemble fed by a bare column selection of the input reads those columns itself
  (its feature ids are remapped);
- a scalar Mul right after a TreeEnsembleRegressor that sums its trees goes into the leaf weights.
Whatever does not match is left as it was. Callers check the result against the original
(`edgegw train` does, on its held-out windows).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

_TREES = ("TreeEnsembleRegressor", "TreeEnsembleClassifier")


def compact(proto: onnx.ModelProto) -> onnx.ModelProto:
    """Fold affine preprocessing and column selections into fewer nodes (see the module doc)."""
    g = proto.graph
    x = g.input[0].name
    dim = g.input[0].type.tensor_type.shape.dim
    if len(dim) != 2 or not dim[1].dim_value:
        return proto
    n_in = dim[1].dim_value
    consts = {
        i.name: numpy_helper.to_array(i).astype(np.float64)
        for i in g.initializer
        if i.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.INT64)
    }
    affine: dict[str, tuple[np.ndarray, np.ndarray]] = {x: (np.eye(n_in), np.zeros(n_in))}
    center = np.zeros(n_in)  # subtracted from the input first: the first Scaler's offsets, per input column
    select: dict[str, np.ndarray] = {}  # outputs that are plain column selections of the input
    for n in g.node:  # nodes are in topological order
        step = _affine_step(n, affine, consts)
        if n.op_type == "Scaler" and step is not None and not center.any():
            w = affine[n.input[0]][0]
            if ((w == 0) | (w == 1)).all() and (w.sum(axis=0) == 1).all():  # a column selection so far
                off = np.asarray(helper.get_attribute_value(n.attribute[[a.name for a in n.attribute].index("offset")]))
                center = w @ np.broadcast_to(off, (w.shape[1],))
        if step is not None:
            affine[n.output[0]] = step
            if n.op_type == "ArrayFeatureExtractor" and n.input[0] == x:
                select[n.output[0]] = consts[n.input[1]].astype(np.int64).reshape(-1)
        elif n.op_type == "Sqrt" and n.input[0] in consts:
            consts[n.output[0]] = np.sqrt(consts[n.input[0]])
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    for n in g.node:
        if n.op_type in _TREES and n.input[0] in select:
            _remap_features(n, select[n.input[0]])
            n.input[0] = x
        elif n.op_type in _TREES and n.input[0] in affine and n.input[0] != x:
            w, b = affine[n.input[0]]
            z = n.input[0]
            # (x - center) W + b: centring first keeps float32 exact for a temperature of 57 +- 0.1
            inits += [
                numpy_helper.from_array(center.astype(np.float32), z + "_center"),
                numpy_helper.from_array(w.astype(np.float32), z + "_W"),
                numpy_helper.from_array((b + center @ w).astype(np.float32), z + "_b"),
            ]
            nodes += [
                helper.make_node("Sub", [x, z + "_center"], [z + "_xc"], name=z + "_center"),
                helper.make_node("MatMul", [z + "_xc", z + "_W"], [z + "_xw"], name=z + "_matmul"),
                helper.make_node("Add", [z + "_xw", z + "_b"], [z + "_folded"], name=z + "_add"),
            ]
            n.input[0] = z + "_folded"  # the steps that made z are left without a user: pruned
        nodes.append(n)
    _fold_scalar_mul(nodes, consts)
    _prune(g, nodes, inits)
    return proto


def _affine_step(
    n: onnx.NodeProto, affine: dict[str, tuple[np.ndarray, np.ndarray]], consts: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray] | None:
    """The affine map (W, b) of this node's output, if its input is affine and the step is too."""
    if not n.input or n.input[0] not in affine or len(n.output) != 1:
        return None
    w, b = affine[n.input[0]]
    args = [consts.get(i) for i in n.input[1:]]
    if any(a is None for a in args):
        return None
    op = n.op_type
    if op == "Scaler":
        at = {a.name: np.asarray(helper.get_attribute_value(a), dtype=np.float64) for a in n.attribute}
        off, scale = at.get("offset", np.zeros(1)), at.get("scale", np.ones(1))
        return w * scale, (b - off) * scale
    if len(args) != 1:
        return None
    c = args[0]
    assert c is not None
    if op == "ArrayFeatureExtractor":
        idx = c.astype(np.int64).reshape(-1)
        return w[:, idx], b[idx]
    if c.ndim > 1 and op != "MatMul":
        return None
    if op == "Sub":
        return w, b - c
    if op == "Add":
        return w, b + c
    if op == "Mul":
        return w * c, b * c
    if op == "Div":
        return w / c, b / c
    if op == "MatMul" and c.ndim == 2:
        return w @ c, b @ c
    return None


def _remap_features(trees: onnx.NodeProto, columns: np.ndarray) -> None:
    for a in trees.attribute:
        if a.name == "nodes_featureids":
            ids = [int(columns[i]) for i in a.ints]
            del a.ints[:]
            a.ints.extend(ids)


def _fold_scalar_mul(nodes: list[onnx.NodeProto], consts: dict[str, np.ndarray]) -> None:
    """TreeEnsembleRegressor (sum, no post transform) -> Mul by a scalar constant: scale the leaves."""
    for t in list(nodes):
        if t.op_type != "TreeEnsembleRegressor":
            continue
        at = {a.name: helper.get_attribute_value(a) for a in t.attribute}
        if at.get("aggregate_function", b"SUM") != b"SUM" or at.get("post_transform", b"NONE") != b"NONE":
            continue
        users = [n for n in nodes if t.output[0] in n.input]
        if len(users) != 1 or users[0].op_type != "Mul" or users[0].input[0] != t.output[0]:
            continue
        k = consts.get(users[0].input[1])
        if k is None or k.size != 1 or "target_weights" not in at:
            continue
        for a in t.attribute:
            if a.name in ("target_weights", "base_values"):
                scaled = [float(v) * float(k.reshape(-1)[0]) for v in a.floats]
                del a.floats[:]
                a.floats.extend(scaled)
        t.output[0] = users[0].output[0]
        nodes.remove(users[0])


def _prune(g: onnx.GraphProto, nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto]) -> None:
    """Keep only the nodes and initializers the graph outputs need."""
    need = {o.name for o in g.output}
    kept: list[onnx.NodeProto] = []
    for n in reversed(nodes):
        if any(o in need for o in n.output):
            kept.append(n)
            need.update(i for i in n.input if i)
    all_inits: list[Any] = [*g.initializer, *inits]
    del g.node[:]
    g.node.extend(reversed(kept))
    del g.initializer[:]
    g.initializer.extend(i for i in all_inits if i.name in need)
