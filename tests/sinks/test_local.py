"""The local sink against a real mosquitto: what a subscriber on alerts/# and rollups/# sees."""

from __future__ import annotations

import asyncio
import json
import time

import aiomqtt

from edgegw.backoff import Backoff
from edgegw.gateway import Gateway
from edgegw.records import AlertState, Rollup, Severity, SignalStats
from edgegw.sinks.local import LocalSink
from tests.helpers import Collector, example_config, publish, pump, threshold_alert
from tests.sinks.test_bridge import AS_INVOKER, NO_DELAYS


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
    sink.alert(threshold_alert("pump-7", ts=now, gateway=gw, site=site, seq=201))
    cleared = {"state": AlertState.CLEARED, "severity": Severity.INFO, "evidence": {"value": 3.0}, "message": "cleared"}
    sink.alert(threshold_alert("pump-7", ts=now + 1, gateway=gw, site=site, seq=202, **cleared))
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


async def test_restored_alarm_clears_when_the_local_broker_comes_late(broker_factory) -> None:
    """The broker is down when the gateway starts and comes up 10 s later (beyond the 3 s the gateway
    waits before starting its sources): the alarm it kept retained from the previous run is handed to
    the engine when the sink has read it back, and a normal reading clears it."""
    b = broker_factory(persist=True, extra_conf=AS_INVOKER)
    cfg = example_config(b.port, *NO_DELAYS)
    gid, site = cfg.gateway.id, cfg.gateway.site
    topic = f"alerts/{site}/pump-1/threshold/vibration"
    before = {
        "id": "old",
        "seq": 7,
        "gateway": gid,
        "site": site,
        "asset": "pump-1",
        "kind": "threshold",
        "source": "vibration",
        "state": "raised",
        "severity": "warning",
        "level": "hi",
        "value": 12.5,
    }
    async with aiomqtt.Client("127.0.0.1", b.port) as c:
        await c.publish(topic, json.dumps(before).encode(), qos=1, retain=True)
    b.stop()

    gw = Gateway(cfg)
    gw.local.backoff = Backoff(0.2, 1.0)
    gw.sources[0].backoff = Backoff(0.2, 1.0)  # type: ignore[attr-defined]
    stop = asyncio.Event()
    task = asyncio.create_task(gw.run(stop))
    try:
        await asyncio.wait_for(gw.ready.wait(), 15)
        await asyncio.sleep(10)
        assert not gw.local.restore_done and not gw.local.connected
        b.start()
        async with Collector(b.port, f"alerts/{site}/#") as sub:
            await sub.wait(lambda _: gw.local.restore_done and gw.sources[0].connected, 20)
            assert [d["id"] for d in gw.local.restored] == ["old"]
            await publish(b.port, "plant/pumps/pump-1/telemetry", [pump(3.0, time.time() + i * 0.1) for i in range(5)])
            await sub.wait(lambda s: s.alerts(asset="pump-1", kind="threshold", state="cleared"), 10)
            await sub.wait(lambda s: (topic, b"", True) in s.messages or (topic, b"", False) in s.messages, 10)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    [cleared] = sub.alerts(asset="pump-1", kind="threshold", state="cleared")
    assert cleared["source"] == "vibration"
    raises = [d for d in sub.alerts(asset="pump-1", kind="threshold", state="raised") if not d["_retained"]]
    assert all(d["id"] == "old" for d in raises), "the old raise is re-published, no new one"


def test_a_full_queue_drops_rollups_before_any_alert() -> None:
    cfg = example_config(1883)
    sink = LocalSink(cfg, max_queue=10)
    now = time.time()
    gw, site = cfg.gateway.id, cfg.gateway.site
    for i in range(3):
        sink.alert(threshold_alert(f"pump-{i}", ts=now, gateway=gw, site=site, seq=i + 1))
    for i in range(20):
        sink.rollup(Rollup(f"pump-{i}", now - 60, now, {"vibration": SignalStats()}, gateway=gw, site=site, seq=100 + i))
    assert sink.depth == 10 and sink.dropped == 13 and sink.dropped_alerts == 0
    for i in range(12):
        stale = {"kind": "stale", "source": "flow", "evidence": {}, "message": "silent"}
        sink.alert(threshold_alert(f"pump-{i}", ts=now, gateway=gw, site=site, seq=200 + i, **stale))
    assert sink.depth == 10 and sink.dropped_alerts == 5  # 7 rollups went first, then the oldest alerts
    assert sink.stats()["dropped_alerts"] == 5 and sink.stats()["queued"] == 10


async def test_close_delivers_what_is_queued_within_its_timeout(mosquitto, tmp_path) -> None:
    """Both sinks: close(timeout) returns once the queue is delivered, and no later than `timeout`
    when the broker never answers (a server that accepts the connection and stays silent)."""
    from edgegw.gateway import Sequencer
    from edgegw.sinks.bridge import Bridge
    from tests.sinks.test_bridge import bridge_config

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1 << 16)
        await asyncio.sleep(3600)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    hole = server.sockets[0].getsockname()[1]
    try:
        cfg = example_config(mosquitto.port)
        sink = LocalSink(cfg)
        now = time.time()
        for i in range(300):
            sink.rollup(
                Rollup(
                    f"pump-{i}",
                    now - 60,
                    now,
                    {"vibration": SignalStats()},
                    gateway=cfg.gateway.id,
                    site=cfg.gateway.site,
                    seq=i + 1,
                )
            )
        task = asyncio.create_task(sink.run())
        await asyncio.sleep(0)  # running
        await sink.close(10)
        assert task.done() and sink.depth == 0 and sink.published >= 300

        for s in (LocalSink(example_config(hole)), Bridge(bridge_config(1883, hole, tmp_path / "o.db"), Sequencer())):
            task = asyncio.create_task(s.run())
            await asyncio.sleep(0.2)  # connecting: the server takes the CONNECT and never answers
            await s.close(0.3)
            assert not task.done(), f"{s.name}: close() returned at its deadline, the connect still pending"
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        server.close()
