"""The simulator's live peers, each read by a client it did not write: MQTT (mosquitto + aiomqtt),
OPC UA (asyncua client), CoAP (libcoap's coap-client and an aiocoap observer)."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import aiomqtt
import pytest

from edgegw.sim.clock import LiveClock
from edgegw.sim.fleet import REPORTED, Fleet
from edgegw.sim.history import write_history
from tests.helpers import Collector
from tests.peers import free_port


async def _run_for(clock: LiveClock, seconds: float) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(clock.run(stop))
    await asyncio.sleep(seconds)
    stop.set()
    await task


async def test_mqtt_telemetry_matches_the_example_config(mosquitto) -> None:
    from edgegw.sim.mqtt_out import MqttPublisher

    fleet = Fleet(["simq-1", "simq-2"], seed=1, rate_hz=5)
    pub = MqttPublisher("127.0.0.1", mosquitto.port)
    got: list[tuple[str, dict]] = []
    async with aiomqtt.Client("127.0.0.1", mosquitto.port) as sub:
        await sub.subscribe("plant/pumps/+/telemetry")
        pub_task = asyncio.create_task(pub.run())
        await asyncio.wait_for(pub.connected.wait(), 10)
        clock = LiveClock(fleet, [pub.update], duration_s=2.0)
        await clock.run()
        await pub.drain()

        async def read() -> None:
            async for m in sub.messages:
                got.append((str(m.topic), json.loads(m.payload)))
                if len(got) == 20:
                    return

        await asyncio.wait_for(read(), 10)
        pub_task.cancel()
    assert pub.dropped == 0
    topics = {t for t, _ in got}
    assert topics == {"plant/pumps/simq-1/telemetry", "plant/pumps/simq-2/telemetry"}
    for _, d in got:
        assert set(d) == {"ts", *REPORTED}
        assert abs(d["ts"] - clock.start_ts) < 5
        assert 0 < d["vibration"] < 7.1 and d["pressure"] > 2 and d["current"] < 45


async def test_opcua_address_space_with_engineering_units() -> None:
    from asyncua import Client, ua

    from edgegw.sim.opcua_server import OpcuaPumpServer

    port = free_port()
    srv = OpcuaPumpServer(["pump-7"], port)
    await srv.start()
    try:
        clock = LiveClock(Fleet(["pump-7"], seed=1, rate_hz=10), [srv.update])
        stop = asyncio.Event()
        task = asyncio.create_task(clock.run(stop))
        await asyncio.sleep(0.5)
        async with Client(srv.endpoint) as c:
            by_path = await c.nodes.objects.get_child(["2:Pumps", "2:pump-7", "2:vibration"])
            assert by_path.nodeid == ua.NodeId("pump-7.vibration", 2)
            dv = await c.get_node("ns=2;s=pump-7.current").read_data_value()
            assert 20 < dv.Value.Value < 45
            assert abs(dv.SourceTimestamp.timestamp() - clock.start_ts) < 10
            eu = await (await by_path.get_child("0:EngineeringUnits")).read_value()
            assert eu.DisplayName.Text == "mm/s"
            rng = await (await by_path.get_child("0:EURange")).read_value()
            assert rng.Low == 0 and rng.High > 7.1
            pump = await c.nodes.objects.get_child(["2:Pumps", "2:pump-7"])
            names = {(await n.read_browse_name()).Name for n in await pump.get_children()}
            assert names == set(REPORTED)
        stop.set()
        await task
    finally:
        await srv.stop()


def _udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_coap_senml_resources_observable() -> None:
    import aiocoap

    from edgegw.sim.coap_server import CoapPumpServer

    port = _udp_port()
    srv = CoapPumpServer(["pump-9"], port)
    await srv.start()
    stop = asyncio.Event()
    clock = LiveClock(Fleet(["pump-9"], seed=1, rate_hz=10), [srv.update])
    task = asyncio.create_task(clock.run(stop))
    ctx = await aiocoap.Context.create_client_context()
    try:
        await asyncio.sleep(0.3)
        client = shutil.which("coap-client-notls") or shutil.which("coap-client")
        if client:  # libcoap, a CoAP client edgegw did not write
            r = await asyncio.to_thread(
                subprocess.run, [client, "-B", "5", "-m", "get", srv.uri("pump-9")], capture_output=True, timeout=20
            )
            pack = json.loads(r.stdout)
            assert pack[0]["bn"] == "pump-9/" and pack[0]["n"] == "vibration" and pack[0]["u"] == "mm/s"
            assert {rec["n"] for rec in pack} == set(REPORTED)
        req = aiocoap.Message(code=aiocoap.GET, uri=srv.uri("pump-9"), observe=0)
        obs = ctx.request(req)
        first = await asyncio.wait_for(obs.response, 10)
        assert first.opt.content_format == 110
        seen = [json.loads(first.payload)[0]["bt"]]
        async for m in obs.observation:
            seen.append(json.loads(m.payload)[0]["bt"])
            if len(seen) == 4:
                break
        assert seen == sorted(seen) and len(set(seen)) == 4  # every notification a newer sample
        obs.observation.cancel()
        cb = await asyncio.wait_for(
            ctx.request(aiocoap.Message(code=aiocoap.GET, uri=srv.uri("pump-9"), accept=112)).response, 10
        )
        import cbor2

        assert cb.opt.content_format == 112 and cbor2.loads(cb.payload)[0]["bn"] == "pump-9/"
    finally:
        stop.set()
        await task
        await ctx.shutdown()
        await srv.stop()


def test_history_csv_reads_back_as_training_data(tmp_path: Path) -> None:
    from edgegw.ml.datasets import read_history
    from edgegw.sim.faults import make_fault

    f = tmp_path / "h.csv"
    fleet = Fleet(
        ["p1", "p2"],
        [make_fault("p1", "dropout", 10, duration_s=5, signal="flow"), make_fault("p2", "motor_overload", 20, 10)],
        seed=3,
        rate_hz=2,
    )
    rows = write_history(f, fleet, 60, start_ts=1767225600.0)
    assert rows == 240
    lines = f.read_text().splitlines()
    assert lines[0] == "timestamp,asset,vibration,pressure,temperature,flow,current,suction_pressure,motor_temperature,label"
    assert lines[1].startswith("2026-01-01T00:00:00.000Z,p1,")
    h = read_history([f])
    assert h.assets == ["p1", "p2"] and len(h) == 240
    assert set(h.labels or []) == {"0", "dropout", "motor_overload"}
    assert abs(h.rate_hz() - 2.0) < 0.01


@pytest.mark.parametrize("argv", [["--csv", "{tmp}/x.csv", "--duration", "30", "--fault", "pump-1:cavitation@5"]])
def test_simulate_command_writes_history(tmp_path: Path, argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    from edgegw.cli import main

    args = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(["simulate", *args]) == 0
    assert "wrote 240 rows" in capsys.readouterr().out
    text = (tmp_path / "x.csv").read_text()
    assert text.count("\n") == 1 + 4 * 60 and "cavitation" in text
    assert main(["simulate", "--fault", "pump-1:melting@5", "--csv", str(tmp_path / "y.csv")]) == 2


async def test_simulate_command_publishes_over_mqtt(mosquitto) -> None:
    async with Collector(mosquitto.port, "simcli/+/telemetry") as sub:  # subscribed before the simulator starts
        sim = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "edgegw",
            "simulate",
            "--broker",
            f"127.0.0.1:{mosquitto.port}",
            "--topic",
            "simcli/{asset}/telemetry",
            "--assets",
            "cli-a,cli-b",
            "--duration",
            "3",
            "--rate",
            "2",
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(sim.communicate(), 60)
        await sub.wait(lambda s: len(s.messages) >= 6, 30)
    lines = [f"{t} {p.decode()}" for t, p, _ in sub.messages[:6]]  # as `mosquitto_sub -v -C 6` prints them
    assert sim.returncode == 0, err.decode()
    assert "12 messages sent, 0 dropped" in out.decode()
    assert len(lines) == 6 and {ln.split()[0] for ln in lines} == {"simcli/cli-a/telemetry", "simcli/cli-b/telemetry"}
    assert set(json.loads(lines[0].split(" ", 1)[1])) == {"ts", *REPORTED}
