"""Judging the gateway against the faults the simulator injected: detection delay and false alarms.

Rules, stated once:
- A fault is caught by the first alarm raised on its asset while the fault is on, or within
  `grace_s` after it ends (alarms lag: debounce delays, and model windows still hold the fault).
  Any kind counts: a threshold, a model, or the stale alarm that a sensor drop-out causes.
- A false alarm is an alarm episode (a raise of an alarm that was not active; escalations
  hi -> hihi are the same episode) on an asset that has no fault on at that moment. A stale alarm
  outside a drop-out is a false alarm like any other.
- Retained messages (alarms from before the run) are not judged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from edgegw.records import iso


@dataclass(slots=True)
class FaultRecord:
    asset: str
    mode: str
    injected_at: float  # epoch s
    ends_at: float = math.inf
    signal: str | None = None
    detected_at: float | None = None
    detected_by: str | None = None

    @property
    def delay_s(self) -> float | None:
        return None if self.detected_at is None else round(self.detected_at - self.injected_at, 1)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "asset": self.asset,
            "mode": self.mode,
            "injected_at": iso(self.injected_at),
            "detected_at": None if self.detected_at is None else iso(self.detected_at),
            "delay_s": self.delay_s,
            "detected_by": self.detected_by,
        }
        if self.signal:
            d["signal"] = self.signal
        if math.isfinite(self.ends_at):
            d["ended_at"] = iso(self.ends_at)
        return d


def alert_time(d: dict[str, Any], fallback: float) -> float:
    """The alert's event time (its `ts`), or `fallback` when it has none that parses."""
    try:
        return datetime.fromisoformat(str(d.get("ts", "")).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return fallback


@dataclass
class Scorecard:
    faults: list[FaultRecord]
    grace_s: float = 30.0
    false_alarms: list[dict[str, Any]] = field(default_factory=list)
    raised: int = 0
    _active: set[tuple[str, str, str]] = field(default_factory=set)

    def observe(self, d: dict[str, Any], received: float) -> FaultRecord | None:
        """Judge one alert message; return the fault it caught first, if it did."""
        key = (str(d.get("asset", "")), str(d.get("kind", "")), str(d.get("source", "")))
        if d.get("state") == "cleared":
            self._active.discard(key)
            return None
        if d.get("state") != "raised" or key in self._active:
            return None
        self._active.add(key)
        self.raised += 1
        ts = alert_time(d, received)
        explained = False
        caught = None
        for f in self.faults:
            if f.asset == key[0] and f.injected_at <= ts <= f.ends_at + self.grace_s:
                explained = True
                if f.detected_at is None or ts < f.detected_at:
                    first = f.detected_at is None
                    f.detected_at = ts
                    f.detected_by = f"{key[1]} {key[2]}".strip()
                    caught = f if first else None
        if not explained:
            self.false_alarms.append(
                {"asset": key[0], "kind": key[1], "source": key[2], "at": iso(ts), "message": d.get("message", "")}
            )
        return caught

    def summary(self) -> dict[str, Any]:
        return {
            "faults": [f.to_dict() for f in self.faults],
            "false_alarms": len(self.false_alarms),
            "false_alarm_list": self.false_alarms,
            "alarms_raised": self.raised,
        }

    def lines(self) -> list[str]:
        """The scorecard as text."""
        out = [f"{'ASSET':<10} {'FAULT':<24} {'INJECTED':<10} {'CAUGHT BY':<28} DELAY"]
        for f in self.faults:
            inj = datetime.fromtimestamp(f.injected_at).strftime("%H:%M:%S")
            mode = f.mode + (f" ({f.signal})" if f.signal else "")
            if f.detected_at is None:
                out.append(f"{f.asset:<10} {mode:<24} {inj:<10} {'-- MISSED --':<28} -")
            else:
                out.append(f"{f.asset:<10} {mode:<24} {inj:<10} {f.detected_by or '':<28} {f.delay_s:.1f} s")
        caught = sum(f.detected_at is not None for f in self.faults)
        out.append(f"caught {caught} of {len(self.faults)} faults; false alarms: {len(self.false_alarms)}")
        for fa in self.false_alarms:
            out.append(f"  false alarm: {fa['asset']} {fa['kind']} {fa['source']} at {fa['at']}: {fa['message']}")
        return out
