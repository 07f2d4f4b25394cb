"""Northbound outputs. A sink takes alerts and rollups synchronously (it queues them) and runs its
own connection loop; `close()` drains what it can within a deadline."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from edgegw.records import AlarmEvent, Alert, HopResult, Rollup


class Sink(Protocol):
    name: str

    @property
    def connected(self) -> bool: ...

    def alert(self, alert: Alert) -> None: ...

    def stats(self) -> Mapping[str, object]:
        """Counters that health publishes, JSON-ready. A sink that holds one connection includes
        the runtime's LinkStats; the notifier, which connects per delivery, reports per target."""
        ...

    def rollup(self, rollup: Rollup) -> None: ...

    def hop(self, result: HopResult) -> None:
        """A profile's hop (scores, finished buckets, feature rows); a no-op where unused."""
        ...

    def event(self, event: AlarmEvent) -> None:
        """An ack, shelve, clear by command or suppression; a no-op where unused."""
        ...

    async def run(self) -> None:
        """Run until cancelled or closed; reconnect by itself."""
        ...

    async def close(self, timeout: float) -> None:
        """Stop taking new work, deliver what is queued within `timeout`, disconnect cleanly."""
        ...
