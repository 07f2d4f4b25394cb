"""The bridge against servers that say no: limits announced in the CONNACK, publishes refused by an
ACL, and an outage of thousands of failed connects. Real mosquitto brokers, MQTT 5."""

from __future__ import annotations

import asyncio
import random
import socket
from pathlib import Path
from typing import Any

import pytest

from edgegw import runtime
from edgegw.backoff import Backoff
from edgegw.gateway import Sequencer
from edgegw.records import Alert
from edgegw.sinks import bridge as bridge_module
from edgegw.sinks.bridge import Bridge
from tests.helpers import threshold_alert
from tests.peers import free_port, until
from tests.sinks.test_bridge import AS_INVOKER, Observer, bridge_config


class Gateway:
    """What the gateway does for the bridge's own alarms: stamp them and hand them back to it."""

    def __init__(self, cfg: Any, *extra: str) -> None:
        self.seq = Sequencer()
        self.alarms: list[Alert] = []
        self.bridge = Bridge(cfg, self.seq, on_alert=self.on_alert)

    def on_alert(self, a: Alert) -> None:
        a.id, a.seq, a.gateway, a.site = f"own-{len(self.alarms)}", self.seq.next(), "gw-bridge", "site-bridge"
        self.alarms.append(a)
        self.bridge.alert(a)

    def alert(self, asset: str, n: int) -> Alert:
        a = threshold_alert(asset, id=f"{asset[:12]}-{n}", seq=self.seq.next(), gateway="gw-bridge", site="site-bridge")
        self.bridge.alert(a)
        return a

    def raised(self, kind: str) -> list[Alert]:
        return [a for a in self.alarms if a.kind == kind and str(a.state) == "raised"]


def port_outside_ephemeral_range() -> int:
    """Thousands of connects to a closed port in the ephemeral range end up connected to themselves
    (TCP simultaneous open, source port = destination port), and then hold the port."""
    lo = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(100):
        port = random.randrange(max(1024, lo - 20000), lo)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


async def test_packet_size_and_receive_maximum_are_honoured(broker_factory, tmp_path: Path) -> None:
    """Maximum Packet Size 2000, Receive Maximum 2: an oversize alert is dead-lettered with a gateway
    alarm naming it, and everything else flows on one connection (mosquitto disconnects a client that
    exceeds either limit)."""
    up = broker_factory(extra_conf="max_packet_size 2000\nmax_inflight_messages 2\n")
    cfg = bridge_config(1883, up.port, tmp_path / "o.db", "upstream.outbox.inflight=32")
    gw = Gateway(cfg)
    async with Observer(up.port, ident="limits-observer") as obs:
        task = asyncio.create_task(gw.bridge.run())
        try:
            await until(lambda: gw.bridge.connected)
            assert gw.bridge.server_limits == {"receive_maximum": 2, "maximum_packet_size": 2000}
            sent = [gw.alert("pump-1", i) for i in range(30)]
            big = gw.alert("pump-" + "x" * 2995, 0)  # topic and payload of ~6 KB
            sent += [gw.alert("pump-2", i) for i in range(30)]
            await obs.wait(lambda o: {a.id for a in sent} <= {d["id"] for d in o.records("/alerts/")}, 30)
            await until(lambda: gw.bridge.outbox.count == 0)
        finally:
            await gw.bridge.close(5)
            await asyncio.wait_for(task, 10)
    assert gw.bridge.link.connects == 1, gw.bridge.link.stats()
    assert big.id not in {d["id"] for d in obs.records()}
    assert gw.bridge.outbox.dead_lettered["alert"] == 1
    [alarm] = gw.raised("outbox_dead_letter")
    assert alarm.asset == "gw-bridge" and "pump-xxxx" in alarm.message and "2000" in alarm.message
    assert alarm.id in {d["id"] for d in obs.records()}, "the alarm itself goes upstream too"
    assert gw.bridge.stats()["dead_lettered"]["alert"] == 1


async def test_refused_publishes_stay_queued_until_the_acl_is_lifted(
    broker_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ACL refuses the alert topics (PUBACK 0x87): nothing is deleted from the outbox as delivered,
    each is offered again on the same connection, an upstream_refused alarm is raised; with the ACL
    lifted everything arrives and it clears."""
    monkeypatch.setattr(bridge_module, "REFUSED_RETRY_FIRST_S", 0.2)
    acl = tmp_path / "acl"
    acl.write_text("topic read #\ntopic write edge/+/status/#\n")
    acl.chmod(0o644)
    port = free_port()
    # mosquitto 2.0.11 drops a client it refuses a publish to when max_queued_messages is 0 ("Bad socket
    # read/write"), so this broker keeps its default
    up = broker_factory(port=port, extra_conf=f"{AS_INVOKER}max_queued_messages 1000\nacl_file {acl}\n")
    cfg = bridge_config(1883, port, tmp_path / "o.db")
    gw = Gateway(cfg)
    task = asyncio.create_task(gw.bridge.run())
    try:
        await until(lambda: gw.bridge.connected)
        sent = [gw.alert("pump-1", i) for i in range(20)]
        await until(lambda: gw.bridge.refusals.get("0x87", 0) >= 60)  # each offered three times at least
        assert gw.bridge.link.connects == 1 and gw.bridge.stats()["refused_pending"] >= 20
        assert gw.bridge.published == 0 and gw.bridge.outbox.acked == 0
        assert gw.bridge.outbox.count >= 20, "a refused publish is not deleted as delivered"
        assert gw.raised("upstream_refused") and gw.bridge.outbox.dead_lettered["alert"] == 0
        up.stop()
        up = broker_factory(port=port)  # the same port, no ACL
        async with Observer(port, ident="acl-observer") as obs:
            await obs.wait(lambda o: {a.id for a in sent} <= {d["id"] for d in o.records("/alerts/")}, 30)
            await until(lambda: any(a.kind == "upstream_refused" and str(a.state) == "cleared" for a in gw.alarms))
    finally:
        await gw.bridge.close(5)
        await asyncio.wait_for(task, 10)
    assert gw.bridge.outbox.count == 0 and gw.bridge.outbox.dead_lettered["alert"] == 0


class Lines:
    """Stands in for a module's structlog logger: keeps the event names."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def __getattr__(self, level: str) -> Any:
        return lambda event, *args, **kw: self.events.append(event)


async def test_ten_thousand_failed_connects_then_everything_arrives(
    broker_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long outage in accelerated time: a backoff of a few hundred microseconds stands for the 30 s
    cap, so 10,000 consecutive failures (more than three days at the cap) pass in seconds. The bridge
    keeps trying and delivers everything when the broker comes back."""
    port = port_outside_ephemeral_range()
    cfg = bridge_config(1883, port, tmp_path / "o.db")
    gw = Gateway(cfg)
    gw.bridge.backoff = Backoff(0.0001, 0.0005)
    lines = Lines()
    monkeypatch.setattr(runtime, "log", lines)  # 10,000 warning lines, kept from the console
    task = asyncio.create_task(gw.bridge.run())
    try:
        sent = [gw.alert("pump-1", i) for i in range(5)]
        await until(lambda: gw.bridge.link.failures >= 5_000, 120)
        sent += [gw.alert("pump-2", i) for i in range(5)]
        await until(lambda: gw.bridge.link.failures >= 10_000, 120)
        assert not task.done() and gw.bridge.link.connects == 0
        assert gw.bridge.backoff.attempt >= 10_000
        broker_factory(port=port)
        async with Observer(port, ident="outage-observer") as obs:
            await obs.wait(lambda o: {a.id for a in sent} <= {d["id"] for d in o.records("/alerts/")}, 30)
    finally:
        await gw.bridge.close(5)
        await asyncio.wait_for(task, 10)
    assert lines.events.count("upstream unavailable") >= 10_000
    assert gw.bridge.link.connects == 1 and gw.bridge.outbox.count == 0
    assert gw.bridge.link.disconnects.get("refused", 0) >= 10_000


async def test_a_message_nobody_subscribes_to_waits_for_a_subscriber(
    broker_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PUBACK 0x10 (no matching subscribers: the message reached no one, e.g. the broker restarted
    without persistence and the consumer has not subscribed again yet) keeps the message queued."""
    monkeypatch.setattr(bridge_module, "REFUSED_RETRY_FIRST_S", 0.2)
    up = broker_factory()
    gw = Gateway(bridge_config(1883, up.port, tmp_path / "o.db"))
    task = asyncio.create_task(gw.bridge.run())
    try:
        sent = [gw.alert("pump-1", i) for i in range(3)]
        await until(lambda: gw.bridge.unheard >= 6)  # each offered twice at least
        assert gw.bridge.outbox.count == 3 and gw.bridge.published == 0
        async with Observer(up.port, ident="late-observer") as obs:
            await obs.wait(lambda o: {a.id for a in sent} <= {d["id"] for d in o.records("/alerts/")}, 30)
        await until(lambda: gw.bridge.outbox.count == 0)
    finally:
        await gw.bridge.close(5)
        await asyncio.wait_for(task, 10)
    assert not gw.raised("upstream_refused") and gw.bridge.outbox.dead_lettered["alert"] == 0
