"""The gateway's OPC UA and CoAP sources against the simulator's servers: the same pump values
arrive through both protocols, and an injected overload raises the current alarm."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiomqtt

from edgegw.config import load_config
from edgegw.sim.clock import LiveClock
from edgegw.sim.coap_server import CoapPumpServer
from edgegw.sim.faults import make_fault
from edgegw.sim.fleet import Fleet
from edgegw.sim.opcua_server import OpcuaPumpServer
from tests.helpers import running_gateway
from tests.peers import free_port

SIGNALS = ("vibration", "pressure", "temperature", "flow", "current")


def _udp_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_gateway_reads_the_simulator_over_opcua_and_coap(mosquitto, tmp_path: Path) -> None:
    ua_port, coap_port = free_port(), _udp_port()
    fleet = Fleet(["simua-1", "simcoap-1"], [make_fault("simcoap-1", "motor_overload", 1.0, 2.0)], seed=4, rate_hz=5)
    ua = OpcuaPumpServer(["simua-1"], ua_port)
    coap = CoapPumpServer(["simcoap-1"], coap_port)
    await ua.start()
    await coap.start()
    nodes = "\n".join(f"      - {{node: 'ns=2;s=simua-1.{s}', asset: simua-1, signal: {s}}}" for s in SIGNALS)
    cfg_file = tmp_path / "live.yaml"
    cfg_file.write_text(f"""
gateway: {{id: gw-simlive, site: simlive}}
mqtt: {{host: 127.0.0.1, port: {mosquitto.port}}}
sources:
  - type: opcua
    endpoint: opc.tcp://127.0.0.1:{ua_port}/pumps
    sampling_ms: 100
    publishing_ms: 100
    nodes:
{nodes}
  - type: coap
    mode: observe
    uri: coap://127.0.0.1:{coap_port}/pumps/simcoap-1
    format: senml
profiles:
  pump:
    window_s: 10
    hop_s: 1
    signals:
      vibration: {{unit: mm/s, hi: 7.1}}
      pressure: {{unit: bar, lo: 2.0}}
      temperature: {{unit: degC, hi: 80}}
      flow: {{unit: m3/h, lo: 20}}
      current: {{unit: A, hi: 45, on_delay_s: 1}}
assets:
  - {{id: simua-1, profile: pump}}
  - {{id: simcoap-1, profile: pump}}
""")
    cfg = load_config(cfg_file)
    alerts: list[dict] = []
    stop = asyncio.Event()

    async def collect() -> None:
        async with aiomqtt.Client("127.0.0.1", mosquitto.port) as c:
            await c.subscribe("alerts/simlive/#", qos=1)
            async for m in c.messages:
                if m.payload:
                    alerts.append(json.loads(m.payload))

    collector = asyncio.create_task(collect())
    try:
        async with running_gateway(cfg, str(cfg_file)) as gw:
            clock = LiveClock(fleet, [ua.update, coap.update])
            task = asyncio.create_task(clock.run(stop))
            for _ in range(300):
                counts = {
                    a: {s: st.stats.count for s, st in gw.engine.assets[a].signals.items()} for a in ("simua-1", "simcoap-1")
                }
                raised = any(x["asset"] == "simcoap-1" and x["source"] == "current" for x in alerts)
                if raised and all(c >= 5 for per in counts.values() for c in per.values()):
                    break
                await asyncio.sleep(0.1)
            stop.set()
            await task
        assert all(c >= 5 for per in counts.values() for c in per.values()), counts
        over = [x for x in alerts if x["asset"] == "simcoap-1" and x["kind"] == "threshold" and x["source"] == "current"]
        assert over and over[0]["value"] > 45 and over[0]["state"] == "raised"
        assert not [x for x in alerts if x["asset"] == "simua-1" and x["kind"] == "threshold"]
    finally:
        stop.set()
        collector.cancel()
        await coap.stop()
        await ua.stop()
