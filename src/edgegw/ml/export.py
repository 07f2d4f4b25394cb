"""Fitted scikit-learn models to ONNX files the daemon loads with onnxruntime alone.

Every model takes the engine's whole feature vector (float32, `feature_names` order), so the
daemon feeds each one the same matrix. The metadata the daemon checks (signals, window,
feature order, threshold, training statistics, version) goes both into each file's
`metadata_props` (key ``edgegw``) and into the directory's sidecar ``model.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
from onnx import helper, numpy_helper
from skl2onnx import to_onnx
from sklearn.pipeline import Pipeline

from edgegw.engine.modelmeta import ANOMALY_FILE, FAILURE_FILE, META_FILE, ModelMeta, dumps
from edgegw.ml import iforest_onnx
from edgegw.ml.compact import compact

if TYPE_CHECKING:
    from edgegw.ml.classifier import FailureClassifier

TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}


def _last_step(model: Any) -> Any:
    return model.steps[-1][1] if isinstance(model, Pipeline) else model


def _to_onnx(model: Any, n_features: int, options: dict[str, Any], naming: str) -> onnx.ModelProto:
    """skl2onnx's conversion of model over float32 rows of n_features, `options` for its last step."""
    x = np.zeros((1, n_features), dtype=np.float32)
    return to_onnx(model, x, target_opset=TARGET_OPSET, options={id(_last_step(model)): options}, naming=naming)


def anomaly_onnx(model: Any, n_features: int) -> onnx.ModelProto:
    """IsolationForest (alone or at the end of a pipeline) with outputs label, scores, score_samples."""
    iforest_onnx.register()
    return _to_onnx(model, n_features, {"score_samples": True}, "anomaly_")


def classifier_onnx(model: Any, n_features: int) -> onnx.ModelProto:
    """A classifier with outputs label and probabilities (a plain (n, n_classes) tensor)."""
    return _to_onnx(model, n_features, {"zipmap": False}, "failure_")


def failure_onnx(clf: FailureClassifier, n_features: int) -> onnx.ModelProto:
    """The whole failure classifier as one graph over the engine's row: Gather, MatMul and Add for
    the relation residuals, Abs, Add and Div for the relative spreads, the trees, then the
    calibration (Log, Mul, Add, Softmax); output `probabilities`."""
    rel = clf.relations
    n_derived = len(rel.names)
    trees = classifier_onnx(_last_step(clf.trees), n_derived)
    (tree_node,) = [n for n in trees.graph.node if n.op_type.startswith("TreeEnsemble")]
    if len(trees.graph.node) != 1:
        raise ValueError(f"expected one tree node from skl2onnx, got {[n.op_type for n in trees.graph.node]}")

    def const(name: str, value: np.ndarray, dtype: Any = np.float32) -> onnx.TensorProto:
        return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)

    inits = [
        const("rel_value_cols", rel.value_cols, np.int64),
        const("rel_weights", rel.weights),
        const("rel_offset", rel.offset),
        const("rel_std_cols", rel.std_cols, np.int64),
        const("rel_mean_cols", rel.mean_cols, np.int64),
        const("rel_floor", rel.floor),
        const("cal_min", np.array(1e-7)),
        const("cal_inv_t", np.array(1.0 / clf.temperature)),
        const("cal_bias", clf.bias),
    ]
    tree = onnx.NodeProto()
    tree.CopyFrom(tree_node)
    del tree.input[:], tree.output[:]
    tree.input.append("rel_z")
    tree.output.extend(["trees_label", "trees_probabilities"])
    nodes = [
        helper.make_node("Gather", ["X", "rel_value_cols"], ["rel_values"], axis=1),
        helper.make_node("MatMul", ["rel_values", "rel_weights"], ["rel_mm"]),
        helper.make_node("Add", ["rel_mm", "rel_offset"], ["rel_residuals"]),
        helper.make_node("Gather", ["X", "rel_std_cols"], ["rel_std"], axis=1),
        helper.make_node("Gather", ["X", "rel_mean_cols"], ["rel_mean"], axis=1),
        helper.make_node("Abs", ["rel_mean"], ["rel_abs"]),
        helper.make_node("Add", ["rel_abs", "rel_floor"], ["rel_den"]),
        helper.make_node("Div", ["rel_std", "rel_den"], ["rel_ratio"]),
        helper.make_node("Concat", ["rel_residuals", "rel_ratio"], ["rel_z"], axis=1),
        tree,
        helper.make_node("Max", ["trees_probabilities", "cal_min"], ["cal_p"]),
        helper.make_node("Log", ["cal_p"], ["cal_logp"]),
        helper.make_node("Mul", ["cal_logp", "cal_inv_t"], ["cal_scaled"]),
        helper.make_node("Add", ["cal_scaled", "cal_bias"], ["cal_logits"]),
        helper.make_node("Softmax", ["cal_logits"], ["probabilities"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "edgegw_failure",
        [helper.make_tensor_value_info("X", onnx.TensorProto.FLOAT, [None, n_features])],
        [helper.make_tensor_value_info("probabilities", onnx.TensorProto.FLOAT, [None, len(clf.classes)])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=list(trees.opset_import))
    model.ir_version = trees.ir_version
    onnx.checker.check_model(model)
    return model


def compacted(proto: onnx.ModelProto, x: np.ndarray, atol: float = 1e-5, max_moved: float = 0.005) -> onnx.ModelProto:
    """The graph with fewer nodes (ml/compact.py) when it gives the original's float outputs on the
    rows x within atol, but for at most `max_moved` of the rows; the original otherwise.

    Both graphs compute in float32, rounded differently: a value that lands within rounding of a
    split threshold can take the other branch in one of them (either may then differ from
    scikit-learn's float64 by one tree's share; ~0.1 % of rows seen on the pump model).
    """
    import onnxruntime as ort

    small = onnx.ModelProto()
    small.CopyFrom(proto)
    compact(small)
    if len(small.graph.node) >= len(proto.graph.node):
        return proto

    def run(p: onnx.ModelProto) -> list[Any]:
        s = ort.InferenceSession(p.SerializeToString(), providers=["CPUExecutionProvider"])
        return list(s.run(None, {s.get_inputs()[0].name: np.ascontiguousarray(x, dtype=np.float32)}))

    for a, b in zip(run(proto), run(small), strict=True):
        a, b = np.asarray(a), np.asarray(b)
        if a.dtype.kind == "f" and (np.abs(a - b) > atol).any(axis=tuple(range(1, a.ndim))).mean() > max_moved:
            return proto
    return small


def attach_metadata(proto: onnx.ModelProto, meta: dict[str, Any], version: str) -> None:
    """Store the metadata in the file itself: `edgegw` (JSON) plus a few flat keys for tools."""
    del proto.metadata_props[:]
    for k, v in (
        ("edgegw", json.dumps(meta, sort_keys=True)),
        ("edgegw.version", version),
        ("edgegw.kind", str(meta.get("kind", ""))),
    ):
        p = proto.metadata_props.add()
        p.key, p.value = k, v
    proto.producer_name = "edgegw"
    proto.doc_string = f"edgegw {meta.get('kind', '')} model {version}"


def write_model_dir(out: Path, meta: ModelMeta, protos: dict[str, onnx.ModelProto]) -> list[Path]:
    """Write the ONNX files, each with its metadata, and then model.json (last, so a half-written
    directory never loads). Model files of another training that this one lacks are removed."""
    out.mkdir(parents=True, exist_ok=True)
    for section in (meta.anomaly, meta.failure_risk):
        if section is not None:
            attach_metadata(protos[section.file], meta.file_meta(section.kind), meta.version)
    for stale in (ANOMALY_FILE, FAILURE_FILE):
        if stale not in protos:
            (out / stale).unlink(missing_ok=True)
    written = []
    for fname, proto in protos.items():
        ops = sorted(proto.opset_import, key=lambda o: o.domain)  # skl2onnx's order follows a set's hashing
        del proto.opset_import[:]
        proto.opset_import.extend(ops)
        onnx.checker.check_model(proto)
        path = out / fname
        tmp = path.with_suffix(".onnx.tmp")
        tmp.write_bytes(proto.SerializeToString())
        tmp.replace(path)
        written.append(path)
    side = out / META_FILE
    tmp = side.with_suffix(".json.tmp")
    tmp.write_text(dumps(meta))
    tmp.replace(side)
    written.append(side)
    return written
