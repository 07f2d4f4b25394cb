"""Fitted scikit-learn models to ONNX files the daemon loads with onnxruntime alone.

Every model takes the engine's whole feature vector (float32, `feature_names` order), so the
daemon feeds each one the same matrix. The metadata the daemon checks (signals, window,
feature order, threshold, training statistics, version) goes both into each file's
`metadata_props` (key ``edgegw``) and into the directory's sidecar ``model.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from skl2onnx import to_onnx
from sklearn.pipeline import Pipeline

from edgegw.ml import iforest_onnx
from edgegw.ml.compact import compact

TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
META_FILE = "model.json"
ANOMALY_FILE = "anomaly.onnx"
FAILURE_FILE = "failure.onnx"


def _last_step(model: Any) -> Any:
    return model.steps[-1][1] if isinstance(model, Pipeline) else model


def anomaly_onnx(model: Any, n_features: int) -> onnx.ModelProto:
    """IsolationForest (alone or at the end of a pipeline) with outputs label, scores, score_samples."""
    iforest_onnx.register()
    x = np.zeros((1, n_features), dtype=np.float32)
    return to_onnx(
        model, x, target_opset=TARGET_OPSET, options={id(_last_step(model)): {"score_samples": True}},
        naming="anomaly_",
    )


def classifier_onnx(model: Any, n_features: int) -> onnx.ModelProto:
    """A classifier with outputs label and probabilities (a plain (n, n_classes) tensor)."""
    x = np.zeros((1, n_features), dtype=np.float32)
    return to_onnx(
        model, x, target_opset=TARGET_OPSET, options={id(_last_step(model)): {"zipmap": False}},
        naming="failure_",
    )


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
    for k, v in (("edgegw", json.dumps(meta, sort_keys=True)), ("edgegw.version", version),
                 ("edgegw.kind", str(meta.get("kind", "")))):
        p = proto.metadata_props.add()
        p.key, p.value = k, v
    proto.producer_name = "edgegw"
    proto.doc_string = f"edgegw {meta.get('kind', '')} model {version}"


def write_model_dir(out: Path, meta: dict[str, Any], protos: dict[str, onnx.ModelProto]) -> list[Path]:
    """Write the ONNX files and then model.json (last, so a half-written directory never loads)."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for fname, proto in protos.items():
        onnx.checker.check_model(proto)
        path = out / fname
        tmp = path.with_suffix(".onnx.tmp")
        tmp.write_bytes(proto.SerializeToString())
        tmp.replace(path)
        written.append(path)
    side = out / META_FILE
    tmp = side.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(meta, indent=1, sort_keys=False) + "\n")
    tmp.replace(side)
    written.append(side)
    return written
