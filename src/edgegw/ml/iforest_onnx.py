"""A compact ONNX converter for scikit-learn's IsolationForest, registered with skl2onnx.

An isolation forest scores a row by the mean path length over its trees, where a leaf's path
length is its depth plus the expected depth of the unbuilt subtree below it (the average path
length of an unsuccessful BST search over the leaf's training samples, c(n)). That is exactly
one tree ensemble whose leaves carry path lengths: a single `ai.onnx.ml.TreeEnsembleRegressor`
(aggregate SUM) followed by the score transform 2^(-sum / (n_trees * c(max_samples))).

skl2onnx's stock converter builds a Gather + tree + label-encoder + arithmetic chain per tree
(thousands of nodes, ~2 ms per row); this graph has six nodes and scores a row in microseconds.
Outputs match the stock converter: `label` (1 inlier / -1 outlier), `scores`
(decision_function) and, with the option ``score_samples``, `score_samples`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import TensorProto, numpy_helper
from skl2onnx import update_registered_converter
from skl2onnx.common.data_types import Int64TensorType, guess_numpy_type
from skl2onnx.common.tree_ensemble import sklearn_threshold
from sklearn.ensemble import IsolationForest

ALIAS = "EdgegwIsolationForest"


def average_path_length(n: np.ndarray) -> np.ndarray:
    """c(n): expected path length of an unsuccessful search in a BST of n samples (Liu et al.)."""
    n = np.asarray(n, dtype=np.float64)
    out = np.zeros_like(n)
    two = n == 2
    big = n > 2
    out[two] = 1.0
    nb = n[big]
    out[big] = 2.0 * (np.log(nb - 1.0) + np.euler_gamma) - 2.0 * (nb - 1.0) / nb
    return out


def _node_depths(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Depth of every node, the root at 0."""
    depth = np.zeros(len(left), dtype=np.int64)
    stack = [0]
    while stack:
        i = stack.pop()
        for c in (left[i], right[i]):
            if c >= 0:
                depth[c] = depth[i] + 1
                stack.append(c)
    return depth


def forest_attributes(model: IsolationForest, dtype: type = np.float32) -> dict[str, Any]:
    """TreeEnsembleRegressor attributes: splits remapped to input columns, leaves = path lengths."""
    attrs: dict[str, list[Any]] = {
        k: []
        for k in (
            "nodes_treeids",
            "nodes_nodeids",
            "nodes_featureids",
            "nodes_modes",
            "nodes_values",
            "nodes_truenodeids",
            "nodes_falsenodeids",
            "target_treeids",
            "target_nodeids",
            "target_ids",
            "target_weights",
        )
    }
    for t, (est, feats) in enumerate(zip(model.estimators_, model.estimators_features_, strict=True)):
        tree = est.tree_
        left, right = tree.children_left, tree.children_right
        depth = _node_depths(left, right)
        leaf_len = depth + average_path_length(tree.n_node_samples)
        cols = np.asarray(feats, dtype=np.int64)
        for i in range(tree.node_count):
            attrs["nodes_treeids"].append(t)
            attrs["nodes_nodeids"].append(i)
            if left[i] >= 0:
                attrs["nodes_featureids"].append(int(cols[tree.feature[i]]))
                attrs["nodes_modes"].append("BRANCH_LEQ")
                attrs["nodes_values"].append(float(sklearn_threshold(tree.threshold[i], dtype, "BRANCH_LEQ")))
                attrs["nodes_truenodeids"].append(int(left[i]))
                attrs["nodes_falsenodeids"].append(int(right[i]))
            else:
                attrs["nodes_featureids"].append(0)
                attrs["nodes_modes"].append("LEAF")
                attrs["nodes_values"].append(0.0)
                attrs["nodes_truenodeids"].append(0)
                attrs["nodes_falsenodeids"].append(0)
                attrs["target_treeids"].append(t)
                attrs["target_nodeids"].append(i)
                attrs["target_ids"].append(0)
                attrs["target_weights"].append(float(leaf_len[i]))
    return attrs


def convert_isolation_forest(scope: Any, operator: Any, container: Any) -> None:
    """skl2onnx converter: one TreeEnsembleRegressor (SUM of path lengths) + the score transform."""
    model: IsolationForest = operator.raw_operator
    if container.target_opset_any_domain("ai.onnx.ml") < 3:
        raise RuntimeError("the compact IsolationForest converter needs ai.onnx.ml opset >= 3")
    dtype = guess_numpy_type(operator.inputs[0].type)
    if dtype not in (np.float32, np.float64):
        raise RuntimeError(f"IsolationForest input must be float or double, not {dtype}")
    options = container.get_options(model, dict(score_samples=None))
    x = operator.inputs[0].full_name
    proto = TensorProto.FLOAT if dtype == np.float32 else TensorProto.DOUBLE

    def const(name: str, value: Any, dt: Any = dtype) -> str:
        n = scope.get_unique_variable_name(name)
        container.add_initializer(n, *_init(np.asarray(value, dtype=dt).reshape(-1)))
        return n

    attrs = forest_attributes(model, dtype)
    total = scope.get_unique_variable_name("path_length_sum")
    container.add_node(
        "TreeEnsembleRegressor",
        [x],
        [total],
        op_domain="ai.onnx.ml",
        op_version=3,
        name=scope.get_unique_operator_name("IsolationForestPaths"),
        n_targets=1,
        aggregate_function="SUM",
        post_transform="NONE",
        **attrs,
    )
    if proto == TensorProto.DOUBLE:
        t64 = scope.get_unique_variable_name("path_length_sum64")
        container.add_node("Cast", [total], [t64], to=TensorProto.DOUBLE, name=scope.get_unique_operator_name("Cast"))
        total = t64
    n_trees = len(model.estimators_)
    denom = n_trees * float(average_path_length(np.array([model.max_samples_]))[0])
    # 2 ** (-S / denom) == exp(S * (-ln 2 / denom))
    k = -np.log(2.0) / denom if denom > 0 else 0.0
    scaled = scope.get_unique_variable_name("neg_depth")
    container.add_node("Mul", [total, const("k", [k])], [scaled], name=scope.get_unique_operator_name("Mul"))
    expo = scope.get_unique_variable_name("anomaly_score")
    container.add_node("Exp", [scaled], [expo], name=scope.get_unique_operator_name("Exp"))
    ss = operator.outputs[2].full_name if options["score_samples"] else scope.get_unique_variable_name("score_samples")
    container.add_node("Neg", [expo], [ss], name=scope.get_unique_operator_name("Neg"))
    dec = operator.outputs[1].full_name
    container.add_node("Sub", [ss, const("offset", [model.offset_])], [dec], name=scope.get_unique_operator_name("Sub"))
    less = scope.get_unique_variable_name("outlier")
    container.add_node("Less", [dec, const("zero", [0.0])], [less], name=scope.get_unique_operator_name("Less"))
    lab = operator.outputs[0].full_name
    container.add_node(
        "Where",
        [less, const("minus_one", [-1], np.int64), const("one", [1], np.int64)],
        [lab],
        name=scope.get_unique_operator_name("Where"),
    )


def isolation_forest_shapes(operator: Any) -> None:
    """label (N, 1) int64; scores and score_samples (N, 1) of the input's type."""
    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = Int64TensorType([n, 1])
    for out in operator.outputs[1:]:
        out.type = operator.inputs[0].type.__class__([n, 1])


def _init(arr: np.ndarray) -> tuple[int, list[int], Any]:
    t = numpy_helper.from_array(arr)
    return t.data_type, list(arr.shape), arr.tolist()


def register() -> None:
    """Make skl2onnx use the compact converter for every IsolationForest it meets."""
    update_registered_converter(
        IsolationForest,
        ALIAS,
        isolation_forest_shapes,
        convert_isolation_forest,
        options={"score_samples": [True, False]},
    )


register()

__all__ = ["ALIAS", "average_path_length", "convert_isolation_forest", "forest_attributes", "isolation_forest_shapes", "register"]
