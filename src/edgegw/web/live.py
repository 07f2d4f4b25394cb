"""What the page shows live: the latest per asset and the active alarms, pushed to every browser.

`LiveState` takes the gateway's fan-out (hop results and alerts) and keeps one small tile per
asset and the active alarm table. Each change is encoded once as a Server-Sent Event and put on
every browser's queue; a browser that falls `maxsize` events behind loses its queue and gets a
fresh snapshot instead (a resync), so a slow phone never makes the gateway hold more.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import orjson

from edgegw.config import GatewayConfig
from edgegw.records import AlarmEvent, Alert, HopResult, iso

STATE_ORDER = ("nodata", "normal", "stale", "warning", "critical")
_INF = (math.inf, -math.inf)


def sse(event: str, data: Any) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class Client:
    """One open event stream: a bounded queue of encoded events and a wake-up."""

    __slots__ = ("maxsize", "overflowed", "queue", "wake")

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self.queue: deque[bytes] = deque()
        self.wake = asyncio.Event()
        self.overflowed = 0

    def push(self, msg: bytes) -> None:
        if len(self.queue) >= self.maxsize:
            self.queue.clear()
            self.queue.append(b"")  # the marker: send a snapshot instead of what was dropped
            self.overflowed += 1
        elif self.queue and self.queue[0] == b"":
            pass  # a resync is coming anyway: it holds this change
        else:
            self.queue.append(msg)
        self.wake.set()


class LiveState:
    """Tiles and active alarms, kept from the fan-out, pushed to the connected browsers."""

    def __init__(
        self,
        cfg: GatewayConfig,
        queue_size: int = 256,
        shelved_until: Callable[[tuple[str, str, str]], float | None] | None = None,
    ) -> None:
        self.queue_size = queue_size
        self.shelved_until = shelved_until
        self.clients: set[Client] = set()
        self.alarms: dict[str, dict[str, Any]] = {}  # "asset/kind/source" -> the alert as published
        self.tiles: dict[str, dict[str, Any]] = {}
        self.profiles: dict[str, dict[str, Any]] = {}
        for name, p in cfg.profiles.items():
            self.profiles[name] = {
                "signals": {
                    s: {
                        "unit": spec.unit,
                        **{k: getattr(spec, k) for k in ("hi", "hihi", "lo", "lolo") if getattr(spec, k, None) is not None},
                    }
                    for s, spec in p.signals.items()
                },
                "hop_s": p.hop_s,
                "stale_after_s": p.stale_after_s,
            }
        for a in cfg.assets:
            self.tiles[a.id] = {"asset": a.id, "profile": a.profile, "state": "nodata", "values": {}, "ts": None}
        self.hops = 0
        self.resyncs = 0

    # -- the fan-out

    def hop(self, r: HopResult) -> None:
        """Newest values and scores into the tiles (arrays to lists once per hop, not per value);
        encoded and pushed only when a browser is connected."""
        self.hops += 1
        now = time.time()
        n = len(r.assets)
        last = r.last.round(4).tolist() if r.last is not None else None
        ends = r.ends.tolist()
        scores = [
            (name, arr.tolist())
            for name, arr in (("anomaly", r.anomaly), ("threshold", r.threshold), ("risk", r.risk))
            if arr is not None
        ]
        changed = []
        for i in range(n):
            t = self.tiles.get(r.assets[i])
            if t is None:
                continue
            if last is not None:
                values = t["values"]
                for sig, v in zip(r.signals, last[i], strict=True):
                    if v == v and v not in _INF:  # not NaN, not infinite
                        values[sig] = v
            t["ts"] = ends[i]
            t["seen"] = now
            for name, col in scores:
                v = col[i]
                if v == v and v not in _INF:
                    t[name] = round(v, 4)
                elif name not in t:
                    t[name] = None
            if r.cause is not None and r.cause[i]:
                t["cause"] = r.cause[i]
            if r.model_version:
                t["model_version"] = r.model_version
            self._judge(t)
            changed.append(t)
        if changed and self.clients:
            self.publish(sse("tiles", changed))

    def alert(self, a: Alert) -> None:
        key = f"{a.asset}/{a.kind}/{a.source}"
        if a.state == "raised":
            self.alarms[key] = a.to_dict()  # a shelved alarm's re-publish carries its shelf mark
            self.publish(sse("alarm", {"key": key, "alarm": self.alarms[key]}))
        elif self.alarms.pop(key, None) is not None:
            self.publish(sse("alarm", {"key": key, "alarm": None}))
        t = self.tiles.get(a.asset)
        if t is not None:
            self._judge(t)
            if self.clients:
                self.publish(sse("tiles", [t]))

    def event(self, e: AlarmEvent) -> None:
        """Journal-worthy events go to the open alarm histories. A shelve is not re-published until
        the alarm's next transition, so its event marks the active alarm here."""
        key = "/".join(e.key)
        a = self.alarms.get(key)
        if a is not None and e.event in ("shelved", "unshelved", "shelf_expired"):
            if e.event == "shelved":
                a["shelved_until"] = e.detail.get("until")
                a["shelved_by"] = e.by
            else:
                a.pop("shelved_until", None)
                a.pop("shelved_by", None)
            self.publish(sse("alarm", {"key": key, "alarm": a}))
        self.publish(sse("event", {"ts": iso(e.ts), "event": e.event, "key": key, "by": e.by, "note": e.note, **e.detail}))

    def restore(self, alarms: list[dict[str, Any]]) -> None:
        """Alarms active before a restart, as the local broker handed them back."""
        for d in alarms:
            key = f"{d.get('asset')}/{d.get('kind')}/{d.get('source')}"
            d = self.alarms.setdefault(key, dict(d))
            until = (
                self.shelved_until((str(d.get("asset")), str(d.get("kind")), str(d.get("source"))))
                if self.shelved_until
                else None
            )
            if until is not None:
                d["shelved_until"] = iso(until)
        for t in self.tiles.values():
            self._judge(t)
        self.publish(self.snapshot_event())

    def _judge(self, t: dict[str, Any]) -> None:
        prefix = t["asset"] + "/"
        worst = "normal" if t.get("ts") is not None else "nodata"
        n = 0
        for key, d in self.alarms.items():
            if not key.startswith(prefix):
                continue
            n += 1
            s = "stale" if d.get("kind") == "stale" else str(d.get("severity", "warning"))
            if s in STATE_ORDER and STATE_ORDER.index(s) > STATE_ORDER.index(worst):
                worst = s
        t["state"] = worst
        t["alarms"] = n

    # -- the browsers

    def snapshot(self) -> dict[str, Any]:
        return {"tiles": list(self.tiles.values()), "alarms": list(self.alarms.values()), "profiles": self.profiles}

    def snapshot_event(self) -> bytes:
        return sse("snapshot", self.snapshot())

    def publish(self, msg: bytes) -> None:
        for c in self.clients:
            c.push(msg)

    def connect(self) -> Client:
        c = Client(self.queue_size)
        self.clients.add(c)
        return c

    def disconnect(self, c: Client) -> None:
        self.clients.discard(c)
        self.resyncs += c.overflowed

    def take(self, c: Client) -> bytes:
        """What a client's stream writes next: its queued events, or a snapshot after an overflow."""
        if c.queue and c.queue[0] == b"":
            c.queue.clear()
            c.wake.clear()
            return self.snapshot_event()
        out = b"".join(c.queue)
        c.queue.clear()
        c.wake.clear()
        return out
