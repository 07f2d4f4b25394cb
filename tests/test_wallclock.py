"""A step of the wall clock (NTP on a Pi without a real-time clock) does not blind the gateway: the
real daemon under libfaketime, its wall clock stepped back an hour and then forward four, its
monotonic clock untouched; devices keep stamping readings with their own, true time."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.daemon import Daemon
from tests.helpers import EXAMPLE, Collector, publish, pump
from tests.peers import Broker, until


def _faketime() -> str | None:
    if shutil.which("dpkg") is None:
        return None
    r = subprocess.run(["dpkg", "-L", "libfaketime"], capture_output=True, text=True)
    return next((p for p in r.stdout.split() if p.endswith("libfaketimeMT.so.1")), None)


LIB = _faketime()


@pytest.mark.skipif(LIB is None, reason="libfaketime is not installed (apt install faketime)")
async def test_alarms_keep_working_through_wall_clock_steps_back_and_forward(tmp_path: Path, mosquitto: Broker) -> None:
    gw = f"gw-clock-{os.getpid()}"
    text = EXAMPLE.read_text().replace("model: models/pump", "model: null").replace("port: 1883", f"port: {mosquitto.port}")
    text = text.replace("id: gw-pumphouse-1", f"id: {gw}").replace("site: plant-a", f"site: {gw}")
    text = text.replace("stale_after_s: 10", "stale_after_s: 3")
    text = text.replace("hi: 7.1, hihi: 11.0, deadband: 0.3, on_delay_s: 2, off_delay_s: 5", "hi: 20, deadband: 0.3")
    cfg = tmp_path / "gw.yaml"
    cfg.write_text(text + "ingest: {max_age_s: 3600}\n")
    clock = tmp_path / "faketime"
    clock.write_text("+0\n")
    env = {
        "LD_PRELOAD": str(LIB),
        "FAKETIME_TIMESTAMP_FILE": str(clock),
        "FAKETIME_NO_CACHE": "1",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }
    topic = "plant/pumps/pump-1/telemetry"
    feeding = True

    async def feed() -> None:  # pump-1 reports every 0.2 s, stamped by its own (true) clock
        while True:
            if feeding:
                await publish(mosquitto.port, topic, [pump(3.0)])
            await asyncio.sleep(0.2)

    async with Collector(mosquitto.port, f"alerts/{gw}/pump-1/#") as col:
        with Daemon(cfg, log=tmp_path / "gw.log", env=env) as d:
            d.wait_logged("gateway running")
            feeder = asyncio.create_task(feed())
            try:

                def alarms(kind: str, state: str) -> list[dict]:
                    return col.alerts(asset="pump-1", kind=kind, source="vibration", state=state)

                # one hour back: device times are an hour ahead of the gateway's clock
                clock.write_text("-3600\n")
                step = await until(
                    lambda: d.logged("wall clock stepped; stale timers, signal clocks and windows re-anchored"), 10
                )
                assert round(step[0]["step_s"] / 60) == -60
                await publish(mosquitto.port, topic, [pump(25.0)])
                assert (await until(lambda: alarms("threshold", "raised"), 10, "threshold after the step back"))[0]["limit"] == 20
                await publish(mosquitto.port, topic, [pump(3.0)])
                await until(lambda: alarms("threshold", "cleared"), 10, "clear after the step back")
                feeding = False  # pump-1 goes silent: stale within stale_after_s, on the stepped clock
                await until(lambda: alarms("stale", "raised"), 10, "stale after the step back")

                # four hours forward: device times are now three hours behind, beyond ingest.max_age_s
                clock.write_text("+10800\n")
                await until(lambda: d.logged("wall clock stepped; stale timers, signal clocks and windows re-anchored")[1:], 10)
                feeding = True
                await until(lambda: alarms("stale", "cleared"), 10, "fresh readings after the step forward")
                await publish(mosquitto.port, topic, [pump(25.0)])
                await until(lambda: alarms("threshold", "raised")[1:], 10, "threshold after the step forward")
                steps = d.logged("wall clock stepped; stale timers, signal clocks and windows re-anchored")
                assert [round(s["step_s"] / 3600) for s in steps] == [-1, 4]
                assert not [x for x in d.lines() if x.get("reason") in ("too_old", "bad_timestamp", "out_of_order")]
            finally:
                feeder.cancel()
