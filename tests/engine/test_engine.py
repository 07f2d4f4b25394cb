"""Engine without any network: alarms, stale, quality, hops, rollups, bad input."""

from __future__ import annotations

import math

from edgegw.config import GatewayConfig, load_config
from edgegw.engine.engine import START_GRACE_S, Engine
from edgegw.engine.models import Verdict
from edgegw.records import Alert, Severity
from tests.helpers import EXAMPLE

SIGNALS = {"vibration": 3.0, "pressure": 5.0, "temperature": 55.0, "flow": 60.0, "current": 30.0, "suction_pressure": 1.2}


def make(*overrides: str) -> tuple[Engine, list[Alert], list[float]]:
    cfg: GatewayConfig = load_config(EXAMPLE, ["profiles.pump.model=null", *overrides])
    clock = [1000.0]
    alerts: list[Alert] = []
    return Engine(cfg, alerts.append, clock=lambda: clock[0]), alerts, clock


def feed(e: Engine, asset: str, t0: float, n: int, dt: float = 0.1, **over: float) -> None:
    for i in range(n):
        for s, v in {**SIGNALS, **over}.items():
            e.ingest(asset, s, t0 + i * dt, v)


def test_raise_then_clear_one_message_each() -> None:
    e, alerts, _ = make()
    feed(e, "pump-2", 0, 50, vibration=12.5)
    feed(e, "pump-2", 5, 100, vibration=3.0)
    got = [(a.asset, a.kind, a.source, str(a.state), str(a.severity)) for a in alerts]
    assert got == [
        ("pump-2", "threshold", "vibration", "raised", "critical"),
        ("pump-2", "threshold", "vibration", "cleared", "info"),
    ]
    assert alerts[0].evidence["limit"] == 11.0 and alerts[0].evidence["value"] == 12.5


def test_bad_values_are_counted_and_raise_quality() -> None:
    e, alerts, _ = make("profiles.pump.signals.vibration.on_delay_s=0")
    e.ingest("pump-1", "vibration", 1.0, math.nan)
    e.ingest("pump-1", "vibration", 2.0, 1e308)
    e.ingest("pump-9", "vibration", 2.0, 1.0)
    e.ingest("pump-1", "bogus", 2.0, 1.0)
    e.ingest("pump-1", "vibration", 3.0, 3.0)
    e.ingest("pump-1", "vibration", 2.5, 3.0)
    assert e.rejected == {"bad_value": 2, "unknown_asset": 1, "unknown_signal": 1, "out_of_order": 1}
    assert [(a.kind, str(a.state)) for a in alerts][:1] == [("quality", "raised")]
    assert e.readings_in == 1


def test_stale_raised_by_wall_clock_and_cleared_by_data() -> None:
    e, alerts, clock = make()
    feed(e, "pump-1", 0, 1)
    clock[0] += 11
    e.tick()
    assert {(a.asset, a.kind) for a in alerts} == {("pump-1", "stale")}  # the others: never heard, still in the start grace
    clock[0] += START_GRACE_S
    e.tick()
    stale = [a for a in alerts if a.kind == "stale"]
    assert {a.asset for a in stale} == {"pump-1", "pump-2", "pump-3", "pump-4"}
    assert len(stale) == 4 * len(SIGNALS)
    alerts.clear()
    e.tick()
    assert alerts == []  # no repeat while still stale
    feed(e, "pump-1", 12 + START_GRACE_S, 1)
    assert sorted(a.source for a in alerts if a.kind == "stale" and a.state == "cleared") == sorted(SIGNALS)


def test_hops_follow_event_time_and_batch_assets() -> None:
    e, _, _ = make()
    seen: list[tuple[str, list[str], int]] = []
    e.hop_observer = lambda p, assets, ends, x, v: seen.append((p, assets, x.shape[1]))
    for i in range(5):
        for a in ("pump-1", "pump-2"):
            feed(e, a, 100 + i, 1)
        e.run_hops()
    assert len(seen) == 4 and seen[-1] == ("pump", ["pump-1", "pump-2"], 12 * len(SIGNALS))
    assert e.hops == 8


def test_rollups_aggregate_and_reset() -> None:
    e, _, _ = make()
    for i, v in enumerate([1.0, 2.0, 3.0]):
        e.ingest("pump-1", "vibration", 100 + i, v)
    r = {x.asset: x for x in e.take_rollups(0, 60)}["pump-1"].to_dict()
    v = r["signals"]["vibration"]
    assert (v["count"], v["mean"], v["min"], v["max"], v["last"]) == (3, 2.0, 1.0, 3.0, 3.0)
    assert {x.asset: x for x in e.take_rollups(60, 120)}["pump-1"].signals["vibration"].count == 0


def test_restore_lets_an_old_alarm_clear() -> None:
    e, alerts, _ = make("profiles.pump.signals.vibration.off_delay_s=0")
    assert e.restore("pump-3", "threshold", "vibration", 2)
    feed(e, "pump-3", 0, 1, vibration=3.0)
    assert [(a.source, str(a.state)) for a in alerts] == [("vibration", "cleared")]


class ScriptedScores:
    """What a model set returns for one hop, from a script of anomaly scores (threshold 1)."""

    def __init__(self, scores: list[float]) -> None:
        import numpy as np

        self.anomaly = np.array(scores)
        self.judged = np.ones(len(scores), dtype=bool)
        self.hot = self.anomaly > 1.0
        self.risk_hot = None

    def verdict(self, i: int, kind: str) -> Verdict:
        return Verdict(kind, bool(self.hot[i]), float(self.anomaly[i]), 1.0, Severity.WARNING, {"top": []})

    def verdicts(self) -> list[list[Verdict]]:
        return [[self.verdict(i, "anomaly")] for i in range(len(self.anomaly))]


class ScriptedModel:
    name, version, feature_names = "scripted", "1", []

    def __init__(self, script: dict[float, dict[str, float]], ids: list[str]) -> None:
        self.script, self.ids, self.hop_ends = script, ids, []

    def evaluate(self, x):  # pragma: no cover - the engine calls score()
        raise AssertionError

    def score(self, x) -> ScriptedScores:
        end = self.hop_ends.pop(0)
        return ScriptedScores([self.script.get(end, {}).get(a, 0.0) for a in self.ids[: len(x)]])


def test_model_alarms_debounce_raise_clear_restore_and_roll_up() -> None:
    """A blip shorter than on_delay raises nothing; a held condition raises once and clears once
    after off_delay; a restored alarm clears; rollups carry the max and mean score."""
    cfg = load_config(
        EXAMPLE,
        [
            "profiles.pump.model=null",
            "profiles.pump.model_alarms.on_delay_s=2",
            "profiles.pump.model_alarms.off_delay_s=2",
            "profiles.pump.window_s=2",
            "profiles.pump.hop_s=1",
        ],
    )
    ids = [a.id for a in cfg.assets]
    hot = {"pump-1": 5.0}
    script = {1003.0: hot, 1005.0: hot, 1006.0: hot, 1007.0: hot, 1008.0: {"pump-1": 0.5}}
    model = ScriptedModel(script, ids)
    alerts: list[Alert] = []
    e = Engine(cfg, alerts.append, models={"pump": model}, clock=lambda: 0.0)
    assert e.restore(ids[1], "anomaly", "scripted")
    for t in range(1000, 1013):
        for a in ids:
            feed(e, a, t, 1, dt=0)
        model.hop_ends.extend(float(x) for x in [t] * (1 if e.due else 0))
        e.run_hops()
    got = [(a.asset, str(a.state), a.ts) for a in alerts if a.kind == "anomaly"]
    # pump-2's restored alarm: its condition is gone from the first scored hop (1001), so it
    # clears off_delay later; pump-1: the blip at 1003 is forgotten, 1005..1007 raises at 1007,
    # gone from 1008, cleared at 1010
    assert got == [(ids[1], "cleared", 1003.0), ("pump-1", "raised", 1007.0), ("pump-1", "cleared", 1010.0)]
    r = {x.asset: x for x in e.take_rollups(0, 60)}
    assert (
        r["pump-1"].anomaly_max == 5.0 and r["pump-1"].anomaly_mean == sum([0, 0, 5, 0, 5, 5, 5, 0.5, 0, 0, 0, 0]) / 12
    )  # hops 1001 .. 1012
    assert r[ids[1]].anomaly_max == 0.0
    assert e.take_rollups(60, 120)[0].anomaly_max is None


def _scripted_run(overrides: list[str], delays: tuple[float, float] | None) -> list[tuple[str, str, float]]:
    cfg = load_config(EXAMPLE, ["profiles.pump.model=null", "profiles.pump.window_s=2", "profiles.pump.hop_s=1", *overrides])
    ids = [a.id for a in cfg.assets]
    hot = {"pump-1": 5.0}
    model = ScriptedModel({1003.0: hot, 1005.0: hot, 1006.0: hot, 1007.0: hot, 1008.0: {"pump-1": 0.5}}, ids)
    model.delays = delays
    alerts: list[Alert] = []
    e = Engine(cfg, alerts.append, models={"pump": model}, clock=lambda: 0.0)
    for t in range(1000, 1013):
        for a in ids:
            feed(e, a, t, 1, dt=0)
        model.hop_ends.extend(float(x) for x in [t] * (1 if e.due else 0))
        e.run_hops()
    return [(a.asset, str(a.state), a.ts) for a in alerts if a.kind == "anomaly"]


def test_model_alarm_delays_come_from_the_model_unless_the_profile_sets_them() -> None:
    """The model's own delays (trained for its hop) apply when the profile leaves them unset; a
    profile that sets them wins; with neither, 3 and 10 hops."""
    assert _scripted_run([], (2.0, 2.0)) == [("pump-1", "raised", 1007.0), ("pump-1", "cleared", 1010.0)]
    assert _scripted_run(["profiles.pump.model_alarms.on_delay_s=0", "profiles.pump.model_alarms.off_delay_s=0"], (2.0, 2.0)) == [
        ("pump-1", "raised", 1003.0),
        ("pump-1", "cleared", 1004.0),
        ("pump-1", "raised", 1005.0),
        ("pump-1", "cleared", 1008.0),
    ]
    assert _scripted_run([], None) == []  # 1005..1007 is shorter than 3 hops past its start
