"""Runs a fleet in real time: one step every 1/rate seconds, stamped with the wall clock.

Pacing follows the monotonic clock, so a slow step is caught up rather than stretching the
schedule; event time is the wall-clock time of simulation second 0 plus simulation time.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import Awaitable, Callable, Sequence

from edgegw.sim.fleet import Fleet, Sample

Output = Callable[[float, Sequence[Sample]], Awaitable[None] | None]


class LiveClock:
    """Steps `fleet` in real time and hands each step's (event time, samples) to every output."""

    def __init__(self, fleet: Fleet, outputs: Sequence[Output], duration_s: float | None = None) -> None:
        self.fleet = fleet
        self.outputs = list(outputs)
        self.duration_s = duration_s
        self.start_ts = 0.0  # wall-clock epoch of simulation second 0, set by run()
        self.started = asyncio.Event()

    def wall(self, t: float) -> float:
        """Epoch time of simulation second t."""
        return self.start_ts + t

    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        self.start_ts = time.time()
        mono0 = time.monotonic()
        self.started.set()
        fleet = self.fleet
        while self.duration_s is None or fleet.t < self.duration_s:
            delay = mono0 + fleet.t - time.monotonic()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
            if stop.is_set():
                return
            t = fleet.t
            samples = fleet.step()
            ts = self.start_ts + t
            for out in self.outputs:
                r = out(ts, samples)
                if inspect.isawaitable(r):
                    await r
