"""End to end through a real mosquitto: raise and clear, retained active alarms, hostile input,
broker restart, SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.helpers import Collector, example_config, publish, pump, running_gateway
from tests.peers import Broker, until


async def test_threshold_raise_and_clear_with_late_subscriber(mosquitto: Broker) -> None:
    port = mosquitto.port
    cfg = example_config(port, "gateway.id=gw-e2e-1", "gateway.site=site-e2e-1")
    async with Collector(port, "alerts/#", "status/gw-e2e-1") as sub, running_gateway(cfg):
        await sub.wait(lambda s: any(t == "status/gw-e2e-1" and p == b"online" for t, p, _ in s.messages))
        t = time.time()
        await publish(port, "plant/pumps/pump-2/telemetry", [pump(12.5, t + i * 0.1) for i in range(50)])
        raised = (await sub.wait(lambda s: s.alerts(gateway="gw-e2e-1", asset="pump-2", state="raised")))[0]
        assert raised["kind"] == "threshold" and raised["source"] == "vibration" and raised["severity"] == "critical"
        assert raised["limit"] == 11.0 and raised["value"] == 12.5
        for k in ("id", "seq", "ts", "gateway", "site", "asset", "kind", "state", "severity"):
            assert k in raised
        # a monitor that subscribes now learns the alarm is active
        async with Collector(port, "alerts/site-e2e-1/pump-2/#") as late:
            got = await late.wait(lambda s: [m for m in s.messages if m[2]])
            assert json.loads(got[0][1])["state"] == "raised"
        t = time.time()
        await publish(port, "plant/pumps/pump-2/telemetry", [pump(3.0, t + i * 0.1) for i in range(100)])
        cleared = await sub.wait(lambda s: s.alerts(gateway="gw-e2e-1", asset="pump-2", state="cleared"))
        assert cleared[0]["seq"] > raised["seq"]
        assert len(sub.alerts(gateway="gw-e2e-1", asset="pump-2", kind="threshold")) == 2  # one per transition
        # ... and after the clear nothing is left retained: the deletion follows the clear on its topic
        topic = cleared[0]["_topic"]
        await sub.wait(lambda s: [m for m in s.messages if m[0] == topic and m[1] == b""])
        async with Collector(port, "alerts/site-e2e-1/pump-2/#") as late:
            # the broker sends what is retained on subscribing, so before anything published later
            await publish(port, "alerts/site-e2e-1/pump-2/marker", [b"after"])
            await late.wait(lambda s: [m for m in s.messages if m[0].endswith("/marker")])
            assert [m for m in late.messages if m[2]] == []


async def test_hostile_input_never_stops_the_gateway(mosquitto: Broker) -> None:
    port = mosquitto.port
    cfg = example_config(port, "gateway.id=gw-e2e-2", "gateway.site=site-e2e-2", "profiles.pump.signals.vibration.on_delay_s=0")
    bad: list[bytes | str] = [
        b"{",
        b"not json",
        b"",
        b"null",
        b"[]",
        b"[1,2,3]",
        b'"str"',
        b"1e999",
        b"NaN",
        b'{"ts": 1e20, "vibration": 3}',
        b'{"vibration": {"nested": [1,2]}}',
        b"[" * 5000 + b"]" * 5000,
        os.urandom(2000),
        b"\xff\xfe\x00\x01",
        json.dumps({"ts": time.time(), "vibration": 3, "junk": "x" * 70000}).encode(),
    ]
    async with Collector(port, "alerts/+/pump-1/#") as sub, running_gateway(cfg) as gw:
        await publish(port, "plant/pumps/pump-1/telemetry", bad * 3)
        await publish(port, "plant/pumps/pump-1/telemetry/extra", [pump(12.5)])
        await publish(port, "plant/pumps//telemetry", [pump(12.5)])
        await publish(port, "plant/pumps/pump-1/telemetry", [pump(12.5)])
        await sub.wait(lambda s: s.alerts(gateway="gw-e2e-2", asset="pump-1", state="raised"))
        rej = gw.engine.rejected
        for reason in ("malformed_json", "wrong_type", "bad_timestamp", "oversized"):
            assert rej.get(reason, 0) >= 3, rej


async def test_reconnects_after_broker_restart(broker_factory) -> None:  # type: ignore[no-untyped-def]
    b = broker_factory()
    cfg = example_config(b.port, "gateway.id=gw-e2e-3", "profiles.pump.signals.vibration.on_delay_s=0")
    async with running_gateway(cfg) as gw:
        await until(lambda: gw.sources[0].connected, what="the source connected")
        b.stop()
        await until(lambda: not gw.sources[0].connected, what="the source saw the broker go")
        b.start()
        async with Collector(b.port, "alerts/#") as sub:
            for _ in range(100):  # the gateway comes back by itself with backoff
                await publish(b.port, "plant/pumps/pump-3/telemetry", [pump(12.5)])
                if sub.alerts(asset="pump-3", state="raised"):
                    break
                await asyncio.sleep(0.3)
            assert sub.alerts(asset="pump-3", state="raised")
        assert gw.sources[0].connects >= 2  # type: ignore[attr-defined]


def test_sigterm_publishes_offline_and_exits_0(mosquitto: Broker, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.helpers import EXAMPLE

    sub = subprocess.Popen(
        ["mosquitto_sub", "-p", str(mosquitto.port), "-t", "status/gw-e2e-4", "-v"], stdout=subprocess.PIPE, text=True
    )
    gw = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edgegw",
            "run",
            "-c",
            str(EXAMPLE),
            "--set",
            f"mqtt.port={mosquitto.port}",
            "--set",
            "gateway.id=gw-e2e-4",
            "--set",
            "profiles.pump.model=null",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        assert sub.stdout is not None
        line = sub.stdout.readline()
        assert line.strip() == "status/gw-e2e-4 online", line
        gw.send_signal(signal.SIGTERM)
        assert gw.wait(10) == 0
        assert sub.stdout.readline().strip() == "status/gw-e2e-4 offline"
        assert time.monotonic() < deadline
    finally:
        gw.kill()
        sub.kill()
    out = gw.stdout.read() if gw.stdout else ""
    assert "Traceback" not in out


async def test_rollups_for_every_asset_each_interval(mosquitto: Broker) -> None:
    """20 pumps, 1 s rollups: every pump's rollup arrives each interval (handed out a few at a time)."""
    port = mosquitto.port
    pumps = [f"pump-{i}" for i in range(1, 21)]
    assets = "assets=[" + ",".join(f"{{id: {p}, profile: pump}}" for p in pumps) + "]"
    cfg = example_config(port, assets, "rollups.interval_s=1")
    site = cfg.gateway.site
    async with Collector(port, f"rollups/{site}/#") as sub, running_gateway(cfg):
        t = time.time()
        for p in pumps:
            await publish(port, f"plant/pumps/{p}/telemetry", [pump(3.0, t)])
        await sub.wait(lambda s: {d["asset"] for d in s.json("rollups/") if d["signals"]["vibration"]["count"]} == set(pumps))
        await sub.wait(lambda s: len(s.json("rollups/")) >= 2 * len(pumps), timeout=5)
    got = sub.json("rollups/")
    seqs = [d["seq"] for d in got]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    first_end = got[0]["end"]
    assert {d["asset"] for d in got if d["end"] == first_end} == set(pumps)


class _BrokenSink:
    """A sink with a bug: every alert and rollup raises."""

    name = "broken"
    connected = True

    def alert(self, alert: Any) -> None:
        raise RuntimeError("sink bug")

    def rollup(self, rollup: Any) -> None:
        raise RuntimeError("sink bug")

    async def close(self, timeout: float) -> None:
        raise RuntimeError("sink bug")


class _RecordingSink(_BrokenSink):
    name = "recording"

    def __init__(self) -> None:
        self.alerts: list[Any] = []
        self.rollups: list[Any] = []

    def alert(self, alert: Any) -> None:
        self.alerts.append(alert)

    def rollup(self, rollup: Any) -> None:
        self.rollups.append(rollup)

    async def close(self, timeout: float) -> None:
        return None


async def test_a_sink_that_raises_costs_the_other_sinks_nothing(mosquitto: Broker) -> None:
    """The broken sink is called first: the local broker and a second sink still get every alert and
    rollup, the failure is counted per sink, and the source that found the alarm sees no error."""
    port = mosquitto.port
    cfg = example_config(port, "profiles.pump.signals.vibration.on_delay_s=0", "rollups.interval_s=1")
    rec = _RecordingSink()
    async with Collector(port, f"alerts/{cfg.gateway.site}/#") as sub, running_gateway(cfg) as gw:
        gw.sinks.insert(0, _BrokenSink())  # type: ignore[arg-type]
        gw.sinks.append(rec)  # type: ignore[arg-type]
        t = time.time()
        await publish(port, "plant/pumps/pump-1/telemetry", [pump(12.5, t + i * 0.1) for i in range(5)])
        await sub.wait(lambda s: s.alerts(asset="pump-1", state="raised"))
        await publish(port, "plant/pumps/pump-1/telemetry", [pump(3.0, t + 1 + i * 0.1) for i in range(60)])
        await sub.wait(lambda s: s.alerts(asset="pump-1", state="cleared"))
        for _ in range(100):
            if rec.rollups:
                break
            await asyncio.sleep(0.05)
        raised = [a.seq for a in rec.alerts if a.asset == "pump-1"]
        assert len(raised) == 2 and raised == sorted(raised)
        assert {d["seq"] for d in sub.alerts(asset="pump-1")} == set(raised)  # the same stamped alerts
        assert rec.rollups
        assert gw.sink_errors["broken"] >= 2 + len(rec.rollups)
        assert "decoder_error" not in gw.engine.rejected, gw.engine.rejected
    assert gw.sink_errors["broken"] > len(raised) + len(rec.rollups)  # its close raised too: the stop went on


async def test_seq_survives_a_restart_without_upstream(mosquitto: Broker, tmp_path: Path) -> None:
    port = mosquitto.port
    cfg = example_config(port, "profiles.pump.signals.vibration.on_delay_s=0", f"gateway.state_dir={tmp_path}")
    seqs = []
    for run in range(2):
        async with Collector(port, f"alerts/{cfg.gateway.site}/#") as sub, running_gateway(cfg):
            t = time.time()
            await publish(port, "plant/pumps/pump-2/telemetry", [pump(12.5 if run == 0 else 3.0, t + i * 0.1) for i in range(60)])
            state = "raised" if run == 0 else "cleared"
            seqs.append((await sub.wait(lambda s, st=state: s.alerts(asset="pump-2", state=st)))[0]["seq"])  # type: ignore[misc]
    assert seqs[1] > seqs[0]  # the second start went on from the first one's last number
    assert (tmp_path / f"{cfg.gateway.id}.seq").read_text().strip() == str(seqs[1])
