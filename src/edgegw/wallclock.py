"""Steps of the wall clock, told apart from its running by the monotonic clock.

A Raspberry Pi has no real-time clock: NTP steps its time after boot, sometimes by hours, and
sometimes back. The gateway's ticker asks `WallClock.step()` once a second; a change of the
wall-minus-monotonic offset beyond STEP_S is a step (NTP's slewing moves it by microseconds a
second). The gateway then logs it once with its size and re-anchors what compares times across
it: `Engine.clock_stepped` (stale timers, signal clocks, windows, pending delays),
`Intake.clock_stepped` (how far ahead or behind a device's timestamps may be) and the ticker's
rollup boundary.
"""

from __future__ import annotations

import time

STEP_S = 1.0


class WallClock:
    def __init__(self) -> None:
        self.offset = time.time() - time.monotonic()
        self.steps = 0

    def step(self) -> float:
        """Seconds the wall clock jumped since the last call (0.0 when it only ran)."""
        offset = time.time() - time.monotonic()
        delta = offset - self.offset
        self.offset = offset
        if abs(delta) < STEP_S:
            return 0.0
        self.steps += 1
        return delta
