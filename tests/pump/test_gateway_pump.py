"""The running gateway through a real mosquitto: a rollup of a pump carries its `pump` object, and
its energy total is saved in the state directory at stop and goes on after a restart."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from tests.helpers import Collector, example_config, publish, pump, running_gateway
from tests.peers import Broker


async def test_rollups_carry_pump_figures_and_energy_survives_a_restart(mosquitto: Broker, tmp_path: Path) -> None:
    port = mosquitto.port
    cfg = example_config(port, f"gateway.state_dir={tmp_path}", "rollups.interval_s=1")
    gid = cfg.gateway.id
    topic = f"rollups/{cfg.gateway.site}/pump-1"

    def figures(s: Collector) -> list[dict]:
        return [d["pump"] for d in s.json(topic) if (d.get("pump") or {}).get("electrical_kw")]

    async with Collector(port, topic) as sub:
        async with running_gateway(cfg):
            t = time.time()
            for k in range(4):  # a second of readings at a time, as a live pump sends them: a hop each
                await publish(port, "plant/pumps/pump-1/telemetry", [pump(3.0, t - 4 + k + i * 0.25) for i in range(4)])
                await asyncio.sleep(0.3)
            got = (await sub.wait(figures, timeout=10))[-1]
        # 30 A at 230 V and cos phi 0.83: 9.92 kW; 3.8 bar at 60 m3/h: 6.33 kW to the water
        assert abs(got["electrical_kw"] - 9.9193) < 0.01 and abs(got["hydraulic_kw"] - 6.3333) < 0.01
        saved = json.loads((tmp_path / f"{gid}.pump-totals.json").read_text())["assets"]["pump-1"]
        assert saved["energy_kwh"] > 0 and saved["starts"] == 1
        n = len(sub.json(topic))
        async with running_gateway(cfg):
            t = time.time()
            for k in range(2):
                await publish(port, "plant/pumps/pump-1/telemetry", [pump(3.0, t - 2 + k + i * 0.25) for i in range(4)])
                await asyncio.sleep(0.3)
            later = await sub.wait(lambda s: [d for d in s.json(topic)[n:] if d.get("pump")], timeout=10)
        assert later[-1]["pump"]["energy_kwh"] >= saved["energy_kwh"]
