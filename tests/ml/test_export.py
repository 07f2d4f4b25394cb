"""ONNX export: every model kind `edgegw train` writes scores like scikit-learn (within 1e-5),
and the IsolationForest becomes one TreeEnsembleRegressor, not a graph per tree."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from skl2onnx import to_onnx
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.ensemble import HistGradientBoostingClassifier, IsolationForest, RandomForestClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from edgegw.ml import export
from edgegw.ml.iforest_onnx import average_path_length

TOL = 1e-5


def _session(proto) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return ort.InferenceSession(proto.SerializeToString(), so, providers=["CPUExecutionProvider"])


def _data(n: int = 2000, d: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, 3))
    mix = rng.normal(size=(3, d))
    train = (base @ mix + 0.1 * rng.normal(size=(n, d))).astype(np.float32)
    test = (rng.normal(size=(500, 3)) @ mix * 1.5 + 0.5 * rng.normal(size=(500, d))).astype(np.float32)
    return train, test


def test_average_path_length_matches_the_paper() -> None:
    n = np.array([0, 1, 2, 3, 256])
    c = average_path_length(n)
    assert c[0] == 0 and c[1] == 0 and c[2] == 1
    h = lambda i: np.log(i) + np.euler_gamma  # noqa: E731
    assert c[4] == pytest.approx(2 * h(255) - 2 * 255 / 256)


@pytest.mark.parametrize(
    "params",
    [
        {"n_estimators": 60},
        {"n_estimators": 40, "max_features": 0.5},
        {"n_estimators": 40, "bootstrap": True, "max_samples": 100},
        {"n_estimators": 30, "contamination": 0.05},
    ],
)
def test_isolation_forest_parity(params: dict) -> None:
    train, test = _data()
    model = IsolationForest(random_state=3, **params).fit(train)
    proto = export.anomaly_onnx(model, train.shape[1])
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("TreeEnsembleRegressor") == 1
    assert len(ops) <= 8
    label, scores, samples = _session(proto).run(None, {"X": test})
    np.testing.assert_allclose(samples.ravel(), model.score_samples(test), atol=TOL)
    np.testing.assert_allclose(scores.ravel(), model.decision_function(test), atol=TOL)
    dec = model.decision_function(test)
    clear = np.abs(dec) > TOL  # rows on the boundary may round either way
    assert (label.ravel()[clear] == model.predict(test)[clear]).all()


def test_registered_with_skl2onnx_for_plain_to_onnx() -> None:
    """After import, a plain skl2onnx.to_onnx call uses the compact converter."""
    train, test = _data(500)
    model = IsolationForest(n_estimators=20, random_state=0).fit(train)
    proto = to_onnx(model, train[:1], target_opset=export.TARGET_OPSET)
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("TreeEnsembleRegressor") == 1 and "LabelEncoder" not in ops
    _, scores = _session(proto).run(None, {"X": test})
    np.testing.assert_allclose(scores.ravel(), model.decision_function(test), atol=TOL)


def test_double_input_parity() -> None:
    train, test = _data(800)
    model = IsolationForest(n_estimators=30, random_state=1).fit(train.astype(np.float64))
    proto = to_onnx(model, train[:1].astype(np.float64), target_opset=export.TARGET_OPSET)
    _, scores = _session(proto).run(None, {"X": test.astype(np.float64)})
    np.testing.assert_allclose(scores.ravel(), model.decision_function(test.astype(np.float64)), atol=TOL)


USED = [0, 1, 2, 3, 5, 8, 9, 10, 11, 13, 14, 15]


def _anomaly_pipeline(train: np.ndarray) -> Pipeline:
    """The shape `edgegw train` exports: select columns, standardise, whiten, isolation forest."""
    return Pipeline(
        [
            ("select", ColumnTransformer([("used", "passthrough", USED)])),
            ("scale", StandardScaler()),
            ("whiten", PCA(n_components=10, whiten=True, svd_solver="full")),
            ("iforest", IsolationForest(n_estimators=50, random_state=0)),
        ]
    ).fit(train)


def test_anomaly_pipeline_parity() -> None:
    train, test = _data(d=16)
    model = _anomaly_pipeline(train)
    proto = export.anomaly_onnx(model, train.shape[1])
    _, scores, samples = _session(proto).run(None, {"X": test})
    np.testing.assert_allclose(samples.ravel(), model.score_samples(test), atol=TOL)
    np.testing.assert_allclose(scores.ravel(), model.decision_function(test), atol=TOL)


@pytest.mark.parametrize("kind", ["hgb", "rf"])
def test_classifier_parity(kind: str) -> None:
    train, test = _data(1500, d=10)
    y = np.where(train[:, 0] > 1.0, "bearing_wear", np.where(train[:, 1] < -1.0, "cavitation", "0"))
    est = (
        HistGradientBoostingClassifier(max_iter=40, max_leaf_nodes=15, early_stopping=False, random_state=0)
        if kind == "hgb"
        else RandomForestClassifier(n_estimators=20, max_depth=8, random_state=0)
    )
    model = Pipeline([("select", ColumnTransformer([("used", "passthrough", list(range(9)))])), ("clf", est)])
    model.fit(train, y)
    proto = export.classifier_onnx(model, train.shape[1])
    label, probs = _session(proto).run(None, {"X": test})
    np.testing.assert_allclose(probs, model.predict_proba(test), atol=TOL)
    assert list(label) == list(model.predict(test))


def test_metadata_goes_into_the_file() -> None:
    train, _ = _data(300)
    model = IsolationForest(n_estimators=5, random_state=0).fit(train)
    proto = export.anomaly_onnx(model, train.shape[1])
    export.attach_metadata(proto, {"kind": "anomaly", "threshold": 0.6}, "m-1")
    meta = _session(proto).get_modelmeta().custom_metadata_map
    assert meta["edgegw.version"] == "m-1" and meta["edgegw.kind"] == "anomaly"
    assert '"threshold": 0.6' in meta["edgegw"]


def test_compact_graphs_score_the_same_with_fewer_nodes() -> None:
    """What `edgegw train` writes: the affine steps before the trees fold into Sub, MatMul, Add, the
    classifier reads its columns itself, and both still score like scikit-learn (a row whose
    value lands on a split threshold within float32 rounding may take the other branch)."""
    train, test = _data(d=16)
    model = _anomaly_pipeline(train)
    full = export.anomaly_onnx(model, train.shape[1])
    small = export.compacted(full, train)
    ops = [n.op_type for n in small.graph.node]
    assert ops[:4] == ["Sub", "MatMul", "Add", "TreeEnsembleRegressor"] and len(ops) < len(full.graph.node) - 3
    _, scores, samples = _session(small).run(None, {"X": test})
    moved = np.abs(samples.ravel() - model.score_samples(test)) > TOL
    assert moved.mean() <= 0.005
    np.testing.assert_allclose(scores.ravel()[~moved], model.decision_function(test)[~moved], atol=TOL)

    y = np.where(train[:, 0] > 1.0, "bearing_wear", np.where(train[:, 1] < -1.0, "cavitation", "0"))
    clf = Pipeline(
        [
            ("select", ColumnTransformer([("used", "passthrough", USED)])),
            ("clf", HistGradientBoostingClassifier(max_iter=40, early_stopping=False, random_state=0)),
        ]
    ).fit(train, y)
    small = export.compacted(export.classifier_onnx(clf, train.shape[1]), train)
    assert [n.op_type for n in small.graph.node] == ["TreeEnsembleClassifier"]
    label, probs = _session(small).run(None, {"X": test})
    np.testing.assert_allclose(probs, clf.predict_proba(test), atol=TOL)
    assert list(label) == list(clf.predict(test))


def test_compact_keeps_the_original_when_the_numbers_move() -> None:
    train, _ = _data(300)
    model = IsolationForest(n_estimators=5, random_state=0).fit(train)
    proto = export.anomaly_onnx(model, train.shape[1])
    assert export.compacted(proto, train, atol=-1.0) is proto  # every row "moved": refused
