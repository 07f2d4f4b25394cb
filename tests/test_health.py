"""Self-metrics through a real mosquitto: status/{gateway}/metrics carries readings in, rejects per
reason, alerts raised, connection state, hop latency, event-loop lag, queue depths, RSS, uptime;
the Prometheus endpoint serves the same on localhost when asked to, and is off otherwise."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from edgegw.health import LoopLag, percentiles_ms, rss_mb, sink_depth
from tests.helpers import Collector, example_config, publish, pump, running_gateway
from tests.peers import Broker

SRC = Path(__file__).resolve().parent.parent / "src"


def _metrics(sub: Collector, gw_id: str) -> list[dict]:
    return sub.json(f"status/{gw_id}/metrics")


async def test_metrics_topic_carries_the_figures(mosquitto: Broker) -> None:
    port, gid = mosquitto.port, "gw-health-1"
    cfg = example_config(
        port,
        f"gateway.id={gid}",
        f"gateway.site={gid}",
        "metrics.interval_s=1",
        "profiles.pump.signals.vibration.on_delay_s=0",
        "sources.0.topic=health1/{asset}/telemetry",
    )
    async with Collector(port, f"status/{gid}/metrics") as sub, running_gateway(cfg) as gw:
        first = (await sub.wait(lambda s: _metrics(s, gid), 15))[0]
        assert first["gateway"] == gid and 0 < first["uptime_s"] < 60  # seconds since this gateway started
        src = first["sources"]["mqtt-0"]
        assert list(first["sources"]) == ["mqtt-0"] and src["connected"] is True
        assert src["connects"] == 1 and src["failures"] == 0 and src["connected_since"] <= first["ts"]
        assert first["sinks"]["local"]["connected"] is True and first["sinks"]["local"]["connects"] == 1
        assert 5 < first["rss_mb"] < 2000 and first["peak_rss_mb"] > 0
        t = time.time() - 4
        good = [pump(12.5 if i > 20 else 3.0, t + i * 0.1) for i in range(40)]
        await publish(port, "health1/pump-3/telemetry", [*good, "{", "not json", pump(3.0, ts=1.0)])
        await publish(port, "health1/pump-77/telemetry", [pump(3.0)])

        def settled(s: Collector) -> dict | None:
            for m in reversed(_metrics(s, gid)):
                if m["readings_in"] >= 200 and m["alerts_raised"] >= 1 and m["hops"] > 0 and m["rejected_total"] >= 4:
                    return m
            return None

        m = await sub.wait(settled, 20)
        assert m["messages_in"] >= 43
        assert m["rejected"]["malformed_json"] == 2
        assert m["rejected"]["unknown_asset"] >= 1
        assert sum(m["rejected"].values()) == m["rejected_total"]
        hop = m["hop_ms"]
        assert hop["n"] >= 1 and 0 <= hop["p50"] <= hop["p99"] <= hop["max"]
        assert m["hop_ms_p50"] == hop["p50"]
        assert 0 <= m["loop_lag_ms"]["last"] <= m["loop_lag_ms"]["max"]  # the max of the interval holds the last probe
        assert m["local_queue"] == m["sinks"]["local"]["depth"] and m["outbox_depth"] is None  # no upstream configured
        assert m["uptime_s"] > first["uptime_s"]
        assert gw.health.published >= 2
        await sub.wait(lambda s: [x for x in _metrics(s, gid) if x["ts"] > m["ts"] and x["local_queue"] == 0], 20)  # drained


async def test_loop_lag_sees_a_blocked_loop(mosquitto: Broker) -> None:
    """A callback that blocks the loop for 0.6 s shows up as lag of at least about that much."""
    port, gid = mosquitto.port, "gw-health-2"
    cfg = example_config(port, f"gateway.id={gid}", "metrics.interval_s=1", "sources.0.topic=health2/{asset}/t")
    async with Collector(port, f"status/{gid}/metrics") as sub, running_gateway(cfg) as gw:
        await asyncio.sleep(0.6)  # the probe is running
        asyncio.get_running_loop().call_soon(time.sleep, 0.6)
        got = await sub.wait(lambda s: [m for m in _metrics(s, gid) if m["loop_lag_ms"]["max"] >= 400], 15)
        assert got[0]["loop_lag_ms"]["max"] >= 400
        assert gw.health.lag.worst_s >= 0.4


async def test_status_line_goes_to_systemd_on_change(mosquitto: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sock_path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(str(sock_path))
        s.setblocking(False)
        monkeypatch.setenv("NOTIFY_SOCKET", str(sock_path))
        cfg = example_config(mosquitto.port, "gateway.id=gw-health-3", "sources.0.topic=health3/{asset}/t")
        got: list[str] = []
        async with running_gateway(cfg):
            t0 = time.monotonic()
            while time.monotonic() - t0 < 10 and not any("source(s) connected" in m for m in got):
                await asyncio.sleep(0.1)
                while True:
                    try:
                        got.append(s.recv(4096).decode())
                    except BlockingIOError:
                        break
        status = [m for m in got if m.startswith("STATUS=running: 1/1 source(s) connected")]
        assert status, got
        assert "local broker up" in status[0] and "4 asset(s)" in status[0]
        assert len(status) == 1  # sent on change, not every second


async def test_prometheus_endpoint_on_localhost(mosquitto: Broker) -> None:
    pytest.importorskip("prometheus_client")
    port, gid = mosquitto.port, "gw-health-4"
    cfg = example_config(port, f"gateway.id={gid}", "metrics.prometheus_port=0", "sources.0.topic=health4/{asset}/t")
    assert cfg.metrics.prometheus_bind == "127.0.0.1"
    async with running_gateway(cfg) as gw:
        for _ in range(100):
            if gw.sources[0].connected:
                break
            await asyncio.sleep(0.05)
        await publish(port, "health4/pump-1/t", [pump(3.0), "{"])
        for _ in range(100):
            if gw.health.prometheus_port and gw.engine.readings_in >= 6 and gw.engine.rejected:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.2)  # the scrape view refreshes each second
        url = f"http://127.0.0.1:{gw.health.prometheus_port}/metrics"
        text = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read().decode())
        server = gw.health._prom_server
        assert server is not None and server.server_address[0] == "127.0.0.1"
    assert "edgegw_readings_in_total 6.0" in text
    assert 'edgegw_rejected_total{reason="malformed_json"} 1.0' in text
    assert 'edgegw_connected{kind="source",name="mqtt-0"} 1.0' in text
    assert 'edgegw_connects_total{kind="source",name="mqtt-0"} 1.0' in text
    assert 'edgegw_connection_failures_total{kind="sink",name="local"} 0.0' in text
    assert 'edgegw_event_loop_lag_seconds{which="max"}' in text
    assert "edgegw_resident_memory_bytes" in text
    assert gw.health._prom_server is None  # shut down with the gateway


def test_prometheus_is_off_by_default_and_not_imported() -> None:
    code = (
        "import sys; from edgegw.config import MetricsConfig; import edgegw.gateway, edgegw.health;"
        "assert MetricsConfig().prometheus_port is None;"
        "assert 'prometheus_client' not in sys.modules, 'imported without being asked for'"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr


def test_sink_depth_reads_what_a_sink_exposes() -> None:
    class Attr:
        depth = 3

    class Prop:
        @property
        def depth(self) -> int:
            return 4

    class Method:
        def depth(self) -> int:
            return 5

    class Outbox:
        count = 6

    class WithOutbox:
        outbox = Outbox()

    assert [sink_depth(x) for x in (Attr(), Prop(), Method(), WithOutbox(), object())] == [3, 4, 5, 6, None]


def test_helpers() -> None:
    assert percentiles_ms([]) is None
    p = percentiles_ms([0.001] * 99 + [0.1])
    assert p == {"p50": 1.0, "p99": 1.99, "max": 100.0, "n": 100}  # linear between the 99th and 100th, as numpy
    assert rss_mb() > 5
    lag = LoopLag()
    lag.record(0.2)
    lag.record(0.01)
    assert lag.take_max() == 0.2 and lag.take_max() == 0.0 and lag.worst_s == 0.2


def test_metrics_json_is_plain(mosquitto: Broker) -> None:
    """A snapshot serialises with the stdlib too (what dashboards and jq read)."""
    from edgegw.gateway import Gateway

    gw = Gateway(example_config(mosquitto.port, "gateway.id=gw-health-5"))
    snap = gw.health.snapshot()
    assert json.loads(json.dumps(snap)) == snap


async def test_outbox_depth_while_upstream_is_down(mosquitto: Broker, tmp_path: Path) -> None:
    """With the upstream broker unreachable, what the bridge holds shows as outbox_depth."""
    from tests.peers import free_port

    port, gid = mosquitto.port, "gw-health-6"
    cfg = example_config(
        port,
        f"gateway.id={gid}",
        f"gateway.site={gid}",
        "metrics.interval_s=1",
        "profiles.pump.signals.vibration.on_delay_s=0",
        "sources.0.topic=health6/{asset}/t",
        "upstream.host=127.0.0.1",
        f"upstream.port={free_port()}",
        f"upstream.outbox.path={tmp_path / 'outbox.db'}",
    )
    async with Collector(port, f"status/{gid}/metrics") as sub, running_gateway(cfg) as gw:
        await sub.wait(lambda s: _metrics(s, gid), 15)
        t = time.time() - 2
        await publish(port, "health6/pump-2/t", [pump(12.5, t + i * 0.1) for i in range(20)])
        m = await sub.wait(lambda s: [m for m in _metrics(s, gid) if (m["outbox_depth"] or 0) >= 1], 15)
        up = m[-1]["sinks"]["upstream"]
        assert up["connected"] is False and up["depth"] == m[-1]["outbox_depth"] == up["queued"]
        assert up["connects"] == 0 and up["failures"] >= 1 and up["disconnects"].get("refused", 0) >= 1
        assert gw.engine.readings_in >= 100
