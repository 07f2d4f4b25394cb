"""Self-metrics: what the gateway is doing, published on status/{gateway}/metrics."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

if TYPE_CHECKING:
    from edgegw.gateway import Gateway


def rss_mb() -> float:
    try:
        with open(f"/proc/{os.getpid()}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return 0.0


class Health:
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.topic = f"status/{gw.cfg.gateway.id}/metrics"

    def snapshot(self) -> dict[str, Any]:
        gw = self.gw
        e = gw.engine
        hops = np.array(e.hop_seconds[-512:]) * 1000 if e.hop_seconds else None
        return {
            "ts": time.time(),
            "gateway": gw.cfg.gateway.id,
            "uptime_s": round(time.time() - gw.started, 1),
            "messages_in": gw.intake.messages_in,
            "readings_in": e.readings_in,
            "rejected": dict(e.rejected),
            "alerts_raised": gw.alerts_raised,
            "hops": e.hops,
            "windows_skipped": e.windows_skipped,
            "hop_ms_p50": round(float(np.percentile(hops, 50)), 3) if hops is not None else None,
            "hop_ms_p99": round(float(np.percentile(hops, 99)), 3) if hops is not None else None,
            "sources": {s.name: {"connected": s.connected} for s in gw.sources},
            "sinks": {s.name: {"connected": s.connected} for s in gw.sinks},
            "local_queue": gw.local.depth,
            "rss_mb": round(rss_mb(), 1),
        }

    def publish(self) -> None:
        self.gw.local.publish(self.topic, orjson.dumps(self.snapshot()))
