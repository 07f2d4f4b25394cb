"""The daemon's Learner against a real model store: it counts an asset's normal rows from hops
(none while one of its alarms is active), picks up what a retrain installs (loaded, swapped in,
journaled), raises learn_refused on a refusal and clears it on the next success, and follows a
rollback. The gateway's seams (install, alarm, journal) are recorded as the gateway would act."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np

from edgegw.config import load_config
from edgegw.engine.models import load_model_set
from edgegw.learn.schedule import Learner
from edgegw.learn.store import ModelStore
from edgegw.ml.retrain import retrain_one
from edgegw.records import AlarmEvent, Alert, AlertState, HopResult, Severity
from tests.helpers import EXAMPLE
from tests.ml.test_retrain import LCFG, rows


class Seams:
    def __init__(self) -> None:
        self.serving: dict[str, Any] = {}
        self.alarms: list[Alert] = []
        self.journal: list[AlarmEvent] = []

    def install(self, key: str, profile: str, model: Any) -> None:
        self.serving[key] = model


def learner(tmp_path: Path, seams: Seams) -> Learner:
    cfg = load_config(
        EXAMPLE,
        [f"gateway.state_dir={tmp_path}", "profiles.pump.model=learn", "learn.min_history_s=100", "learn.min_windows=100"],
    )
    profiles = cfg.profiles

    def load(path: Path, profile: str) -> Any:
        return load_model_set(path, profile, profiles[profile])

    return Learner(cfg, None, tmp_path, load, seams.install, seams.alarms.append, seams.journal.append)


def hop(t: float, features: np.ndarray) -> HopResult:
    assets = ["pump-1", "pump-2", "pump-3", "pump-4"]
    return HopResult("pump", assets, np.full(4, t), 1.0, [], features, [])


def test_progress_counts_normal_rows_and_not_while_an_alarm_is_active(tmp_path: Path) -> None:
    seams = Seams()
    ln = learner(tmp_path, seams)
    x = np.ones((4, 3))
    x[3] = np.nan  # pump-4's window is not warm yet
    ln.alert(Alert("pump-2", "threshold", "vibration", AlertState.RAISED, Severity.WARNING, 0.0))
    for t in range(1, 61):
        ln.hop(hop(float(t), x))
    table = {r["asset"]: r for r in ln.table()}
    assert table["pump-1"]["normal_rows"] == 60 and table["pump-1"]["progress"] == 59.0  # 59 s of 100
    assert table["pump-2"]["normal_rows"] == 0 and table["pump-4"]["normal_rows"] == 0
    assert {r["state"] for r in table.values()} == {"learning"}
    assert ln.summary() == "learning 4 asset(s), 0 % of the history needed"  # systemd's status line, the page


def test_a_new_model_swaps_in_a_refusal_raises_learn_refused_and_rollback_follows(tmp_path: Path) -> None:
    seams = Seams()
    ln = learner(tmp_path, seams)
    store = ModelStore(tmp_path)
    profile = load_config(EXAMPLE).profiles["pump"]

    def pump_rows(n: int, seed: int) -> Any:
        return rows(n, seed=seed, signals=list(profile.signals))

    first = retrain_one("pump-1", "pump", profile, LCFG, pump_rows(800, 0), store)
    assert first["outcome"] == "armed", first
    asyncio.run(ln.check())
    assert seams.serving["pump-1"].version == first["version"]
    assert [e.event for e in seams.journal] == ["model_armed"]
    # a refused retrain (the verdict as the child writes it): the old model stays, the alarm is raised
    store.set_last("pump-1", {"asset": "pump-1", "outcome": "refused", "reason": "trend guard: vibration crept up"})
    asyncio.run(ln.check())
    assert seams.serving["pump-1"].version == first["version"]
    raised = [a for a in seams.alarms if a.kind == "learn_refused"]
    assert len(raised) == 1 and raised[0].state == AlertState.RAISED and raised[0].source == "pump-1"
    assert "trend guard" in raised[0].message and first["version"] in raised[0].message
    second = retrain_one("pump-1", "pump", profile, LCFG, pump_rows(1200, 1), store)
    assert second["outcome"] == "replaced", second
    asyncio.run(ln.check())
    assert seams.serving["pump-1"].version == second["version"]
    assert seams.alarms[-1].kind == "learn_refused" and seams.alarms[-1].state == AlertState.CLEARED
    store.rollback("pump-1")
    asyncio.run(ln.check())
    assert seams.serving["pump-1"].version == first["version"]
    assert [e.event for e in seams.journal if e.event.startswith("model_")] == [
        "model_armed",
        "model_replaced",
        "model_rolled_back",
    ]
    assert {r["asset"]: r["version"] for r in ln.table()}["pump-1"] == first["version"]
