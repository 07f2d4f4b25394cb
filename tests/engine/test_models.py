"""Model serving: load_model_set checks a model directory against its profile and refuses
anything that must not serve; the engine scores with it and raises explained alarms."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgegw.config import Profile
from edgegw.engine.engine import Engine
from edgegw.engine.features import feature_names
from edgegw.engine.models import ModelError, OnnxModelSet, load_model_set
from edgegw.ml.datasets import read_history
from edgegw.ml.replay import features_of, profile_config, replay
from edgegw.records import Alert, AlertState
from tests.ml.modelkit import SIGNALS, fault_csv, model_dir

PROFILE = Profile(window_s=30, hop_s=1, max_rate_hz=2, signals={s: {} for s in SIGNALS})


@pytest.fixture(scope="module")
def features() -> tuple[np.ndarray, np.ndarray]:
    """Feature rows of the test history (bearing wear from minute 30 to 50) and their end times."""
    h = read_history([fault_csv()])
    rec, _ = features_of(h, "pump", PROFILE)
    x = rec.matrix()
    ok = np.array(rec.warm) & ~np.isnan(x).any(axis=1)
    return x[ok], np.array(rec.ends)[ok] - h.ts[0]


def test_scores_rows_in_one_call_with_explanations(features: tuple[np.ndarray, np.ndarray]) -> None:
    x, t = features
    ms = load_model_set(model_dir(), "pump", PROFILE)
    assert isinstance(ms, OnnxModelSet) and ms.feature_names == feature_names(SIGNALS)
    rows = ms.evaluate(x.astype(np.float32))
    assert len(rows) == len(x)
    assert [v.kind for v in rows[0]] == ["anomaly", "failure_risk"]
    judged = np.array([bool(r) for r in rows])
    assert 0 < (~judged).sum() < 60  # the windows just after the history's gap are too sparse to judge
    assert ms.sparse_rows == (~judged).sum()
    anomaly = np.array([bool(r) and r[0].condition for r in rows])
    assert anomaly[t < 1700].mean() < 0.03
    assert anomaly[(t > 2400) & (t < 3000)].mean() > 0.9
    late = rows[int(np.searchsorted(t, 2900))]
    top = late[0].evidence["top"]
    assert 1 <= len(top) <= 3 and top[0]["signal"] in ("vibration", "temperature", "current")
    assert {"feature", "signal", "z"} <= set(top[0]) and abs(top[0]["z"]) > 3
    risk = late[1]
    assert risk.condition and risk.evidence["class"] == "bearing_wear" and 0.5 <= risk.evidence["probability"] <= 1


def test_failure_risk_needs_an_unusual_window(features: tuple[np.ndarray, np.ndarray]) -> None:
    x, _ = features
    ms = load_model_set(model_dir(), "pump", PROFILE)
    rows = [r for r in ms.evaluate(x.astype(np.float32)) if r]
    gate = ms.meta.failure_risk.anomaly_gate
    assert 0 < gate < ms.threshold
    assert all(r[0].score >= gate for r in rows if r[1].condition)
    assert any(r[1].condition for r in rows)


def test_profile_signal_order_may_differ(features: tuple[np.ndarray, np.ndarray]) -> None:
    x, _ = features
    ms = load_model_set(model_dir(), "pump", PROFILE)
    order = ["current", "suction_pressure", "flow", "vibration", "temperature", "pressure"]
    other = Profile(window_s=30, signals={s: {} for s in order})
    ms2 = load_model_set(model_dir(), "pump", other)
    cols = [feature_names(SIGNALS).index(n) for n in feature_names(order)]
    a = [v.score for r in ms.evaluate(x[:50].astype(np.float32)) for v in r]
    b = [v.score for r in ms2.evaluate(x[:50, cols].astype(np.float32)) for v in r]
    np.testing.assert_array_equal(a, b)  # NaN where the failure classifier was not run, in both


def test_failure_classifier_runs_only_past_the_anomaly_gate(features: tuple[np.ndarray, np.ndarray]) -> None:
    """Normal windows (under the gate) skip the classifier: NaN risk, never an alarm; the others get one."""
    x, _ = features
    ms = load_model_set(model_dir(), "pump", PROFILE)
    rows = [r for r in ms.evaluate(x.astype(np.float32)) if r]
    anomaly = np.array([r[0].score for r in rows])
    risk = np.array([r[1].score for r in rows])
    past = anomaly >= ms._gate
    assert past.any() and (~past).any()
    assert np.isfinite(risk[past]).all() and np.isnan(risk[~past]).all()
    assert not any(r[1].condition for r, p in zip(rows, past, strict=True) if not p)


def _copy(tmp_path: Path) -> Path:
    d = tmp_path / "m"
    shutil.copytree(model_dir(), d)
    return d


def _edit_meta(d: Path, **changes: object) -> None:
    meta = json.loads((d / "model.json").read_text())
    meta.update(changes)
    (d / "model.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: shutil.rmtree(d), "no such model directory"),
        (lambda d: (d / "model.json").unlink(), "model.json: missing"),
        (lambda d: (d / "model.json").write_text("{not json"), "not valid JSON"),
        (lambda d: (d / "anomaly.onnx").write_bytes(b"\x00garbage" * 10), "not a loadable ONNX model"),
        (lambda d: (d / "anomaly.onnx").unlink(), "anomaly.onnx: cannot read"),
        (lambda d: _edit_meta(d, version="other-training"), "files from different trainings"),
        (lambda d: _edit_meta(d, window_s=60), "window_s differs (model 60, profile 30"),
        (lambda d: _edit_meta(d, signals=[*SIGNALS[:4], "speed"]), "['speed'] the profile lacks"),
        (lambda d: _edit_meta(d, units={"vibration": "in/s"}), "unit differs"),
        (lambda d: _edit_meta(d, feature_names=["x.mean"]), "retrain"),
        (lambda d: _edit_meta(d, anomaly={"file": "anomaly.onnx"}), "lacks file, threshold"),
    ],
)
def test_refuses_what_must_not_serve(tmp_path: Path, damage, message: str) -> None:
    d = _copy(tmp_path)
    damage(d)
    profile = Profile(window_s=30, signals={s: {"unit": "mm/s" if s == "vibration" else None} for s in SIGNALS})
    with pytest.raises(ModelError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load_model_set(d, "pump", profile)


def test_profile_with_an_extra_signal_is_refused() -> None:
    extra = Profile(window_s=30, signals={**{s: {} for s in SIGNALS}, "speed": {}})
    with pytest.raises(ModelError, match=r"profile has signal\(s\) \['speed'\]"):
        load_model_set(model_dir(), "pump", extra)


def test_engine_raises_explained_alarms_and_skips_silent_windows() -> None:
    h = read_history([fault_csv()])
    alerts: list[Alert] = []
    ms = load_model_set(model_dir(), "pump", PROFILE)
    engine = Engine(profile_config("pump", PROFILE, ["p1"]), alerts.append, models={"pump": ms}, clock=lambda: 0.0)
    # silence temperature for two minutes early on: those windows are skipped, not scored
    silent = (h.ts - h.ts[0] > 600) & (h.ts - h.ts[0] < 720)
    h.values[silent, SIGNALS.index("temperature")] = np.nan
    replay(h, engine, ["p1"])
    assert engine.windows_skipped > 60
    raised = [a for a in alerts if a.kind == "anomaly" and a.state == AlertState.RAISED]
    assert raised and 1800 < raised[0].ts - h.ts[0] < 3000
    assert all(a.ts - h.ts[0] > 1000 for a in raised)  # the silent stretch did not alarm
    ev = raised[0].evidence
    assert ev["model_version"] == ms.version and ev["threshold"] == ms.threshold and ev["top"]
    assert "unlike normal" in raised[0].message
    risks = [a for a in alerts if a.kind == "failure_risk" and a.state == AlertState.RAISED]
    assert risks and risks[0].evidence["class"] == "bearing_wear"


def test_serving_imports_no_training_libraries() -> None:
    code = (
        "import sys\n"
        "from edgegw.config import Profile\n"
        "from edgegw.engine.models import load_model_set\n"
        f"p = Profile(window_s=30, signals={{s: {{}} for s in {SIGNALS!r}}})\n"
        f"load_model_set({str(model_dir())!r}, 'pump', p)\n"
        "print(','.join(m for m in ('sklearn', 'skl2onnx', 'onnx', 'pandas') if m in sys.modules))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ""
