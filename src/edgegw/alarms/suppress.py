"""Link alarms: a source that loses its link raises one alarm, not a stale alarm per signal.

The gateway's 1 s ticker reads each source's link (`connected`). A source down for LINK_DELAY_S
(at start: START_DELAY_S, while sessions first connect) raises one alarm of kind `link`: asset =
the gateway id, source = the source's name, the assets it feeds named in the message and the
evidence. While it is active, or while the link is simply not up, the stale and quality alarms
of those assets are the link's doing: `ActiveAlarms.take` asks `owner()` and holds them back
(ISA-18.2 suppression by design: counted and journaled, not published). A stale alarm due while
the link is down raises the link alarm at once, so the link alarm always comes first. When the
link is back, one clear; the alarms it held back are forgotten and re-armed by their owner, so a
signal still silent on a healthy link goes `stale` stale_after_s later.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable
from typing import Any, Protocol

from edgegw.alarms.state import ActiveAlarms, Key, key_text
from edgegw.records import Alert, AlertState, Severity, alert_from_dict, iso
from edgegw.runtime import Link

LINK_DELAY_S = 5.0  # a link down this long raises its alarm (a stale alarm it causes raises it at once)
START_DELAY_S = 15.0  # after the start, sessions get this long to connect the first time
KIND = "link"
NAMED_ASSETS = 6  # a message names this many assets, then "and N more"


class Linked(Protocol):
    """What the watch reads of a source (sources.Source has it)."""

    name: str
    assets: frozenset[str]
    link: Link

    @property
    def connected(self) -> bool: ...


class _Watched:
    __slots__ = ("assets", "down_since", "down_wall", "raised", "source", "suppressed")

    def __init__(self, source: Linked) -> None:
        self.source = source
        self.assets = sorted(source.assets)
        self.down_since: float | None = None  # monotonic
        self.down_wall: float | None = None
        self.raised: Alert | None = None  # the active link alarm
        self.suppressed = 0  # alarms held back under the current one


class LinkWatch:
    def __init__(
        self,
        gateway: str,
        sources: Iterable[Linked],
        alarms: ActiveAlarms,
        emit: Callable[[Alert], None],
        rearm: Callable[[Key], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`emit`: the gateway's alert entry; `rearm`: the owner forgets an alarm held back (Engine.reset_alarm)."""
        self.gateway = gateway
        self.alarms = alarms
        self.emit = emit
        self.rearm = rearm
        self.clock = clock
        self.started = clock()
        self.watched = {s.name: _Watched(s) for s in sources}
        self.by_asset: dict[str, list[_Watched]] = {}
        for w in self.watched.values():
            for a in w.assets:
                self.by_asset.setdefault(a, []).append(w)
        self.raised_total = 0

    def key(self, w: _Watched) -> Key:
        return (self.gateway, KIND, w.source.name)

    # -- the ticker

    def tick(self) -> None:
        now = self.clock()
        for w in self.watched.values():
            if w.source.connected:
                if w.raised is not None:
                    self._clear(w)
                w.down_since = w.down_wall = None
                continue
            if w.down_since is None:
                w.down_since, w.down_wall = now, time.time()
            if w.raised is None and now >= max(w.down_since + LINK_DELAY_S, self.started + START_DELAY_S):
                self._raise(w)

    # -- asked by ActiveAlarms.take for every stale and quality raise

    def owner(self, alert: Alert) -> str | None:
        """The link alarm a stale or quality raise of `alert.asset` belongs under (raised now if
        it was not yet), or None when every source feeding the asset is up."""
        for w in self.by_asset.get(alert.asset, ()):
            if w.raised is None and w.source.connected:
                continue
            if w.raised is None:
                if w.down_since is None:
                    w.down_since, w.down_wall = self.clock(), time.time()
                self._raise(w)
            w.suppressed += 1
            return key_text(self.key(w))
        return None

    def owns(self, key: Key) -> str | None:
        """Why a clear by command of a link alarm is refused: the link is still down."""
        w = self.watched.get(key[2]) if key[:2] == (self.gateway, KIND) else None
        if w is not None and not w.source.connected:
            return f"source {w.source.name} ({w.source.link.where}) is still not connected"
        return None

    def forget(self, key: Key) -> None:
        """Cleared by command while the link was up: nothing more to clear."""
        w = self.watched.get(key[2]) if key[:2] == (self.gateway, KIND) else None
        if w is not None:
            w.raised = None
            self._release(w)

    def restore(self, alarms: Collection[dict[str, Any]]) -> None:
        """Link alarms active before the restart: cleared when their link is up again."""
        for d in alarms:
            if d.get("asset") == self.gateway and d.get("kind") == KIND and d.get("source") in self.watched:
                self.watched[str(d["source"])].raised = alert_from_dict(d)

    # -- transitions

    def _evidence(self, w: _Watched) -> dict[str, Any]:
        link = w.source.link
        ev: dict[str, Any] = {"source": w.source.name, "where": link.where, "assets": list(w.assets)}
        if link.last_error:
            ev["error"] = link.last_error
        if w.down_wall is not None:
            ev["down_since"] = iso(w.down_wall)
        return ev

    def _raise(self, w: _Watched) -> None:
        ev = self._evidence(w)
        named = ", ".join(w.assets[:NAMED_ASSETS]) + (
            f" and {len(w.assets) - NAMED_ASSETS} more" if len(w.assets) > NAMED_ASSETS else ""
        )
        error = f" ({ev['error']})" if "error" in ev else ""
        msg = f"{w.source.name} lost its link to {w.source.link.where}{error}: no data from {named or 'any asset'}"
        now = time.time()
        w.raised = Alert(self.gateway, KIND, w.source.name, AlertState.RAISED, Severity.WARNING, now, ev, msg)
        w.suppressed = 0
        self.raised_total += 1
        self.emit(w.raised)

    def _clear(self, w: _Watched) -> None:
        raised, w.raised = w.raised, None
        assert raised is not None
        now = time.time()
        ev = self._evidence(w)
        ev["suppressed"] = w.suppressed
        down = f" after {now - w.down_wall:.0f} s" if w.down_wall is not None else ""
        held = f"; {w.suppressed} stale/quality alarm(s) were suppressed" if w.suppressed else ""
        msg = f"{w.source.name} link to {w.source.link.where} is back{down}{held}"
        self.emit(Alert(self.gateway, KIND, w.source.name, AlertState.CLEARED, Severity.INFO, now, ev, msg, raised_at=raised.ts))
        self._release(w)

    def _release(self, w: _Watched) -> None:
        for key in self.alarms.release(key_text(self.key(w))):
            self.rearm(key)
        w.suppressed = 0

    def stats(self) -> dict[str, Any]:
        return {"raised": self.raised_total, "active": sorted(n for n, w in self.watched.items() if w.raised is not None)}
