"""Forecasts go on across a restart: the trend points are seeded from history's minute means."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgegw.config import load_config
from edgegw.engine.engine import Engine
from edgegw.history.forecast import seed_forecasts
from edgegw.history.store import Historian
from tests.helpers import EXAMPLE

T0 = 1_800_000_000.0


def test_a_restarted_engine_forecasts_at_once_from_history(tmp_path: Path) -> None:
    cfg = load_config(EXAMPLE, ["profiles.pump.model=null", "profiles.pump.pump=null", "profiles.pump.forecast={}"])
    h = Historian(cfg, tmp_path / "history.db")
    before = Engine(cfg, lambda a: None, clock=lambda: 0.0)
    before.on_hop = h.hop
    rng = np.random.default_rng(0)
    for i in range(2 * 20 * 60):  # 20 minutes of pump-1 at 2 Hz, the bearing warming 0.5 degC a minute
        ts = T0 + i / 2
        for s, v in {"vibration": 3.0, "pressure": 5.0, "flow": 60.0, "current": 30.0, "suction_pressure": 1.2}.items():
            before.ingest("pump-1", s, ts, v + 0.01 * rng.standard_normal())
        before.ingest("pump-1", "temperature", ts, 60.0 + 0.5 * (ts - T0) / 60 + 0.2 * rng.standard_normal())
        before.run_hops()
    h.writer.write(h.take())
    assert h.writer.db is not None
    h.writer.roll_up(h.writer.db)
    now = T0 + 20 * 60
    after = Engine(cfg, lambda a: None, clock=lambda: 0.0)
    assert seed_forecasts(after, tmp_path / "history.db", now) >= 6 * 12  # each signal of pump-1 got its minutes
    r = next(x for x in after.take_rollups(now, now + 1) if x.asset == "pump-1")
    (f,) = r.forecast or []
    assert f["signal"] == "temperature" and f["early_h"] <= (80.0 - 70.0) / 30.0 <= f["late_h"]  # 20 min to hi 80
    assert seed_forecasts(after, tmp_path / "none.db", now) == 0
