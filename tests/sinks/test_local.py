"""The local sink against a real mosquitto: what a subscriber on alerts/# and rollups/# sees."""

from __future__ import annotations

import asyncio
import time

from edgegw.records import Alert, AlertState, Rollup, Severity, SignalStats
from edgegw.sinks.local import LocalSink
from tests.helpers import Collector, example_config


async def test_alert_overtakes_queued_rollups_and_metrics(mosquitto) -> None:
    """An alarm raised while a minute's rollups and metrics are still queued goes out first."""
    cfg = example_config(mosquitto.port)
    gw, site = cfg.gateway.id, cfg.gateway.site
    sink = LocalSink(cfg)
    now = time.time()
    for i in range(200):
        r = Rollup(f"pump-{i}", now - 60, now, {"vibration": SignalStats()}, gateway=gw, site=site, seq=i + 1)
        sink.rollup(r)
        sink.publish(f"status/{gw}/metrics", b"{}")
    sink.alert(Alert("pump-7", "threshold", "vibration", AlertState.RAISED, Severity.WARNING, now,
                     {"value": 12.5}, "vibration high", gateway=gw, site=site, seq=201))
    sink.alert(Alert("pump-7", "threshold", "vibration", AlertState.CLEARED, Severity.INFO, now + 1,
                     {"value": 3.0}, "cleared", gateway=gw, site=site, seq=202))
    async with Collector(mosquitto.port, f"alerts/{site}/#", f"rollups/{site}/#", f"status/{gw}/#") as col:
        task = asyncio.create_task(sink.run())
        await col.wait(lambda c: len([m for m in c.messages if m[0].startswith("rollups/")]) == 200)
        await sink.close()
        await asyncio.wait_for(task, 5)
    topics = [t for t, _, _ in col.messages]
    raise_at = next(i for i, (t, p, _) in enumerate(col.messages) if t.startswith("alerts/") and b"raised" in p)
    first_bulk = next(i for i, t in enumerate(topics) if t.startswith(("rollups/", f"status/{gw}/metrics")))
    assert raise_at < first_bulk, topics[:10]
    # within the alert queue the order holds: raise, cleared, then the retained raise is deleted
    alert_msgs = [(p, r) for t, p, r in col.messages if t.startswith("alerts/")]
    assert [b"raised" in p for p, _ in alert_msgs[:2]] == [True, False] and alert_msgs[2][0] == b""
    # nothing lost or reordered among the rollups
    seqs = [int(p.split(b'"seq":')[1].split(b",")[0]) for t, p, _ in col.messages if t.startswith("rollups/")]
    assert seqs == list(range(1, 201))
    assert sink.depth == 0 and sink.dropped == 0
