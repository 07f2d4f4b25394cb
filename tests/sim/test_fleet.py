"""The simulated pumps: deterministic, healthy inside the example limits, faults with their signatures."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edgegw.sim.faults import MODES, make_fault, parse_fault, random_faults
from edgegw.sim.fleet import REPORTED, Fleet

ASSETS = ["pump-1", "pump-2", "pump-3", "pump-4"]
LIMITS_HI = {"vibration": 7.1, "temperature": 80.0, "current": 45.0}
LIMITS_LO = {"pressure": 2.0, "flow": 20.0}


def run(fleet: Fleet, seconds: float) -> dict[str, dict[str, np.ndarray]]:
    """Per asset, per signal: the values over time (NaN where a signal was missing)."""
    rows: dict[str, dict[str, list[float]]] = {a: {s: [] for s in (*REPORTED, "t")} for a in fleet.assets}
    for _ in range(round(seconds * fleet.rate_hz)):
        for s in fleet.step():
            for k in REPORTED:
                rows[s.asset][k].append(s.values.get(k, np.nan))
            rows[s.asset]["t"].append(s.t)
    return {a: {k: np.array(v) for k, v in d.items()} for a, d in rows.items()}


def test_same_seed_same_history_and_pumps_independent() -> None:
    a = run(Fleet(ASSETS, seed=3), 60)
    b = run(Fleet(ASSETS, seed=3), 60)
    c = run(Fleet(ASSETS, [make_fault("pump-2", "cavitation", 10, 20)], seed=3), 60)
    d = run(Fleet(ASSETS, seed=4), 60)
    assert all(np.array_equal(a[p][k], b[p][k]) for p in ASSETS for k in REPORTED)
    # a fault on one pump leaves the others' signals exactly as they were
    assert np.array_equal(a["pump-1"]["vibration"], c["pump-1"]["vibration"])
    assert not np.array_equal(a["pump-2"]["pressure"], c["pump-2"]["pressure"])
    assert not np.array_equal(a["pump-1"]["vibration"], d["pump-1"]["vibration"])


def test_healthy_pumps_stay_inside_the_example_limits_for_hours() -> None:
    h = run(Fleet([f"pump-{i}" for i in range(1, 9)], seed=11, rate_hz=1.0), 3 * 3600)
    for p, sig in h.items():
        for k, hi in LIMITS_HI.items():
            assert sig[k].max() < hi * 0.9, (p, k, sig[k].max())
        for k, lo in LIMITS_LO.items():
            assert sig[k].min() > lo * 1.5, (p, k, sig[k].min())
        # the load cycle moves the operating point: flow swings, current follows
        assert np.ptp(sig["flow"]) > 10
        assert np.corrcoef(sig["flow"], sig["pressure"])[0, 1] < -0.5  # pump curve: more flow, less head


def test_values_are_quantised_like_transmitters() -> None:
    h = run(Fleet(["p"], seed=1), 10)["p"]
    assert np.allclose(h["temperature"] * 10, np.round(h["temperature"] * 10))
    assert np.allclose(h["pressure"] * 100, np.round(h["pressure"] * 100))


def _window(h: dict[str, np.ndarray], k: str, t0: float, t1: float) -> np.ndarray:
    m = (h["t"] >= t0) & (h["t"] < t1)
    return h[k][m]


def test_process_faults_have_their_own_signatures() -> None:
    faults = [
        make_fault("bw", "bearing_wear", 30, 60),
        make_fault("cav", "cavitation", 30, 40),
        make_fault("imb", "impeller_imbalance", 30),
        make_fault("leak", "seal_leak", 30, 20),
        make_fault("ovl", "motor_overload", 30, 40),
    ]
    h = run(Fleet(["bw", "cav", "imb", "leak", "ovl", "ok"], faults, seed=5), 180)
    before, late = (0, 30), (140, 180)

    def mean(p: str, k: str, span: tuple[float, float]) -> float:
        return float(np.nanmean(_window(h[p], k, *span)))

    assert mean("bw", "vibration", late) > 7.1 and mean("bw", "vibration", before) < 3.5
    assert mean("bw", "temperature", late) > mean("bw", "temperature", before) + 15
    assert mean("cav", "suction_pressure", late) < 0.4 < mean("cav", "suction_pressure", before)
    assert mean("cav", "pressure", late) < 2.0
    flicker = [np.std(np.diff(_window(h["cav"], "flow", *span))) for span in (before, late)]
    assert flicker[1] > 3 * flicker[0]  # vapour pockets: the flow flickers sample to sample
    assert mean("imb", "vibration", (35, 60)) > mean("imb", "vibration", before) + 2.5
    assert mean("leak", "flow", late) < mean("ok", "flow", late) - 10
    assert abs(mean("leak", "current", late) - mean("ok", "current", late)) < 2.5
    assert mean("ovl", "current", late) > 45.0
    assert mean("ovl", "motor_temperature", late) > mean("ovl", "motor_temperature", before) + 20
    for k, hi in LIMITS_HI.items():
        assert np.nanmax(h["ok"][k]) < hi


def test_sensor_faults_act_on_one_signal_for_a_while() -> None:
    faults = [
        make_fault("st", "stuck", 10, duration_s=10, signal="pressure"),
        make_fault("do", "dropout", 10, duration_s=10, signal="temperature"),
        make_fault("sp", "spikes", 10, duration_s=10, signal="vibration"),
    ]
    h = run(Fleet(["st", "do", "sp"], faults, seed=2), 30)
    stuck = _window(h["st"], "pressure", 10, 20)
    assert np.all(stuck == stuck[0]) and np.ptp(_window(h["st"], "pressure", 20, 30)) > 0
    assert np.isnan(_window(h["do"], "temperature", 10, 20)).all()
    assert not np.isnan(_window(h["do"], "temperature", 20, 30)).any()
    assert not np.isnan(_window(h["do"], "vibration", 10, 20)).any()
    assert _window(h["sp"], "vibration", 10, 20).max() > 2 * _window(h["sp"], "vibration", 0, 10).max()


def test_labels_name_the_fault_from_its_onset() -> None:
    faults = [make_fault("a", "seal_leak", 1.0, 0.0, duration_s=1.0), make_fault("b", "cavitation", 1.0, 10.0)]
    fleet = Fleet(["a", "b", "c"], faults, seed=0, rate_hz=2)
    labels = [[s.label for s in fleet.step()] for _ in range(20)]
    assert [row[0] for row in labels[:6]] == ["normal", "normal", "seal_leak", "seal_leak", "normal", "normal"]
    # cavitation shows once the suction loss lowers the discharge pressure, at 15 % of its development
    assert [row[1] for row in labels].index("cavitation") == 2 + 3
    assert all(row[2] == "normal" for row in labels)


def test_parse_fault() -> None:
    f = parse_fault("pump-1:bearing_wear@40,ramp=60s")
    assert (f.asset, f.mode, f.start_s, f.ramp_s, f.duration_s) == ("pump-1", "bearing_wear", 40.0, 60.0, None)
    g = parse_fault("pump-4:dropout@100,for=20,signal=flow")
    assert (g.signal, g.end_s) == ("flow", 120.0)
    assert parse_fault("p:stuck@5").signal == "pressure"
    for bad in ("pump-1:melting@4", "pump-1@4", "pump-1:seal_leak@4,signal=flow", "p:cavitation@1,colour=red"):
        with pytest.raises(ValueError):
            parse_fault(bad)
    with pytest.raises(ValueError, match="unknown assets"):
        Fleet(["a"], [parse_fault("b:stuck@1")])


def test_random_faults_are_seeded_and_never_overlap_on_one_pump() -> None:
    a = random_faults(ASSETS, 30, 7200, np.random.default_rng(1))
    b = random_faults(ASSETS, 30, 7200, np.random.default_rng(1))
    assert a == b and len(a) == 30
    assert {f.mode for f in a} <= set(MODES)
    for p in ASSETS:
        mine = sorted((f for f in a if f.asset == p), key=lambda f: f.start_s)
        assert all(x.end_s <= y.start_s for x, y in itertools.pairwise(mine))
