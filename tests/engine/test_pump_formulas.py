"""Pump formulas against hand-worked values (units in each name), the water vapour pressure
against published tables, and the curve interpolation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgegw.config.pump import PumpSpec
from edgegw.engine.pump import (
    Curve,
    Pump,
    bep_flow,
    derive,
    electrical_kw,
    head_m,
    hydraulic_kw,
    npsh_available_m,
    vapour_pressure_bar,
    velocity_m_s,
)

RHO = 998.0
G = 9.80665


def test_vapour_pressure_matches_published_values() -> None:
    # Steam tables (IAPWS-95 / NIST): 2.3392 kPa at 20 degC, 12.352 kPa at 50, 47.414 kPa at 80
    for t_c, kpa in ((20.0, 2.3392), (50.0, 12.352), (80.0, 47.414)):
        assert float(vapour_pressure_bar(t_c)) * 100.0 == pytest.approx(kpa, rel=2e-4), t_c
    # IAPWS-IF97's own check values for equation 30 (Table 35): 300, 500, 600 K -> MPa
    for t_k, mpa in ((300.0, 0.353658941e-2), (500.0, 0.263889776e1), (600.0, 0.123443146e2)):
        assert float(vapour_pressure_bar(t_k - 273.15)) / 10.0 == pytest.approx(mpa, rel=1e-8), t_k
    # arrays too, and rising with temperature
    v = vapour_pressure_bar(np.array([5.0, 20.0, 60.0, 99.97]))
    assert np.all(np.diff(v) > 0) and v[-1] == pytest.approx(1.01325, rel=1e-3)  # boils at 1 atm


def test_head_from_pressures() -> None:
    # 4.74 - 1.2 bar = 354 kPa over rho g = 998 kg/m3 x 9.80665 m/s2 = 9787 N/m3: 36.17 m
    assert head_m(4.74, 1.2, RHO) == pytest.approx(354_000 / (RHO * G), rel=1e-12)
    assert head_m(4.74, 1.2, RHO) == pytest.approx(36.1703, abs=1e-4)
    # + 0.5 m gauge elevation + (v_d^2 - v_s^2) / 2g with 3 and 2 m/s: (9 - 4) / 19.6133 = 0.2549 m
    assert head_m(4.74, 1.2, RHO, 0.5, 3.0, 2.0) == pytest.approx(36.1703 + 0.5 + 0.25493, abs=1e-4)


def test_hydraulic_and_electrical_power() -> None:
    # rho g Q H = dp Q: 354 kPa x 60/3600 m3/s = 5.900 kW
    assert hydraulic_kw(60.0, head_m(4.74, 1.2, RHO), RHO) == pytest.approx(5.9, rel=1e-12)
    # sqrt(3) x 230 V x 26 A x 0.86 = 8907.6 W
    assert electrical_kw(230.0, 26.0, 0.86) == pytest.approx(8.90759, abs=1e-5)


def test_velocity_and_npsh_available() -> None:
    # 60 m3/h through a 100 mm bore: 0.016667 m3/s / 0.0078540 m2 = 2.1221 m/s
    assert velocity_m_s(60.0, 100.0) == pytest.approx(2.12207, abs=1e-5)
    # 1.2 bar gauge + 1.01325 ambient - 0.023392 vapour (20 degC) = 2.18986 bar abs -> 22.37 m
    assert npsh_available_m(1.2, 20.0, RHO) == pytest.approx(2.189858 * 1e5 / (RHO * G), rel=1e-5)
    assert npsh_available_m(1.2, 20.0, RHO) == pytest.approx(22.375, abs=1e-3)
    # a 100 mm suction pipe adds 2.1221^2 / 2g = 0.2296 m
    assert npsh_available_m(1.2, 20.0, RHO, v_suc=2.12207) - npsh_available_m(1.2, 20.0, RHO) == pytest.approx(0.22960, abs=1e-5)
    # hot water: at 80 degC the vapour takes 0.47414 bar of the inlet's pressure
    assert npsh_available_m(1.2, 80.0, RHO) == pytest.approx((2.21325 - 0.47414) * 1e5 / (RHO * G), rel=1e-4)


def test_curve_goes_through_its_points_and_never_overshoots() -> None:
    x = [0.0, 20.0, 40.0, 60.0, 80.0]
    y = [52.0, 51.9, 45.0, 20.0, 19.5]  # flat, steep, flat: a plain cubic spline would overshoot
    c = Curve(x, y)
    assert np.allclose(c(np.array(x)), y)
    q = np.linspace(0.0, 80.0, 801)
    h = c(q)
    assert np.all(np.diff(h) <= 1e-12), "a falling curve stays falling between its points"
    assert h.max() <= 52.0 + 1e-12 and h.min() >= 19.5 - 1e-12
    # two points: a straight line, also beyond them along the end slope
    line = Curve([0.0, 10.0], [5.0, 3.0])
    assert line(5.0) == pytest.approx(4.0) and line(15.0) == pytest.approx(2.0) and line(-5.0) == pytest.approx(6.0)


def test_curve_of_a_parabola_is_close_between_points() -> None:
    q = [0.0, 20.0, 40.0, 60.0, 80.0]
    c = Curve(q, [52 - 0.0044 * x * x for x in q])
    # H(24) = 52 - 0.0044 x 576 = 49.4656 m; the monotone cubic stays within 0.1 m
    assert float(c(24.0)) == pytest.approx(49.4656, abs=0.1)
    # the efficiency's top (BEP) from points 0.45, 0.66, 0.74, 0.68 at 20..80 m3/h lies near 60
    eff = Curve(q, [0.0, 0.45, 0.66, 0.74, 0.68])
    assert 57.0 <= eff.argmax() <= 63.0


def spec(**over: object) -> PumpSpec:
    d: dict[str, object] = {
        "flow": "flow",
        "discharge_pressure": "pressure",
        "suction_pressure": "suction_pressure",
        "current": "current",
        "liquid_temperature": 20,
        "density": 998,
        "motor": {"voltage": 230, "power_factor": 0.86, "efficiency": 0.9},
        "curve": {
            "flow": [0, 20, 40, 60, 80],
            "head": [52 - 0.0044 * q * q for q in (0, 20, 40, 60, 80)],
            "efficiency": [0.0, 0.45, 0.66, 0.74, 0.68],
            "npsh_required": [1.5, 2.0, 2.4, 3.0, 4.5],
        },
        "bep_flow": 60,
    }
    d.update(over)
    return PumpSpec.model_validate(d)


def test_derive_at_the_best_efficiency_point() -> None:
    p = Pump(spec())
    out = derive(p, np.array([60.0]), np.array([4.74]), np.array([1.2]), np.array([26.0]), None, np.array([True]))[:, 0]
    head, hyd, elec, w2w, peff, kwh_m3, ratio, npsha, margin, hdef, edef = out.tolist()
    assert head == pytest.approx(36.1703, abs=1e-4)
    assert hyd == pytest.approx(5.9, rel=1e-9)
    assert elec == pytest.approx(8.90759, abs=1e-5)
    assert w2w == pytest.approx(5.9 / 8.90759, rel=1e-5)  # 0.6624 wire to water
    assert peff == pytest.approx(5.9 / 8.90759 / 0.9, rel=1e-5)  # 0.7360 at the shaft
    assert kwh_m3 == pytest.approx(8.90759 / 60.0, rel=1e-5)  # 0.14846 kWh per m3
    assert ratio == pytest.approx(1.0)
    assert npsha == pytest.approx(22.375, abs=1e-3)
    assert margin == pytest.approx(22.375 - 3.0, abs=2e-3)  # NPSHr 3.0 m at 60 m3/h
    assert abs(hdef) < 0.05  # on the curve: 52 - 0.0044 x 3600 = 36.16 m
    assert edef == pytest.approx((1 - 0.73597 / 0.74) * 100, abs=0.05)


def test_derive_worn_and_stopped() -> None:
    p = Pump(spec())
    q = np.array([60.0, 0.0])
    out = derive(
        p, q, np.array([1.2 + 0.9 * 3.54, 1.2]), np.array([1.2, 1.2]), np.array([26.0, 0.0]), None, np.array([True, False])
    )
    assert out[9, 0] == pytest.approx(10.0, abs=0.05)  # head 10 % under the curve
    # a stopped pump has no efficiency, specific energy or deficit, and no power
    assert np.isnan(out[[3, 4, 5, 9, 10], 1]).all() and out[2, 1] == 0.0


def test_liquid_temperature_signal_and_power_signal() -> None:
    p = Pump(spec(current=None, motor=None, power="power", liquid_temperature="temperature"))
    out = derive(p, np.array([60.0]), np.array([4.74]), np.array([1.2]), np.array([8.0]), np.array([80.0]), np.array([True]))
    assert out[2, 0] == 8.0  # the measured kW as given
    assert out[7, 0] == pytest.approx((2.21325 - 0.47414) * 1e5 / (RHO * G), rel=1e-4)


def test_bep_from_the_efficiency_curve_and_running_threshold() -> None:
    s = spec(bep_flow=None)
    assert bep_flow(s) == pytest.approx(Curve(s.curve.flow, s.curve.efficiency or []).argmax())
    p = Pump(s)
    # 5 % of the BEP's electrical input: rho g Q H / (eta x motor) at the top of the curve
    q = bep_flow(s)
    want = (
        0.05
        * hydraulic_kw(q, float(Curve(s.curve.flow, s.curve.head)(q)), RHO)
        / (float(Curve(s.curve.flow, s.curve.efficiency or [])(q)) * 0.9)
    )
    assert p.run_kw == pytest.approx(want, rel=1e-9)
    assert math.isfinite(p.run_kw) and p.run_kw > 0
