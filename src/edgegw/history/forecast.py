"""Forecasts go on across a restart: the engine's trend points (engine/forecast.py) seeded from
history's minute means at start, so a time-to-limit needs no new `min_points` first."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import structlog

from edgegw.history.query import HistoryUnavailable, query

log = structlog.get_logger("edgegw.history")


def seed_forecasts(engine: Any, path: Path, now: float | None = None) -> int:
    """Read each forecast series' last points from history into `engine` (its `forecast_rows`
    and `seed_forecast`); returns the points taken. Call before the loop runs (it reads SQLite)."""
    rows = engine.forecast_rows()
    if not rows or not path.is_file():
        return 0
    now = time.time() if now is None else now
    taken = 0
    by_asset: dict[str, list[tuple[str, float, int]]] = {}
    for asset, sig, res, pts in rows:
        by_asset.setdefault(asset, []).append((sig, res, pts))
    for asset, sigs in by_asset.items():
        span = max(res * pts for _, res, pts in sigs)
        names = sorted({s for s, _, _ in sigs})
        try:
            t = query(path, asset, None, now - span, now, tier="minute")
        except (HistoryUnavailable, KeyError, ValueError) as e:
            log.info("forecasts start without history", asset=asset, reason=str(e))
            continue
        for sig in names:
            col = t.signals.get(sig)
            if col is not None:
                taken += engine.seed_forecast(asset, sig, t.time + 30.0, col["mean"])  # a minute's middle
    return taken
