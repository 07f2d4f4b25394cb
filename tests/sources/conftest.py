"""`Recorder` stands in for the intake where a source test looks at the values a source hands
over; the peers (asyncua server, aiocoap device) and their fixtures are in tests/peers.py and
tests/conftest.py."""

from __future__ import annotations

import math
from typing import Any

from edgegw.records import Quality


class Recorder:
    """The intake's interface, keeping what it is given."""

    def __init__(self) -> None:
        self.values: list[tuple[str, str, float, float, Quality]] = []
        self.rejected: dict[str, int] = {}
        self.messages_in = 0

    def put(self, asset: str, signal: str, ts: float, value: float, quality: Quality = Quality.GOOD) -> None:
        self.values.append((asset, signal, ts, value, quality))

    def message(self, nbytes: int = 0) -> None:
        self.messages_in += 1

    def reject(self, reason: str, **detail: Any) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1

    def ts_ok(self, ts: float, now: float) -> bool:
        return math.isfinite(ts) and 946684800.0 <= ts <= now + 300

    def of(self, asset: str, signal: str) -> list[tuple[float, float, Quality]]:
        return [(t, v, q) for a, s, t, v, q in self.values if a == asset and s == signal]
