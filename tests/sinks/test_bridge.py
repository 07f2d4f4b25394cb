"""The upstream bridge against real brokers: a local mosquitto (session fixture) and an upstream one
per test that the test stops and starts again."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from edgegw.config import GatewayConfig
from tests.helpers import EXAMPLE, Collector, Subscriber, example_config, publish, pump, running_gateway, threshold_alert
from tests.peers import free_port, until

AS_INVOKER = "user root\n"  # mosquitto started by root keeps root: it can then write its persistence under tmp_path
PUMP_SIGNALS = ("vibration", "pressure", "temperature", "flow", "current", "suction_pressure")
NO_DELAYS = [f"profiles.pump.signals.{s}.{d}=0" for s in PUMP_SIGNALS for d in ("on_delay_s", "off_delay_s")]


def bridge_config(local_port: int, up_port: int, outbox: Path, *extra: str) -> GatewayConfig:
    return example_config(  # a site of its own: retained alarms stay out of other tests' topics
        local_port,
        "gateway.id=gw-bridge",
        "gateway.site=site-bridge",
        "upstream.host=127.0.0.1",
        f"upstream.port={up_port}",
        f"upstream.outbox.path={outbox}",
        "upstream.outbox.commit_ms=50",
        *NO_DELAYS,
        *extra,
    )


class Observer(Subscriber):
    """An upstream consumer with a persistent session that reconnects by itself (as a cloud one would)."""

    def __init__(
        self, port: int, topic: str = "edge/#", ident: str = "observer", shared: bool = False, auth: tuple[str, str] | None = None
    ) -> None:
        super().__init__()
        self.port, self.topic, self.ident, self.shared = port, topic, ident, shared
        self.auth = {"username": auth[0], "password": auth[1]} if auth else {}
        self.messages: list[tuple[str, dict[str, Any]]] = []

    async def _run(self) -> None:
        proto = aiomqtt.ProtocolVersion.V5 if self.shared else aiomqtt.ProtocolVersion.V311
        kw: dict[str, Any] = {"clean_start": False} if self.shared else {"clean_session": False}
        kw.update(self.auth)
        while True:
            try:
                async with aiomqtt.Client("127.0.0.1", self.port, identifier=self.ident, protocol=proto, **kw) as c:
                    await c.subscribe(self.topic, qos=1)
                    self.connected.set()
                    async for m in c.messages:
                        if isinstance(m.payload, bytes) and m.payload.startswith(b"{"):
                            self.messages.append((m.topic.value, json.loads(m.payload)))
            except aiomqtt.MqttError:
                self.connected.clear()
                await asyncio.sleep(0.2)

    def records(self, part: str = "") -> list[dict[str, Any]]:
        return [d for t, d in self.messages if part in t]

    async def wait(self, pred: Callable[[Observer], Any], timeout: float = 30.0) -> None:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if pred(self):
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"upstream condition not met in {timeout} s; {len(self.messages)} messages")


def cycles(asset: str, n: int, t0: float | None = None) -> list[str]:
    """Telemetry that raises and clears the vibration alarm every 40 samples (event time 0.1 s apart)."""
    t = t0 if t0 is not None else time.time()
    return [pump(12.5 if (i // 40) % 2 == 0 else 3.0, ts=t + i * 0.1) for i in range(n)]


def first_arrivals(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    out = []
    for d in records:
        if d["id"] not in seen:
            seen.add(d["id"])
            out.append(d)
    return out


async def test_outage_everything_arrives_in_order_without_seq_gaps(mosquitto, broker_factory, tmp_path: Path) -> None:
    up = broker_factory(persist=True, extra_conf=AS_INVOKER)
    cfg = bridge_config(mosquitto.port, up.port, tmp_path / "outbox.db", "rollups.interval_s=1")
    async with Observer(up.port) as obs, Collector(mosquitto.port, "alerts/#", "rollups/#") as local, running_gateway(cfg) as gw:
        bridge = gw.sinks[-1]
        await publish(mosquitto.port, "plant/pumps/pump-1/telemetry", cycles("pump-1", 160))
        await obs.wait(lambda o: len(o.records("/alerts/")) >= 4)
        up.stop()  # the uplink goes down during steady alert and rollup production
        await asyncio.sleep(0.5)
        for asset in ("pump-2", "pump-3"):
            await publish(mosquitto.port, f"plant/pumps/{asset}/telemetry", cycles(asset, 240))
            await asyncio.sleep(1.2)  # rollups keep coming every second meanwhile
        assert not bridge.connected and bridge.outbox.count > 0
        split = gw.seq.value  # everything up to here was produced before the uplink came back
        up.start()
        await obs.wait(lambda o: {d["seq"] for d in o.records()} >= set(range(1, split + 1)), 60)
        local_ids = {d["id"] for d in local.json() if d.get("gateway") == "gw-bridge" and not d.get("_retained")}
        await obs.wait(lambda o: local_ids <= {d["id"] for d in o.records()}, 30)
    got = first_arrivals(obs.records())
    seqs = [d["seq"] for d in got]
    assert len(seqs) == len(set(seqs)), "one seq per message id"
    assert sorted(seqs) == list(range(1, max(seqs) + 1)), "no gap in seq"
    backlog = [s for s in seqs if s <= split]
    assert backlog == sorted(backlog), "the backlog arrives in order"
    kinds = {d.get("kind", "rollup") for d in got if d["seq"] <= split}
    assert "threshold" in kinds and "rollup" in kinds
    assert any(t.startswith("edge/gw-bridge/alerts/site-bridge/pump-2/threshold/") for t, _ in obs.messages)
    assert any(t == "edge/gw-bridge/rollups/site-bridge/pump-3" for t, _ in obs.messages)


# ---------------------------------------------------------------- the real daemon, killed

EDGEGW = Path(sys.executable).parent / "edgegw"


def start_daemon(tmp_path: Path, name: str, *sets: str) -> subprocess.Popen[bytes]:
    argv = [
        str(EDGEGW),
        "run",
        "-c",
        str(EXAMPLE),
        "--set",
        "profiles.pump.model=null",
        "--set",
        "log.format=json",
        "--set",
        "gateway.site=site-daemons",
    ]
    for s in (*NO_DELAYS, *sets):
        argv += ["--set", s]
    with open(tmp_path / f"{name}.log", "ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


async def subscribed(*logs: Path, timeout: float = 20.0) -> None:
    """The daemons' MQTT sources are subscribed (the status goes online a moment before)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if all(p.exists() and '"subscribed"' in p.read_text() for p in logs):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not subscribed in {timeout} s")


def outbox_rows(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as c:
        return int(c.execute("SELECT count(*) FROM outbox").fetchone()[0])


async def test_sigkill_with_unacknowledged_messages_then_all_arrive(mosquitto, broker_factory, tmp_path: Path) -> None:
    up_port = free_port()  # nothing listens yet: the uplink is down from the start
    gw_id = "gw-kill9"
    ob = tmp_path / "outbox.db"
    sets = (
        f"gateway.id={gw_id}",
        f"mqtt.port={mosquitto.port}",
        "upstream.host=127.0.0.1",
        f"upstream.port={up_port}",
        f"upstream.outbox.path={ob}",
        "upstream.protocol=3.1.1",
    )
    async with Collector(mosquitto.port, "alerts/+/kill9-pump/#", f"status/{gw_id}") as local:
        gw = start_daemon(tmp_path, "gw1", *sets, "assets.0.id=kill9-pump")
        try:
            await subscribed(tmp_path / "gw1.log")
            await publish(mosquitto.port, "plant/pumps/kill9-pump/telemetry", cycles("kill9-pump", 240))
            await local.wait(lambda c: len(c.alerts(asset="kill9-pump")) >= 5, 20)
            ids = {d["id"] for d in local.alerts(asset="kill9-pump")}
            assert outbox_rows(ob) >= len(ids)
        finally:
            gw.send_signal(signal.SIGKILL)
            gw.wait(5)
        assert gw.returncode == -signal.SIGKILL
        old_max = max(d["seq"] for d in local.alerts(asset="kill9-pump"))
        broker_factory(port=up_port)
        async with Observer(up_port, ident="kill9-observer") as obs:
            gw = start_daemon(tmp_path, "gw2", *sets, "assets.0.id=kill9-pump")
            try:
                await obs.wait(lambda o: ids <= {d["id"] for d in o.records("/alerts/")}, 30)
                await publish(mosquitto.port, "plant/pumps/kill9-pump/telemetry", cycles("kill9-pump", 80, time.time() + 100))
                await obs.wait(lambda o: len({d["id"] for d in o.records("/alerts/")}) >= len(ids) + 2, 30)
            finally:
                gw.terminate()
                gw.wait(10)
    assert gw.returncode == 0, "a clean stop on SIGTERM"
    new = [d for d in first_arrivals(obs.records("/alerts/")) if d["id"] not in ids]
    assert new and min(d["seq"] for d in new) > old_max, "seq continues after the restart, never reused"
    assert outbox_rows(ob) == 0


# ---------------------------------------------------------------- a full outbox


async def test_outbox_full_drops_rollups_keeps_alerts_and_says_so(mosquitto, tmp_path: Path, broker_factory) -> None:
    up_port = free_port()
    cfg = bridge_config(
        mosquitto.port,
        up_port,
        tmp_path / "outbox.db",
        "gateway.id=gw-full",
        "rollups.interval_s=1",
        "upstream.outbox.max_mb=0.012",
        "assets.0.id=full-pump",
    )
    async with Collector(mosquitto.port, "alerts/site-bridge/#") as local, running_gateway(cfg) as gw:
        bridge = gw.sinks[-1]
        bridge.backoff.cap = 1.0  # the broker comes back mid-test: retry within a second, not up to 30 s
        await publish(mosquitto.port, "plant/pumps/full-pump/telemetry", cycles("full-pump", 240))
        full = await local.wait(lambda c: c.alerts(asset="gw-full", kind="outbox_full", state="raised"), 20)
        assert full[0]["dropped"]["rollup"] > 0 and full[0]["dropped"]["alert"] == 0
        assert full[0]["_topic"] == "alerts/site-bridge/gw-full/outbox_full/upstream"
        alert_ids = {d["id"] for d in local.alerts(asset="full-pump")}
        assert len(alert_ids) >= 5
        # rollups keep coming and keep being dropped
        await until(lambda: bridge.outbox.dropped["rollup"] > full[0]["dropped"]["rollup"], what="a later rollup dropped")
        assert bridge.outbox.dropped["alert"] == 0
        assert bridge.outbox.bytes <= bridge.outbox.max_bytes
        assert bridge.stats()["dropped"]["rollup"] == bridge.outbox.dropped["rollup"]
        broker_factory(port=up_port)
        async with Observer(up_port, ident="full-observer") as obs:
            await obs.wait(lambda o: alert_ids <= {d["id"] for d in o.records("/alerts/")}, 30)
            cleared = await local.wait(lambda c: c.alerts(asset="gw-full", kind="outbox_full", state="cleared"), 20)
            assert cleared[0]["dropped"]["rollup"] >= full[0]["dropped"]["rollup"]
            await obs.wait(lambda o: any(d.get("kind") == "outbox_full" for d in o.records("/alerts/")), 10)


# ---------------------------------------------------------------- the fleet


async def test_fleet_three_gateways_one_shared_subscription_group(mosquitto, broker_factory, tmp_path: Path) -> None:
    """Three daemons, one upstream broker, a consumer group of two: every message id exactly once."""
    up = broker_factory()
    group = [Observer(up.port, "$share/cloud/edge/+/alerts/#", ident=f"cloud-{i}", shared=True) for i in range(2)]
    gws = []
    async with contextlib.AsyncExitStack() as stack:
        for o in group:
            await stack.enter_async_context(o)
        local = await stack.enter_async_context(Collector(mosquitto.port, "alerts/#", "status/#"))
        states = [tmp_path / f"state{i}" for i in range(3)]
        for d in states:
            d.mkdir()
        try:
            for i in range(3):
                gws.append(
                    start_daemon(
                        tmp_path,
                        f"gw{i}",
                        f"gateway.id=gw-fleet-{i}",
                        f"mqtt.port={mosquitto.port}",
                        "upstream.host=127.0.0.1",
                        f"upstream.port={up.port}",
                        f"upstream.outbox.path={tmp_path}/ob{i}.db",
                        f"gateway.state_dir={states[i]}",  # one gateway per state directory
                        f"assets.0.id=fleet-{i}",
                        "rollups.enabled=false",
                    )
                )
            await subscribed(*(tmp_path / f"gw{i}.log" for i in range(3)), timeout=30)
            for i in range(3):
                await publish(mosquitto.port, f"plant/pumps/fleet-{i}/telemetry", cycles(f"fleet-{i}", 160))
            await local.wait(lambda c: all(len(c.alerts(asset=f"fleet-{i}")) >= 4 for i in range(3)), 20)
            ids = {d["id"] for d in local.alerts() if d["asset"].startswith("fleet-")}

            def received(_: Observer) -> bool:
                return ids <= {d["id"] for o in group for d in o.records()}

            await group[0].wait(received, 30)
        finally:
            for p in gws:
                p.terminate()
            for p in gws:
                p.wait(10)
    got = [d["id"] for o in group for d in o.records()]
    assert len(got) == len(set(got)) == len(ids), "each message exactly once across the group"
    assert all(o.records() for o in group), "the group shares the load"
    assert {d["gateway"] for o in group for d in o.records()} == {"gw-fleet-0", "gw-fleet-1", "gw-fleet-2"}


# ---------------------------------------------------------------- what goes upstream


async def test_decimated_readings_and_choice_of_kinds(mosquitto, broker_factory, tmp_path: Path) -> None:
    up = broker_factory()
    cfg = bridge_config(
        mosquitto.port,
        up.port,
        tmp_path / "outbox.db",
        "gateway.id=gw-readings",
        "assets.0.id=read-pump",
        "upstream.send.readings=[vibration, flow]",
        "upstream.send.readings_every_s=1",
        "upstream.send.alerts=false",
        "rollups.interval_s=1",
    )
    async with Observer(up.port, ident="readings-observer") as obs, running_gateway(cfg):
        t = time.time()
        await publish(
            mosquitto.port,
            "plant/pumps/read-pump/telemetry",
            [pump(12.5 + i * 0.01, ts=t + i * 0.1, flow=60.0 + i) for i in range(50)],
        )
        await obs.wait(lambda o: any(d["value"] == 109.0 for d in o.records("/readings/site-bridge/read-pump/flow")))
        await obs.wait(lambda o: o.records("/rollups/site-bridge/read-pump"))
        n = len(obs.records("/readings/"))
        r = len(obs.records("/rollups/site-bridge/read-pump"))
        # three more rollups (one a second): what the two periods after this one sampled went before the third
        await obs.wait(lambda o: len(o.records("/rollups/site-bridge/read-pump")) >= r + 3)
        assert len(obs.records("/readings/")) == n, "only when there is something new"
    vib = obs.records("/readings/site-bridge/read-pump/vibration")
    flow = obs.records("/readings/site-bridge/read-pump/flow")
    assert vib[-1]["value"] == pytest.approx(12.99) and flow[-1]["value"] == 109.0, "the latest value of the period"
    assert len(vib) <= 2, "decimated: one per period (two if the burst straddled a boundary)"
    assert vib[0]["unit"] == "mm/s" and vib[0]["gateway"] == "gw-readings"
    assert not obs.records("/alerts/"), "alerts were switched off upstream"
    assert not obs.records("/readings/site-bridge/read-pump/pressure")


def test_readings_of_an_unknown_signal_is_a_config_error(tmp_path: Path) -> None:
    from edgegw.config import ConfigError
    from edgegw.gateway import Gateway

    cfg = bridge_config(1883, 1884, tmp_path / "o.db", "upstream.send.readings=[vibraton]")
    with pytest.raises(ConfigError, match="vibraton"):
        Gateway(cfg)


# ---------------------------------------------------------------- the bridge's own alarms


async def test_corrupt_outbox_is_moved_aside_reported_and_cleared(mosquitto, broker_factory, tmp_path: Path) -> None:
    up = broker_factory()
    ob = tmp_path / "outbox.db"
    ob.write_bytes(b"\x00garbage, not SQLite\x00" * 500)
    cfg = bridge_config(mosquitto.port, up.port, ob, "gateway.id=gw-corrupt", "rollups.enabled=false")
    async with (
        Observer(up.port, ident="corrupt-observer") as obs,
        Collector(mosquitto.port, "alerts/site-bridge/gw-corrupt/#") as local,
        running_gateway(cfg),
    ):
        raised = await local.wait(lambda c: c.alerts(kind="outbox_corrupt", state="raised"), 10)
        assert "moved aside" in raised[0]["problem"]
        await local.wait(lambda c: c.alerts(kind="outbox_corrupt", state="cleared"), 10)
        await obs.wait(lambda o: [d for d in o.records() if d.get("kind") == "outbox_corrupt"], 10)
    assert len(list(tmp_path.glob("outbox.db.corrupt-*"))) == 1


async def test_outbox_full_alarm_survives_a_restart_and_clears(tmp_path: Path) -> None:
    from edgegw.gateway import Sequencer
    from edgegw.sinks.bridge import Bridge
    from edgegw.sinks.outbox import Kind

    cfg = bridge_config(1883, free_port(), tmp_path / "o.db", "upstream.outbox.max_mb=0.002", "upstream.outbox.commit_ms=20")
    seen: list[Any] = []
    first = Bridge(cfg, Sequencer(), on_alert=seen.append)
    ids = [first.outbox.put(Kind.ROLLUP, "r", b"x" * 500) for _ in range(8)]
    first._commit()
    await asyncio.sleep(0)  # the deferred raise
    assert [(a.kind, str(a.state)) for a in seen] == [("outbox_full", "raised")]
    for i in ids:
        first.outbox.ack(i)
    first.outbox.close()  # stopped before it could clear
    seen.clear()
    second = Bridge(cfg, Sequencer(), on_alert=seen.append)
    task = asyncio.create_task(second.run())
    try:
        t0 = time.monotonic()
        while not seen and time.monotonic() - t0 < 10:
            await asyncio.sleep(0.02)
    finally:
        await second.close()
        await asyncio.wait_for(task, 10)
    assert [(a.kind, str(a.state)) for a in seen] == [("outbox_full", "cleared")]
    assert seen[0].raised_at is not None


async def test_live_messages_overtake_a_rate_limited_backlog(broker_factory, tmp_path: Path) -> None:
    from edgegw.gateway import Sequencer
    from edgegw.records import Severity
    from edgegw.sinks.bridge import Bridge
    from edgegw.sinks.outbox import Kind

    up = broker_factory()
    cfg = bridge_config(1883, up.port, tmp_path / "o.db", "upstream.outbox.replay_rate=50")
    seq = Sequencer()
    bridge = Bridge(cfg, seq)
    for _ in range(500):  # queued while the uplink was down
        s = seq.next()
        bridge.outbox.put(Kind.ROLLUP, "edge/gw-pumphouse-1/rollups/plant-a/pump-1", json.dumps({"seq": s}).encode(), s)
    bridge.outbox.commit()
    async with Observer(up.port, ident="lanes-observer") as obs:
        task = asyncio.create_task(bridge.run())
        try:
            await obs.wait(lambda o: len(o.messages) >= 5, 10)  # the replay is under way
            live = threshold_alert(
                severity=Severity.CRITICAL, id="live-one", seq=seq.next(), gateway="gw-pumphouse-1", site="plant-a"
            )
            bridge.alert(live)
            await obs.wait(lambda o: any(d.get("id") == "live-one" for d in o.records("/alerts/")), 10)
            replayed_before_live = len(obs.records("/rollups/"))
            assert replayed_before_live < 400, "the live alert did not wait for the backlog"
            assert bridge.outbox.count > 50
        finally:
            await bridge.close()
            await asyncio.wait_for(task, 10)
    backlog = [d["seq"] for d in obs.records("/rollups/")]
    assert backlog == sorted(backlog), "the backlog goes oldest first"
    assert bridge.outbox.count > 0, "what was not replayed stays for the next start"
