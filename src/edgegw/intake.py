"""Where every source hands its readings: validation of event time, counting of rejects with a
rate-limited log, and scheduling of the engine's hop work a short grace after the first asset
crosses a hop boundary."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Any

from edgegw.config import IngestConfig
from edgegw.engine.engine import Engine
from edgegw.ratelimit import RateLimitedLog
from edgegw.records import Quality

_EPOCH_FLOOR = 946684800.0  # 2000-01-01: anything earlier is a broken clock or a unit mix-up
# Assets cross a hop boundary one message at a time, milliseconds apart. Waiting this long after
# the first one scores them all in one batch (one matrix, one model call) instead of 50 separate
# hops back to back, which held a threshold alarm arriving at the boundary for ~20 ms; readings
# stamped before the boundary that arrive within it still land in their window.
HOP_GRACE_S = 0.05
# A reading stamped more than this ahead of both the wall clock and its signal's last reading is
# taken at its arrival time: one bad device clock must not move the signal's clock ahead and make
# every later reading out of order. Bursts of readings stamped ahead but close together (a
# device whose clock runs ahead, a test publishing seconds of data at once) keep their own time.
FUTURE_SLACK_S = 2.0


class Intake:
    """The front door of the engine. Synchronous and cheap: sources call it per value."""

    def __init__(self, engine: Engine, cfg: IngestConfig, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.engine = engine
        self.cfg = cfg
        self._loop = loop
        self._scheduled = False
        hops = [p.hop_s for p in engine.profiles.values()]
        self.grace_s = min([HOP_GRACE_S, *(h / 4 for h in hops)])
        self.prepare_s = min([1.0, *(h / 2 for h in hops)])  # window upkeep, half a hop after a hop
        self._log = RateLimitedLog()
        self.messages_in = 0
        self.bytes_in = 0
        engine.on_future = self._future
        self.ahead_s = 0.0  # after wall-clock steps: how far device times may be ahead of it, or behind
        self.behind_s = 0.0
        self.clock_check: Callable[[], bool] | None = None  # True when the wall clock just jumped (re-anchored)

    def message(self, nbytes: int = 0) -> None:
        """Count one message from any source (payload bytes where the protocol has them)."""
        self.messages_in += 1
        self.bytes_in += nbytes

    def _future(self, asset: str, signal: str, ts: float, taken: float) -> None:
        self._log.warning(
            "future",
            "reading stamped ahead of the clock: taken at its arrival",
            asset=asset,
            signal=signal,
            ahead_s=round(ts - taken, 3),
            total=self.engine.clamped_future,
        )

    def put(self, asset: str, signal: str, ts: float, value: float, quality: Quality = Quality.GOOD) -> None:
        self.engine.ingest(asset, signal, ts, value, quality)
        if self.engine.due and not self._scheduled:
            self._schedule()

    def ts_ok(self, ts: float, now: float) -> bool:
        """Event time plausible? Far-future or ancient timestamps are rejected here, counted."""
        if not math.isfinite(ts) or ts < _EPOCH_FLOOR or ts > now + self.cfg.max_future_s + self.ahead_s:
            if self._stepped():
                return self.ts_ok(ts, time.time())
            self.reject("bad_timestamp", ts=ts)
            return False
        if ts < now - self.cfg.max_age_s - self.behind_s:
            if self._stepped():
                return self.ts_ok(ts, time.time())
            self.reject("too_old", ts=ts)
            return False
        return True

    def _stepped(self) -> bool:
        """Before a reading is dropped for its time: did the wall clock just jump? (the ticker
        would see it within a second; the readings of that second need not be lost)"""
        return self.clock_check is not None and self.clock_check()

    def clock_stepped(self, delta: float) -> None:
        """Devices keep the time the gateway had before its wall clock jumped by `delta`: their
        timestamps are accepted that much further ahead (a step back) or behind (forward), by the
        sum of all steps so far, so a later step that undoes this one takes the allowance away."""
        total = self.behind_s - self.ahead_s + delta
        self.ahead_s, self.behind_s = max(0.0, -total), max(0.0, total)

    def reject(self, reason: str, **detail: Any) -> None:
        """Count a dropped message or value under `reason` and log it now and then."""
        self.engine.reject(reason)
        self._log.warning(reason, "input rejected", reason=reason, total=self.engine.rejected[reason], **detail)

    def _schedule(self) -> None:
        """Hops run `grace_s` after the first asset became due; without a loop (replays), at once."""
        loop = self._loop
        if loop is None:
            try:
                loop = self._loop = asyncio.get_running_loop()
            except RuntimeError:
                self.engine.run_hops()
                return
        self._scheduled = True
        loop.call_later(self.grace_s, self._run_hops)

    def _run_hops(self) -> None:
        self._scheduled = False
        self.engine.run_hops()
        if self._loop is not None:
            self._loop.call_later(self.prepare_s, self.engine.prepare)
