"""Forecasts: the Theil-Sen trend and its interval, time to a limit, and the engine's forecast in
rollups and as an alarm: a slowly rising temperature is forecast with an interval that holds the
real crossing; noise is never forecast."""

from __future__ import annotations

import numpy as np
import pytest

from edgegw.config import load_config
from edgegw.engine.engine import Engine
from edgegw.engine.forecast import theil_sen, time_to_limit
from edgegw.records import Alert
from tests.helpers import EXAMPLE


def test_theil_sen_exact_on_a_line_and_robust_to_outliers() -> None:
    t = np.arange(10.0)
    y = 2.0 + 0.5 * t
    slope, lo, hi, icpt = theil_sen(t, y)
    assert slope[0] == pytest.approx(0.5) and icpt[0] == pytest.approx(2.0) and lo[0] == hi[0] == pytest.approx(0.5)
    y[3] = 100.0  # one wild reading moves least squares a lot, the median of slopes hardly
    assert theil_sen(t, y)[0][0] == pytest.approx(0.5, abs=0.06)
    y[5] = np.nan  # a missing point is skipped
    assert theil_sen(t, y)[0][0] == pytest.approx(0.5, abs=0.1)


def test_interval_covers_the_true_slope_and_noise_is_not_significant() -> None:
    rng = np.random.default_rng(0)
    t = np.tile(np.arange(30.0), (1000, 1))
    _, lo, hi, _ = theil_sen(t, 0.05 * t + rng.standard_normal(t.shape), 0.99)
    assert np.mean((lo <= 0.05) & (hi >= 0.05)) >= 0.97
    _, lo, hi, _ = theil_sen(t, rng.standard_normal(t.shape), 0.99)
    assert np.mean((lo > 0) | (hi < 0)) <= 0.02


def test_time_to_limit_and_its_interval() -> None:
    # 60 degC rising 0.5 (0.4..0.625) degC/h toward 80: 40 h (32..50 h)
    eta, early, late = time_to_limit(60.0, 0.5, 0.4, 0.625, 80.0, True)
    assert (float(eta), float(early), float(late)) == pytest.approx((40.0, 32.0, 50.0))
    # falling toward a lo limit; not significant (interval holds 0); already past the limit
    assert float(time_to_limit(3.0, -0.5, -1.0, -0.25, 1.0, False)[0]) == pytest.approx(4.0)
    assert np.isnan(time_to_limit(60.0, 0.5, -0.1, 1.0, 80.0, True)[0])
    assert np.isnan(time_to_limit(85.0, 0.5, 0.4, 0.6, 80.0, True)[0])


def test_rising_temperature_is_forecast_and_noise_is_not() -> None:
    cfg = load_config(EXAMPLE, ["profiles.pump.model=null", "profiles.pump.forecast={}"])
    alerts: list[Alert] = []
    e = Engine(cfg, alerts.append, clock=lambda: 0.0)
    rng = np.random.default_rng(1)
    t0 = 1767225600.0
    rise = 0.5 / 60.0  # degC per s: from 55 degC, hi 80 is reached after 50 min
    crossing = t0 + 25.0 / rise
    base = {"vibration": 3.0, "pressure": 5.0, "flow": 60.0, "current": 30.0, "suction_pressure": 1.2}
    seen = []
    for minute in range(25):
        for k in range(120):  # 2 Hz
            ts = t0 + minute * 60 + k * 0.5
            for s, v in base.items():
                e.ingest("pump-1", s, ts, v * (1 + 0.02 * rng.standard_normal()))
            e.ingest("pump-1", "temperature", ts, 55.0 + rise * (ts - t0) + 0.3 * rng.standard_normal())
        e.run_hops()
        end = t0 + (minute + 1) * 60
        r = next(x for x in e.take_rollups(end - 60, end) if x.asset == "pump-1")
        for f in r.forecast or []:
            seen.append((end, f))
    signals = {f["signal"] for _, f in seen}
    assert signals == {"temperature"}, "only the trend is forecast, never the noisy signals"
    end, f = seen[-1]
    assert f["level"] == "hi" and f["limit"] == 80
    actual_h = (crossing - end) / 3600
    assert f["early_h"] <= actual_h <= f["late_h"], (f, actual_h)
    assert f["eta_h"] == pytest.approx(actual_h, rel=0.2)
    (a,) = [x for x in alerts if x.kind == "forecast"]
    assert a.source == "temperature" and a.state == "raised"
    assert a.message.startswith("pump-1 temperature reaches hi 80 degC in about ") and "min (" in a.message
