"""The engine with a pump description: the rollup's `pump` object and derived signals, each pump
alarm after its delay and not before, totals across a restart, per-asset overrides, and the
description's validation (the field named)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from edgegw.config import ConfigError, GatewayConfig, load_config
from edgegw.engine.engine import Engine
from edgegw.pump.totals import TotalsFile
from edgegw.records import Alert
from tests.helpers import EXAMPLE

RHO_G = 998 * 9.80665
Q = [0, 20, 40, 60, 80]
PUMP: dict[str, Any] = {
    "flow": "flow",
    "discharge_pressure": "pressure",
    "suction_pressure": "suction_pressure",
    "current": "current",
    "liquid_temperature": 20,
    "density": 998,
    "motor": {"voltage": 230, "power_factor": 0.86, "efficiency": 0.9},
    "curve": {
        "flow": Q,
        "head": [round(52 - 0.0044 * q * q, 3) for q in Q],
        "efficiency": [0.0, 0.45, 0.66, 0.74, 0.68],
        "npsh_required": [1.5, 2.0, 2.4, 3.0, 4.5],
    },
    "bep_flow": 60,
    "region": {"preferred": [0.7, 1.2], "delay_s": 5},
    "npsh": {"min_margin_m": 1.0, "delay_s": 2},
    "wear": {"head_deficit_pct": 5, "over_s": 8},
    "dry_run": {"delay_s": 3},
}
BEP = {"flow": 60.0, "pressure": 4.74, "suction_pressure": 1.2, "current": 26.0, "vibration": 3.0, "temperature": 50.0}


def write(tmp_path: Path, pump: dict[str, Any] | None = None, assets: list[dict[str, Any]] | None = None) -> Path:
    d = yaml.safe_load(EXAMPLE.read_text())
    prof = d["profiles"]["pump"]
    prof.pop("model")
    for sig in prof["signals"].values():
        for k in ("hi", "hihi", "lo", "lolo"):
            sig.pop(k, None)
    prof["pump"] = pump if pump is not None else PUMP
    if assets is not None:
        d["assets"] = assets
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump(d, sort_keys=False))
    return f


class Rig:
    def __init__(self, cfg: GatewayConfig) -> None:
        self.alerts: list[Alert] = []
        self.engine = Engine(cfg, self.alerts.append, clock=lambda: 0.0)
        self.t = 0.0

    def run(self, seconds: float, asset: str = "pump-1", **over: float) -> None:
        v = {**BEP, **over}
        for _ in range(int(seconds * 2)):
            for s, x in v.items():
                self.engine.ingest(asset, s, self.t, x)
            self.engine.run_hops()
            self.t += 0.5

    def raised(self, kind: str) -> list[Alert]:
        return [a for a in self.alerts if a.kind == kind and a.state == "raised"]


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(load_config(write(tmp_path)))


def test_rollup_carries_the_pump_object_and_derived_signals(rig: Rig) -> None:
    rig.run(20)
    r = next(x for x in rig.engine.take_rollups(0, 20) if x.asset == "pump-1")
    p = r.to_dict()["pump"]
    assert p["head_m"] == pytest.approx(3.54e5 / RHO_G, rel=1e-6)  # 36.17 m
    assert p["hydraulic_kw"] == pytest.approx(5.9, rel=1e-6)
    assert p["electrical_kw"] == pytest.approx(8.9076, rel=1e-4)
    assert p["efficiency"] == pytest.approx(0.66236, rel=1e-4)
    assert p["specific_kwh_m3"] == pytest.approx(0.14846, rel=1e-4)
    assert p["bep_ratio"] == pytest.approx(1.0)
    assert p["npsh_available_m"] == pytest.approx(22.375, abs=1e-3)
    # hops end at 1..19 s; each counts the time since the one before: 18 s at 8.9076 kW = 0.04454 kWh, 0.3 m3
    assert p["energy_kwh"] == pytest.approx(8.9076 * 18 / 3600, rel=1e-3)
    assert p["volume_m3"] == pytest.approx(60 * 18 / 3600, rel=1e-3)
    assert p["starts"] == 1 and p["running"] is True
    assert p["region_preferred_share"] == 1.0
    # the derived signals sit beside the measured ones, with their stats
    assert r.signals["head_m"].count == 19 and r.signals["efficiency"].to_dict()["mean"] == pytest.approx(0.66236, rel=1e-4)
    # an asset that never reported has the object, with nothing measured
    other = next(x for x in rig.engine.take_rollups(0, 20) if x.asset == "pump-2").to_dict()["pump"]
    assert other["head_m"] is None and other["energy_kwh"] == 0.0
    assert not rig.alerts


def test_operating_region_after_its_delay_and_not_before(rig: Rig) -> None:
    rig.run(10)
    h24 = 52 - 0.0044 * 24 * 24
    off = {"flow": 24.0, "pressure": round(1.2 + h24 * RHO_G / 1e5, 3), "current": 20.0}
    rig.run(4.5, **off)
    assert not rig.raised("operating_region"), "raised before its 5 s delay"
    t_change = 10.0
    rig.run(3, **off)
    (a,) = rig.raised("operating_region")
    assert a.ts - t_change >= 5.0 and a.source == "pump" and str(a.severity) == "warning"
    assert a.message == "pump-1 runs at 40 % of its best-efficiency flow for 5 s: outside 70–120 %"
    assert a.evidence["bep_ratio"] == pytest.approx(0.4) and a.evidence["preferred"] == [0.7, 1.2]
    rig.run(8)
    assert [x.state for x in rig.alerts if x.kind == "operating_region"] == ["raised", "cleared"]


def test_npsh_alarm_on_a_falling_suction(rig: Rig) -> None:
    rig.run(5)
    rig.run(5, suction_pressure=-0.75, pressure=2.79)  # NPSHa 2.45 m against 3.0 m required
    (a,) = rig.raised("npsh")
    assert str(a.severity) == "critical" and a.evidence["npsh_margin_m"] == pytest.approx(2.4523 - 3.0, abs=0.01)
    assert "NPSH margin -0.55 m (available 2.45 m, required 3.00 m at 60 m3/h) below 1 m" in a.message
    assert not rig.raised("performance") and not rig.raised("operating_region")


def test_performance_alarm_on_a_worn_impeller(rig: Rig) -> None:
    rig.run(5)
    rig.run(3, pressure=round(1.2 + 0.9 * 3.54, 3))
    assert not rig.raised("performance"), "a deficit must hold about over_s / 2 first"
    rig.run(10, pressure=round(1.2 + 0.9 * 3.54, 3))
    (a,) = rig.raised("performance")
    assert "head" in a.message and "under the curve (limit 5 %)" in a.message
    assert a.evidence["head_deficit_pct"] == pytest.approx(10.0, abs=1.5)


def test_dry_run(rig: Rig) -> None:
    rig.run(5)
    rig.run(5, flow=0.0, pressure=1.25, current=12.0)  # power, no flow, no head: no liquid
    (a,) = rig.raised("dry_run")
    assert "dry run" in a.message and str(a.severity) == "critical"
    assert not rig.raised("operating_region"), "a dry run is not also an operating-region alarm"


def test_dead_head_is_named(tmp_path: Path) -> None:
    rig = Rig(load_config(write(tmp_path)))
    rig.run(5)
    rig.run(5, flow=0.0, pressure=1.2 + 52 * RHO_G / 1e5, current=14.0)  # shut-off head: a closed valve
    (a,) = rig.raised("dry_run")
    assert "dead-head" in a.message


def test_totals_continue_across_a_restart(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path))
    first = Rig(cfg)
    first.run(30)
    store = TotalsFile(tmp_path, "gw")
    assert store.write(first.engine.pump_totals())
    saved = first.engine.pump_totals()["pump-1"]
    second = Rig(cfg)
    assert second.engine.restore_pump_totals(store.read()) == 4
    second.t = 100.0
    second.run(10)
    p = next(x for x in second.engine.take_rollups(0, 10) if x.asset == "pump-1").pump or {}
    assert p["energy_kwh"] == pytest.approx(saved["energy_kwh"] + 8.9076 * 8 / 3600, rel=1e-3)  # hops at 101..109 s
    assert p["starts"] == 2 and p["run_hours"] > saved["run_hours"]
    assert saved["head_deficit_smoothed_pct"] == pytest.approx(-0.03, abs=0.01)  # the wear judgement goes on too
    assert store.path == tmp_path / "gw.pump-totals.json"
    store.path.write_text("{not json")
    assert TotalsFile(tmp_path, "gw").read() == {}


def test_an_asset_overrides_its_profiles_description(tmp_path: Path) -> None:
    assets = [
        {"id": "pump-1", "profile": "pump", "pump": {"bep_flow": 40, "motor": {"voltage": 400}}},
        {"id": "pump-2", "profile": "pump"},
    ]
    rig = Rig(load_config(write(tmp_path, assets=assets)))
    rig.run(6)
    rig.run(6, asset="pump-2")
    rolls = {r.asset: r.pump or {} for r in rig.engine.take_rollups(0, 10)}
    assert rolls["pump-1"]["bep_ratio"] == pytest.approx(1.5)  # 60 of 40 m3/h
    assert rolls["pump-1"]["electrical_kw"] == pytest.approx(8.9076 * 400 / 230, rel=1e-4)  # the motor merged, pf kept
    assert rolls["pump-2"]["bep_ratio"] == pytest.approx(1.0)


def test_limits_on_a_derived_signal(tmp_path: Path) -> None:
    rig = Rig(load_config(write(tmp_path, {**PUMP, "limits": {"efficiency": {"lo": 0.7, "on_delay_s": 1}}})))
    rig.run(5)
    (a,) = [x for x in rig.alerts if x.kind == "threshold"]
    assert a.source == "efficiency" and a.evidence["limit"] == 0.7 and "below lo 0.7" in a.message


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"curve": {**PUMP["curve"], "flow": [0, 20, 20, 60, 80]}}, "profiles.pump.pump.curve.flow", "rise strictly"),
        ({"curve": {**PUMP["curve"], "head": [52, 50, 45]}}, "profiles.pump.pump.curve.head", "3 point(s), flow has 5"),
        ({"curve": {**PUMP["curve"], "efficiency": [0, 45, 66, 74, 68]}}, "profiles.pump.pump.curve.efficiency", "within 0..1"),
        ({"flow": "flow_rate"}, "profiles.pump.pump.flow", "'flow_rate' is not in this profile's signals"),
        ({"motor": None}, "profiles.pump.pump.motor", "needed with current"),
        ({"bep_flow": 120}, "profiles.pump.pump.bep_flow", "outside the curve's flow"),
        ({"region": {"preferred": [1.2, 0.7]}}, "profiles.pump.pump.region.preferred", "lo < hi"),
        ({"limits": {"speed": {"hi": 1}}}, "profiles.pump.pump.limits.speed", "not a derived signal"),
        ({"density": "water"}, "profiles.pump.pump.density", "number"),
    ],
)
def test_a_bad_description_names_its_field(tmp_path: Path, change: dict[str, Any], field: str, words: str) -> None:
    f = write(tmp_path, {**PUMP, **change})
    with pytest.raises(ConfigError) as e:
        load_config(f)
    (p,) = e.value.problems
    assert f": {field}: " in p and words in p, p
    assert p.startswith(f"{f}:") and p.split(":")[1].isdigit(), "names the line"


def test_a_bad_asset_override_names_the_asset(tmp_path: Path) -> None:
    f = write(tmp_path, assets=[{"id": "pump-1", "profile": "pump", "pump": {"current": "amps"}}])
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert "assets.0.pump.current: signal 'amps' is not in this profile's signals" in e.value.problems[0]


def test_the_documented_example_is_a_valid_config() -> None:
    import re

    from edgegw.config.pump import pumps_of

    text = (EXAMPLE.parent.parent / "docs" / "pump.md").read_text()
    block = re.search(r"```yaml\n(.*?)```", text, re.S)
    assert block is not None
    cfg = GatewayConfig.model_validate(yaml.safe_load(block.group(1)))
    pumps = pumps_of(cfg.assets, cfg.profiles)
    assert pumps["pump-2"].motor is not None and pumps["pump-2"].motor.voltage == 230 and pumps["pump-2"].bep_flow == 55


def test_pump_alarms_restored_after_a_restart_clear_normally(rig: Rig) -> None:
    e = rig.engine
    assert e.restore("pump-1", "npsh", "pump") and e.restore("pump-1", "operating_region", "pump")
    assert not e.restore("pump-1", "threshold", "efficiency"), "no limit on efficiency in this description"
    rig.run(20)  # healthy at BEP: both clear, with their words
    cleared = {a.kind: a.message for a in rig.alerts if a.state == "cleared"}
    assert set(cleared) == {"npsh", "operating_region"}
    assert cleared["operating_region"] == "pump-1 back in its preferred operating region at 100 % of its best-efficiency flow"


def test_a_restored_limit_on_a_derived_signal_clears(tmp_path: Path) -> None:
    rig = Rig(load_config(write(tmp_path, {**PUMP, "limits": {"efficiency": {"lo": 0.5}}})))
    assert rig.engine.restore("pump-1", "threshold", "efficiency", -1)
    rig.run(5)
    assert [(a.kind, a.source, str(a.state)) for a in rig.alerts] == [("threshold", "efficiency", "cleared")]


def test_hop_results_carry_the_derived_signals(rig: Rig) -> None:
    from edgegw.records import HopResult

    got: list[HopResult] = []
    rig.engine.on_hop = got.append
    rig.run(5)
    r = got[-1]
    j = r.signals.index("hydraulic_kw")
    assert r.signals[:6] == ["vibration", "pressure", "temperature", "flow", "current", "suction_pressure"]
    i = r.assets.index("pump-1")
    assert r.last is not None and r.last[i, j] == pytest.approx(5.9)
    (b,) = [k for k in range(r.buckets.shape[1]) if r.bucket_asset[k] == i]
    assert r.buckets[0, b, j] == 1 and r.buckets[1, b, j] == pytest.approx(5.9)  # one value: count 1, its mean
    assert r.buckets.shape[2] == len(r.signals) == r.bucket_bad.shape[1]
