"""The failure classifier: relations between signals, calibrated probabilities, and an unknown cause
when no class is confident; its ONNX graph computes what training computed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from edgegw.config import Profile
from edgegw.engine.features import feature_names
from edgegw.engine.models import load_model_set
from edgegw.ml import export
from edgegw.ml.classifier import UNKNOWN, calibrate, fit_calibration, fit_classifier, fit_relations, holdout
from tests.ml.modelkit import model_dir

SIGNALS = ["vibration", "pressure", "flow", "current"]
NAMES = feature_names(SIGNALS)


def _rows(n: int, rng: np.random.Generator, load: np.ndarray | None = None) -> np.ndarray:
    """Engine-like feature rows of a pump: every signal's level follows one load, plus noise."""
    load = rng.uniform(-1, 1, n) if load is None else load
    x = np.zeros((n, len(NAMES)))
    level = {"vibration": 2.2 + 0.3 * load, "pressure": 4.5 - 0.9 * load, "flow": 60 + 9 * load, "current": 30 + 5 * load}
    for s, v in level.items():
        c = {f: NAMES.index(f"{s}.{f}") for f in ("mean", "last", "std", "slope", "skew", "kurtosis", "count")}
        x[:, c["mean"]] = v * (1 + 0.003 * rng.standard_normal(n))
        x[:, c["last"]] = v * (1 + 0.006 * rng.standard_normal(n))
        x[:, c["std"]] = 0.01 * np.abs(v) * (1 + 0.1 * rng.standard_normal(n))
        x[:, c["slope"]] = 0.001 * rng.standard_normal(n)
        x[:, c["skew"]] = 0.2 * rng.standard_normal(n)
        x[:, c["kurtosis"]] = 0.3 * rng.standard_normal(n)
        x[:, c["count"]] = 60
    return x


def _col(signal: str, feature: str) -> int:
    return NAMES.index(f"{signal}.{feature}")


def _history(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Three assets, 1500 windows each; `leak` (flow low for its load) and `overload` (current high)
    twice each, on different assets, the second episode later in time."""
    rng = np.random.default_rng(seed)
    xs, labels, assets, ends = [], [], [], []
    episodes = {"a": [("leak", 200, 300)], "b": [("overload", 400, 500), ("leak", 1100, 1200)], "c": [("overload", 900, 1000)]}
    for a, eps in episodes.items():
        x = _rows(1500, rng)
        lab = np.array(["0"] * 1500, dtype=object)
        for cls, s, e in eps:
            if cls == "leak":
                x[s:e, _col("flow", "mean")] -= 6.0
                x[s:e, _col("flow", "last")] -= 6.0
            else:
                x[s:e, _col("current", "mean")] += 4.0
                x[s:e, _col("current", "last")] += 4.0
            lab[s:e] = cls
        xs.append(x)
        labels.append(lab)
        assets += [a] * 1500
        ends.append(np.arange(1500, dtype=float))
    return np.vstack(xs), np.concatenate(labels), np.array(assets, dtype=object), np.concatenate(ends)


def test_a_fault_breaks_the_relations_of_the_signal_it_moves() -> None:
    rng = np.random.default_rng(1)
    normal = _rows(3000, rng)
    rel = fit_relations(normal, NAMES, SIGNALS)
    z = rel.transform(_rows(500, rng))
    lin = [i for i, n in enumerate(rel.names) if "~" in n and n.endswith(".mean")]
    assert np.abs(z[:, lin].std(axis=0) - 1).max() < 0.2  # unit spread on normal rows, whatever the load
    leak = _rows(200, rng)
    leak[:, _col("flow", "mean")] -= 6.0
    zl = rel.transform(leak).mean(axis=0)
    broken = {rel.names[i] for i in lin if abs(zl[i]) > 5}
    assert broken == {"flow~vibration.mean", "flow~pressure.mean", "current~flow.mean"}


def test_calibration_undoes_overconfidence() -> None:
    rng = np.random.default_rng(2)
    logits = rng.normal(scale=2.0, size=(4000, 3))
    truth = calibrate(np.exp(logits), 1.0, np.zeros(3))
    y = np.array([rng.choice(3, p=p) for p in truth])
    overconfident = calibrate(truth, 0.4, np.zeros(3))  # a model three times too sure
    t, b = fit_calibration(overconfident, y)
    assert t == pytest.approx(1 / 0.4, rel=0.15) and np.abs(b).max() < 0.2
    assert np.abs(calibrate(overconfident, t, b) - truth).max() < 0.05


def test_holdout_is_each_class_latest_episode_in_time() -> None:
    _, label, assets, ends = _history()
    held = holdout(label, assets, ends, np.zeros(len(label), dtype=bool))
    # asset "c" sorts after "b", but b's leak (t 1100) and c's overload (t 900) are the latest ones
    assert set(np.flatnonzero(held)) == set(np.flatnonzero((assets == "b") & (label == "leak"))) | set(
        np.flatnonzero((assets == "c") & (label == "overload"))
    )


@pytest.fixture(scope="module")
def fitted() -> tuple:
    x, label, assets, ends = _history()
    held_normal = (ends % 500) >= 400
    clf = fit_classifier(x, label, assets, ends, held_normal, NAMES, SIGNALS, seed=0)
    return clf, x, label


def test_classifier_names_the_held_out_episodes(fitted: tuple) -> None:
    clf, _, _ = fitted
    report = "\n".join(clf.report)
    assert clf.classes == ["0", "leak", "overload"]
    for cls in ("leak", "overload"):
        line = next(r for r in clf.report if r.strip().startswith(f"{cls}:"))
        assert float(line.split("F1 ")[1].split()[0]) >= 0.9, report
    assert 0.5 <= clf.cause_threshold <= 0.9 and clf.temperature > 0


def test_onnx_graph_computes_what_training_computed(fitted: tuple) -> None:
    clf, x, _ = fitted
    proto = export.failure_onnx(clf, len(NAMES))
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    assert [o.name for o in sess.get_outputs()] == ["probabilities"]
    got = sess.run(["probabilities"], {"X": x.astype(np.float32)})[0]
    want = clf.predict_proba(x)
    off = np.abs(got - want).max(axis=1) > 1e-4
    assert off.mean() < 0.005  # float32 rounding may send a rare row down the other branch of a split
    assert np.allclose(got.sum(axis=1), 1, atol=1e-5)


def test_daemon_says_unknown_when_no_cause_is_confident(tmp_path: Path) -> None:
    d = tmp_path / "m"
    shutil.copytree(model_dir(), d)
    meta = json.loads((d / "model.json").read_text())
    fm = meta["failure_risk"]
    assert fm["classes"] == ["0", "bearing_wear", "cavitation"] and 0.5 <= fm["cause_threshold"] <= 0.9
    assert fm["unknown_class"] == UNKNOWN and len(fm["calibration"]["bias"]) == 3
    fm["cause_threshold"] = 0.7
    (d / "model.json").write_text(json.dumps(meta))
    sigs = ["vibration", "pressure", "temperature", "flow", "current", "suction_pressure"]
    ms = load_model_set(d, "pump", Profile(window_s=30, signals={s: {} for s in sigs}))
    sure = ms.risk_evidence(np.array([0.1, 0.8, 0.1]), 0.9)
    assert sure["class"] == "bearing_wear" and sure["cause_share"] == pytest.approx(0.8 / 0.9, abs=1e-3)
    torn = ms.risk_evidence(np.array([0.1, 0.5, 0.4]), 0.9)
    assert torn["class"] == UNKNOWN and torn["class_probability"] == 0.5
