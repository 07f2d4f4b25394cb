"""What every Source and every Sink promises, checked against each implementation with its real peer.

Sources (mqtt against mosquitto, opcua against an asyncua server, coap observing an aiocoap
device), built by `build_sources` as the gateway builds them, feeding a real Intake and Engine:
a valid reading reaches the engine; a malformed one is counted by reason and the source keeps
going; `stats()` carries the connection figures health publishes; cancelling `run()` ends it.

Sinks (local against mosquitto, upstream against a second mosquitto, notify against an HTTP
receiver): an alert handed over arrives at the peer; `stats()` is plain JSON with the figures
health publishes; with the peer gone, `close(timeout)` still returns in about its timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from edgegw.config import GatewayConfig
from edgegw.engine.engine import Engine
from edgegw.gateway import _cancel
from edgegw.intake import Intake
from edgegw.records import Alert, Severity
from edgegw.runtime import LinkStats
from edgegw.sequence import Sequencer
from edgegw.sources import build_sources
from tests.helpers import Collector, example_config, threshold_alert
from tests.notify.peers import Hook, notify_config
from tests.peers import senml, until
from tests.sinks.test_bridge import bridge_config

LINK_KEYS = set(LinkStats.__required_keys__)
ASSET = "pump-1"


# ---------------------------------------------------------------- sources


@dataclass
class Feed:
    """One source kind against its peer: the source's config and how the peer sends."""

    spec: dict[str, Any]
    good: Callable[[float], Awaitable[None]]  # the peer sends vibration = value
    bad: Callable[[], Awaitable[None]]  # the peer sends something malformed
    reason: str  # what the intake counts it under


@pytest.fixture(params=["mqtt", "opcua", "coap"])
async def feed(request: pytest.FixtureRequest, mosquitto: Any, opcua_server_factory: Any, coap_device_factory: Any) -> Feed:
    kind = request.param
    if kind == "mqtt":
        from tests.helpers import publish

        port = mosquitto.port
        topic = f"contract-{uuid.uuid4().hex[:8]}/{ASSET}/telemetry"

        async def good(v: float) -> None:
            await publish(port, topic, [json.dumps({"ts": time.time(), "vibration": v})])

        async def bad() -> None:
            await publish(port, topic, [b"{"])

        spec = {"type": "mqtt", "topic": topic.replace(ASSET, "{asset}"), "timestamp": {"field": "ts"}}
        return Feed({**spec, "fields": {"vibration": "vibration"}}, good, bad, "malformed_json")
    if kind == "opcua":
        pytest.importorskip("asyncua")
        from asyncua import ua

        server = await opcua_server_factory((ASSET,))
        # a text variable mapped to a number signal: what it carries is never a number
        text = await server.server.nodes.objects.add_variable(
            ua.NodeId(f"{ASSET}.text", server.ns), ua.QualifiedName("text", server.ns), "", ua.VariantType.String
        )

        async def good(v: float) -> None:
            await server.write(ASSET, "vibration", v)

        async def bad() -> None:
            await text.write_value(ua.Variant("high", ua.VariantType.String))

        spec = {
            "type": "opcua",
            "endpoint": server.endpoint,
            "sampling_ms": 50,
            "publishing_ms": 50,
            "timeout_s": 2,
            "nodes": [
                {"node": f"ns={server.ns};s={ASSET}.vibration", "asset": ASSET, "signal": "vibration"},
                {"node": f"ns={server.ns};s={ASSET}.text", "asset": ASSET, "signal": "pressure"},
            ],
        }
        return Feed(spec, good, bad, "wrong_type")
    pytest.importorskip("aiocoap")
    device = await coap_device_factory((ASSET,))

    async def good_coap(v: float) -> None:
        device.notify(ASSET, senml(ASSET, vibration=v))

    async def bad_coap() -> None:
        device.notify(ASSET, b"[{broken", cf=110)

    spec = {"type": "coap", "mode": "observe", "uri": f"coap://127.0.0.1:{device.port}/pumps/{ASSET}", "request_timeout_s": 1}
    return Feed(spec, good_coap, bad_coap, "malformed_senml")


def source_config(feed: Feed, mqtt_port: int) -> GatewayConfig:
    return GatewayConfig.model_validate(
        {
            "gateway": {"id": f"gw-contract-{uuid.uuid4().hex[:8]}"},  # a session of its own on the broker
            "mqtt": {"port": mqtt_port},
            "profiles": {"pump": {"signals": {"vibration": {"hi": 7.1}, "pressure": {}}}},
            "assets": [{"id": ASSET, "profile": "pump"}],
            "sources": [feed.spec],
        }
    )


async def test_a_source_delivers_readings_and_outlives_malformed_input(feed: Feed, mosquitto: Any) -> None:
    cfg = source_config(feed, mosquitto.port)
    engine = Engine(cfg, lambda a: None)
    (src,) = build_sources(cfg, Intake(engine, cfg.ingest))
    signal = engine.assets[ASSET].signals["vibration"]
    task = asyncio.create_task(src.run())
    try:
        await until(lambda: src.connected or task.done(), what=f"{src.name} connected")
        assert not task.done(), task
        await feed.good(4.25)
        await until(lambda: signal.last_value == 4.25, what="the first reading in the engine")
        before = engine.rejected.get(feed.reason, 0)
        await feed.bad()
        await until(lambda: engine.rejected.get(feed.reason, 0) > before, what=f"{feed.reason} counted")
        await feed.good(5.5)
        await until(lambda: signal.last_value == 5.5, what="a reading after the malformed one")
        assert not task.done() and src.connected
        stats = src.stats()  # type: ignore[attr-defined]
        assert set(stats) >= LINK_KEYS and json.loads(json.dumps(stats)) == stats, stats
        assert stats["connected"] is True and stats["connects"] == 1 and stats["failures"] == 0
        assert stats["connected_since"] <= time.time()
    finally:
        await _cancel([task])  # what the gateway does with its sources when it stops
    assert task.done(), f"{src.name}: run() did not end when cancelled"


# ---------------------------------------------------------------- sinks


@dataclass
class Peer:
    """One sink kind against its peer: the sink, whether an alert id arrived, how the peer goes away."""

    sink: Any
    arrived: Callable[[str], bool]
    gone: Callable[[], None]
    stats_keys: set[str]


@pytest.fixture(params=["local", "upstream", "notify", "history"])
async def peer(request: pytest.FixtureRequest, broker_factory: Any, tmp_path: Path) -> AsyncIterator[Peer]:
    kind = request.param
    if kind == "history":  # its peer is its file: an alert has arrived when the journal holds it
        import shutil

        from edgegw.history import query
        from edgegw.history.store import Historian

        folder = tmp_path / "state"
        h = Historian(example_config(1883, "history.flush_s=0.2"), folder / "history.db")

        def journalled(i: str) -> bool:
            with contextlib.suppress(query.HistoryUnavailable):
                return any(i in e["detail"] for e in query.journal(h.path, 0))
            return False

        yield Peer(h, journalled, lambda: shutil.rmtree(folder), {"rows_written", "journal_written", "bytes", "last_flush"})
        return
    if kind == "notify":
        from edgegw.notify.dispatch import Notifier

        hook = Hook()
        section = {
            "state_dir": str(tmp_path / "state"),
            "commands": {"enabled": False},
            "journal": {"enabled": False},
            "targets": [{"type": "webhook", "url": hook.url, "retry_max_s": 1}],
        }
        sink = Notifier(notify_config(tmp_path, 1883, section))
        yield Peer(sink, lambda i: any(d.get("id") == i for d in hook.accepted()), hook.close, {"targets", "queued_total"})
        hook.close()
        return
    broker = broker_factory()
    if kind == "local":
        from edgegw.sinks.local import LocalSink

        sink: Any = LocalSink(example_config(broker.port))
    else:
        from edgegw.sinks.bridge import Bridge

        sink = Bridge(bridge_config(broker.port, broker.port, tmp_path / "outbox.db"), Sequencer())
    async with Collector(broker.port, "#") as seen:
        yield Peer(sink, lambda i: any(d.get("id") == i for d in seen.json()), broker.stop, LINK_KEYS)


def an_alert(sink: Any) -> Alert:
    cfg = sink.cfg
    return threshold_alert(
        ASSET, severity=Severity.CRITICAL, id=uuid.uuid4().hex, seq=1, gateway=cfg.gateway.id, site=cfg.gateway.site
    )


@contextlib.asynccontextmanager
async def running(sink: Any) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(sink.run())
    try:
        yield task
    finally:
        await _cancel([task])  # what the gateway does with a sink still running after close()
    assert task.done(), f"{sink.name}: run() did not end when cancelled"


async def test_a_sink_delivers_an_alert_to_its_peer(peer: Peer) -> None:
    sink = peer.sink
    async with running(sink) as task:
        a = an_alert(sink)
        sink.alert(a)
        await until(lambda: peer.arrived(a.id), what=f"{sink.name}: the alert at its peer")
        assert sink.connected is True and not task.done()
        stats = sink.stats()
        assert peer.stats_keys <= set(stats) and json.loads(json.dumps(stats)) == stats, stats
        await asyncio.wait_for(sink.close(2.0), 10)


async def test_a_sink_closes_within_its_timeout_when_the_peer_is_gone(peer: Peer) -> None:
    sink = peer.sink
    async with running(sink):
        first = an_alert(sink)
        sink.alert(first)
        await until(lambda: peer.arrived(first.id), what=f"{sink.name}: the alert at its peer")
        peer.gone()
        sink.alert(an_alert(sink))  # cannot be delivered now
        await asyncio.wait_for(sink.close(0.3), 3)  # a bound ten times the timeout: this finds a hang, not a speed


def test_every_source_kind_is_covered() -> None:
    """A new source kind must join the `feed` parametrisation above."""
    from edgegw.sources import _KINDS

    assert set(_KINDS) == {"mqtt", "opcua", "coap"}
