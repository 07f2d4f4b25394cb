"""The simulator's pump physics against the gateway's pump figures: healthy pumps read within 3 %
of the physics' truth and raise no pump alarm; each pump-performance fault raises its alarm
(the example config's description, with delays short enough for a test)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from edgegw.config import load_config
from edgegw.engine.engine import Engine
from edgegw.records import Alert
from edgegw.sim.faults import make_fault, parse_fault
from edgegw.sim.fleet import Fleet
from edgegw.sim.history import write_history
from tests.helpers import EXAMPLE

T0 = 1767225600.0
FAST = [
    "profiles.pump.model=null",
    "profiles.pump.pump.wear.over_s=120",
    "profiles.pump.pump.region.delay_s=30",
    "profiles.pump.pump.npsh.delay_s=10",
]


def run(
    fleet: Fleet, seconds: float, truth_from: float = 1e9
) -> tuple[Engine, list[Alert], dict[str, list[dict[str, float]]], dict]:
    alerts: list[Alert] = []
    e = Engine(load_config(EXAMPLE, FAST), alerts.append, clock=lambda: 0.0)
    truth: dict[str, list[dict[str, float]]] = {a: [] for a in fleet.assets}
    suction: dict[str, float] = {}
    rolled = {}
    for _ in range(int(seconds * fleet.rate_hz)):
        for s in fleet.step():
            for k, v in s.values.items():
                if k != "motor_temperature":
                    e.ingest(s.asset, k, T0 + s.t, v)
            if s.t >= truth_from:
                truth[s.asset].append(s.truth)
            if s.values.get("suction_pressure", 9.0) < 0.75 and s.asset not in suction:
                suction[s.asset] = T0 + s.t  # the simulator's cavitation sets in here
        e.run_hops()
        if fleet.t == truth_from:
            e.take_rollups(0, 1)  # the interval to compare starts now
    rolled = {r.asset: r.pump for r in e.take_rollups(0, 1)}
    return e, alerts, truth, {"rollups": rolled, "cavitation": suction}


def test_healthy_pumps_read_the_physics_within_3_percent() -> None:
    fleet = Fleet(["pump-1", "pump-2", "pump-3", "pump-4"], seed=3)
    _, alerts, truth, got = run(fleet, 120, truth_from=60.0)
    for asset, rows in truth.items():
        p = got["rollups"][asset]
        for k, tol in (
            ("hydraulic_kw", 0.03),
            ("electrical_kw", 0.03),
            ("efficiency", 0.03),
            ("specific_kwh_m3", 0.03),
            ("npsh_available_m", 0.01),
        ):
            want = float(np.mean([r[k] for r in rows]))
            assert p[k] == pytest.approx(want, rel=tol), (asset, k)
        assert p["energy_kwh"] > 0 and p["starts"] == 1
    assert not [a for a in alerts if a.kind in ("operating_region", "npsh", "performance", "dry_run")]


def test_each_pump_fault_raises_its_alarm() -> None:
    faults = [
        parse_fault(x)
        for x in ("pump-1:strainer_clog@100", "pump-2:impeller_wear@100", "pump-3:off_bep@100", "pump-4:dry_run@100,for=40")
    ]
    fleet = Fleet(["pump-1", "pump-2", "pump-3", "pump-4"], faults, seed=1)
    _, alerts, _, got = run(fleet, 330)
    first = {}
    for a in alerts:
        if a.state == "raised":
            first.setdefault((a.asset, a.kind), a.ts)
    assert ("pump-3", "operating_region") in first
    assert ("pump-2", "performance") in first
    assert ("pump-4", "dry_run") in first
    # the strainer's NPSH alarm comes before its cavitation does
    assert first[("pump-1", "npsh")] < got["cavitation"]["pump-1"]
    for asset, kind in (("pump-3", "operating_region"), ("pump-2", "performance"), ("pump-4", "dry_run"), ("pump-1", "npsh")):
        assert first[(asset, kind)] > T0 + 100, "not before its fault"


def test_the_labelled_csv_carries_the_truth(tmp_path: Path) -> None:
    f = tmp_path / "h.csv"
    fleet = Fleet(["pump-1"], [make_fault("pump-1", "impeller_wear", 10.0, ramp_s=10.0)], seed=0)
    write_history(f, fleet, 30.0, T0, truth=True)
    rows = list(csv.DictReader(f.open()))
    assert rows[0]["label"] == "normal" and float(rows[0]["true_head_deficit_pct"]) == 0.0
    assert rows[-1]["label"] == "impeller_wear"
    assert float(rows[-1]["true_head_deficit_pct"]) == pytest.approx(12.0, abs=0.01)
    assert 0.5 < float(rows[0]["true_efficiency"]) < 0.7
    plain = tmp_path / "plain.csv"
    write_history(plain, Fleet(["pump-1"], seed=0), 1.0, T0)
    assert "true_" not in plain.read_text(), "without --truth the CSV keeps its columns (edgegw train reads them)"
