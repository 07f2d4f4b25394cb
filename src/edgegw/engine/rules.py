"""Alarm rules: hi/hihi/lo/lolo limits with deadband, and the on/off-delay debounce every alarm uses.

Levels are signed integers: +2 hihi, +1 hi, 0 normal, -1 lo, -2 lolo. A `Debounce` turns a
per-sample target level into transitions, counting delays in event time, so a burst of
history replays exactly as it would have run live.
"""

from __future__ import annotations

import numpy as np

from edgegw.config import SignalSpec
from edgegw.records import Severity

LEVEL_NAMES = {2: "hihi", 1: "hi", 0: "normal", -1: "lo", -2: "lolo"}


def severity_of(level: int) -> Severity:
    return Severity.CRITICAL if abs(level) >= 2 else Severity.WARNING


class Debounce:
    """Raise after the condition held `on_delay` seconds, clear after it was gone `off_delay`."""

    __slots__ = ("active", "off_delay", "on_delay", "since", "up")

    def __init__(self, on_delay: float, off_delay: float, active: int = 0) -> None:
        self.on_delay = on_delay
        self.off_delay = off_delay
        self.active = active
        self.since: float | None = None  # event time the pending change started
        self.up = False

    def update(self, ts: float, target: int) -> int | None:
        """Feed one sample's target level; return the new level on a transition, else None."""
        active = self.active
        if target == active:
            self.since = None
            return None
        up = abs(target) > abs(active) or (target * active) < 0
        if self.since is None or up != self.up:
            self.since = ts
            self.up = up
        if ts - self.since >= (self.on_delay if up else self.off_delay):
            self.active = target
            self.since = None
            return target
        return None


class DebounceSet:
    """The `Debounce` of each of n items (a profile's assets, for one model alarm), with whether
    each is active or has a change pending as arrays: a hop compares whole columns and touches a
    Debounce only where `changing` says so."""

    __slots__ = ("active", "alarms", "pending")

    def __init__(self, n: int) -> None:
        self.alarms = [Debounce(0.0, 0.0) for _ in range(n)]
        self.active = np.zeros(n, dtype=bool)
        self.pending = np.zeros(n, dtype=bool)

    def changing(self, items: np.ndarray, cond: np.ndarray) -> np.ndarray:
        """Positions j of `items` whose condition cond[j] differs from its alarm or whose change
        is pending: the only ones an update can change."""
        return np.flatnonzero((cond != self.active[items]) | self.pending[items])

    def update(self, i: int, ts: float, target: int, delays: tuple[float, float]) -> int | None:
        """`Debounce.update` of item i with these (on, off) delays: the new level on a transition."""
        db = self.alarms[i]
        db.on_delay, db.off_delay = delays
        level = db.update(ts, target)
        self.active[i] = db.active != 0
        self.pending[i] = db.since is not None
        return level

    def restore(self, i: int) -> None:
        """Item i's alarm was active before a restart."""
        self.alarms[i].active = 1
        self.active[i] = True


class ThresholdRule:
    """The limits of one signal. `target()` applies the deadband against the current level."""

    __slots__ = ("active", "db", "hi", "hihi", "lo", "lolo", "unit")

    def __init__(self, spec: SignalSpec) -> None:
        self.hi, self.hihi, self.lo, self.lolo = spec.hi, spec.hihi, spec.lo, spec.lolo
        self.db = spec.deadband
        self.unit = spec.unit
        self.active = any(v is not None for v in (self.hi, self.hihi, self.lo, self.lolo))

    def target(self, v: float, active: int) -> int:
        db = self.db
        if self.hihi is not None and (v > self.hihi or (active == 2 and v > self.hihi - db)):
            return 2
        if self.hi is not None and (v > self.hi or (active >= 1 and v > self.hi - db)):
            return 1
        if self.lolo is not None and (v < self.lolo or (active == -2 and v < self.lolo + db)):
            return -2
        if self.lo is not None and (v < self.lo or (active <= -1 and v < self.lo + db)):
            return -1
        return 0

    def limit(self, level: int) -> float | None:
        return {2: self.hihi, 1: self.hi, -1: self.lo, -2: self.lolo}.get(level)
