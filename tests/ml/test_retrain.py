"""The retrain child's rules on feature rows of a small profile: what it never learns from (alarm
spans, the margin before them, missing or sparse data), the validation against the current model,
the trend guard (a slow creep is refused and the old model kept), the atomic swap and rollback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgegw.config import Profile
from edgegw.config.learn import LearnConfig
from edgegw.engine.features import FEATURES, feature_names
from edgegw.engine.models import load_model_set
from edgegw.learn.store import ModelStore, StoreError
from edgegw.ml.retrain import Rows, normal_mask, retrain_one

SIGNALS = ["vibration", "pressure", "flow"]
PROFILE = Profile(window_s=30, hop_s=1, signals={s: {} for s in SIGNALS})
NAMES = feature_names(SIGNALS)
LCFG = LearnConfig(min_history_s=500, min_windows=200, margin_s=0)


def learn(**over: object) -> LearnConfig:
    return LearnConfig.model_validate({**LCFG.model_dump(), **over})


def rows(n: int, t0: float = 0.0, seed: int = 0, asset: str = "pump-1", signals: list[str] = SIGNALS) -> Rows:
    """n hops of a healthy pump's feature rows: shape features steady, 60 samples a window."""
    rng = np.random.default_rng(seed)
    names = feature_names(signals)
    x = np.empty((n, len(names)))
    for j, name in enumerate(names):
        feat = name.split(".", 1)[1]
        base = {"count": 60.0, "kurtosis": 3.0, "crest": 1.4, "skew": 0.0, "slope": 0.0}.get(feat, 1.0 + j % 7)
        x[:, j] = base + 0.05 * rng.standard_normal(n) * (0 if feat == "count" else max(abs(base), 1.0))
    return Rows(asset, t0 + np.arange(1, n + 1, dtype=float), x, names)


def col(signal: str, feat: str) -> int:
    return NAMES.index(f"{signal}.{feat}")


def test_normal_rows_leave_out_alarm_spans_the_margin_before_them_and_missing_or_sparse_data() -> None:
    r = rows(1000)
    r.spans = [(400.0, 450.0, "threshold")]
    r.x[100, col("pressure", "std")] = np.nan  # a signal missing from the window
    r.x[200, col("flow", "count")] = 10.0  # a window just after a gap
    ok = normal_mask(r, window_s=30, margin_s=60, min_samples=np.array([30, 30, 30]))
    assert not ok[100] and not ok[200]
    # a row's window [end - 30, end) must not overlap [400 - 60, 450)
    assert ok[r.ends <= 340].sum() == (r.ends <= 340).sum() - 2
    assert not ok[(r.ends > 340) & (r.ends < 480)].any()
    assert ok[r.ends >= 480].all()


def test_commissioning_arms_a_model_the_engine_loads(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    v = retrain_one("pump-1", "pump", PROFILE, LCFG, rows(800), store)
    assert v["outcome"] == "armed", v
    path = store.current("pump-1")
    assert path is not None and path.name == v["version"]
    model = load_model_set(path, "pump", PROFILE)
    assert model.version == v["version"]
    assert [f.split(".", 1)[1] for f in model.meta.anomaly.features_used] == [
        f for s in SIGNALS for f in FEATURES if f in LCFG.features
    ][: len(model.meta.anomaly.features_used)]


def test_too_little_history_keeps_learning(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    v = retrain_one("pump-1", "pump", PROFILE, LCFG, rows(300), store)
    assert v["outcome"] == "learning" and "needed" in v["reason"]
    assert store.current("pump-1") is None


def test_a_slow_creep_through_a_retrain_period_is_refused_and_the_old_model_kept(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    first = retrain_one("pump-1", "pump", PROFILE, LCFG, rows(800), store)
    assert first["outcome"] == "armed"
    later = rows(1600)
    creep = later.ends > 800  # the rows the next model would newly absorb: vibration creeps up
    ramp = (later.ends[creep] - 800) / 800
    for feat in ("mean", "min", "max", "rms", "last"):
        later.x[creep, col("vibration", feat)] += 0.6 * ramp * later.x[0, col("vibration", feat)]
    v = retrain_one("pump-1", "pump", PROFILE, LCFG, later, store)
    assert v["outcome"] == "refused" and "trend guard" in v["reason"] and "vibration crept up" in v["reason"], v
    assert store.current_version("pump-1") == first["version"]
    # the creep levels off at its new height: no longer steady, but not back either, so still refused
    flat = rows(2400)
    high = flat.ends > 800
    for feat in ("mean", "min", "max", "rms", "last"):
        c = col("vibration", feat)
        flat.x[high, c] += 0.6 * np.minimum((flat.ends[high] - 800) / 800, 1.0) * flat.x[0, c]
    v = retrain_one("pump-1", "pump", PROFILE, LCFG, flat, store)
    assert v["outcome"] == "refused" and "still beyond" in v["reason"], v
    assert store.current_version("pump-1") == first["version"]
    # the same stretch without the creep replaces the model
    v = retrain_one("pump-1", "pump", PROFILE, LCFG, rows(1600, seed=1), store)
    assert v["outcome"] == "replaced", v
    assert store.current_version("pump-1") == v["version"] != first["version"]


def _lead_in(store: ModelStore) -> Rows:
    """History with a bearing fault whose impacts (kurtosis, crest) began 200 s before the
    anomaly alarm was raised: the current model alarms on the span."""
    r = rows(1600, seed=2)
    fault = (r.ends > 1100) & (r.ends < 1400)
    r.x[fault, col("vibration", "kurtosis")] += 4.0
    r.x[fault, col("vibration", "crest")] += 1.0
    r.spans = [(1300.0, 1400.0, "anomaly")]
    return r


def test_a_candidate_that_learned_a_faults_lead_in_is_refused_and_a_margin_keeps_it_out(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    first = retrain_one("pump-1", "pump", PROFILE, LCFG, rows(800, seed=3), store)
    assert first["outcome"] == "armed"
    v = retrain_one("pump-1", "pump", PROFILE, learn(trend={"enabled": False}), _lead_in(store), store)
    assert v["outcome"] == "refused" and "misses alarm spans" in v["reason"], v
    assert store.current_version("pump-1") == first["version"]
    with_margin = learn(margin_s=300.0, trend={"enabled": False})
    v = retrain_one("pump-1", "pump", PROFILE, with_margin, _lead_in(store), store)
    assert v["outcome"] == "replaced", v


def test_a_candidate_in_alarm_on_held_out_normal_rows_is_refused(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    r = rows(900)
    late = r.ends > 900 - 0.2 * 900  # the held-out stretch is unlike what the model learned from
    r.x[late, col("flow", "std")] *= 3.0
    v = retrain_one("pump-1", "pump", PROFILE, LCFG, r, store)
    assert v["outcome"] == "refused" and "held-out" in v["reason"], v
    assert store.current("pump-1") is None


def test_swap_is_atomic_keeps_the_last_n_and_rolls_back(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    versions = []
    for i in range(4):
        staged = store.staging("pump-1", f"v{i}")
        (staged / "model.json").write_text("{}")
        store.install("pump-1", staged, f"v{i}", keep=3)
        versions.append(f"v{i}")
        assert (store.folder("pump-1") / "current").is_symlink()
        assert store.current_version("pump-1") == f"v{i}"
    assert store.installed("pump-1") == ["v1", "v2", "v3"]
    assert not (store.folder("pump-1") / "v0").exists()
    assert store.rollback("pump-1") == "v2" and store.current_version("pump-1") == "v2"
    assert store.rollback("pump-1") == "v1"
    with pytest.raises(StoreError, match="no earlier model"):
        store.rollback("pump-1")
    assert not list(store.folder("pump-1").glob(".*tmp"))
