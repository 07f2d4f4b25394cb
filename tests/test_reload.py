"""SIGHUP reloads the whole config file in the running daemon: a changed limit is in force at once,
a broken file keeps the running config and raises `config_rejected`, a key that needs a restart is
named. A real daemon, a real broker, a real signal."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.daemon import Daemon
from tests.helpers import EXAMPLE, Collector, publish, pump
from tests.peers import Broker, until


def write(f: Path, port: int, gw: str, vibration: str) -> None:
    text = EXAMPLE.read_text().replace("model: models/pump", "model: null").replace("port: 1883", f"port: {port}")
    text = text.replace("id: gw-pumphouse-1", f"id: {gw}").replace("site: plant-a", f"site: {gw}")
    text = text.replace("stale_after_s: 10", "stale_after_s: 600")
    head, _, tail = text.partition("      vibration:   {")
    f.write_text(head + f"      vibration:   {{{vibration}}}\n" + tail.partition("\n")[2])


async def test_sighup_applies_a_new_limit_rejects_a_broken_file_and_names_restart_keys(tmp_path: Path, mosquitto: Broker) -> None:
    gw = f"gw-reload-{os.getpid()}"
    cfg = tmp_path / "gw.yaml"
    write(cfg, mosquitto.port, gw, "unit: mm/s, hi: 20, deadband: 0.3")
    topic = "plant/pumps/pump-1/telemetry"
    async with Collector(mosquitto.port, f"alerts/{gw}/#") as col:
        with Daemon(cfg, log=tmp_path / "gw.log") as d:
            d.wait_logged("gateway running")

            def threshold(state: str) -> list[dict]:
                return col.alerts(asset="pump-1", kind="threshold", state=state)

            await publish(mosquitto.port, topic, [pump(25.0)])
            assert (await until(lambda: threshold("raised"), 10, "raise at 20"))[0]["limit"] == 20
            await publish(mosquitto.port, topic, [pump(8.0)])
            await until(lambda: threshold("cleared"), 10, "clear under 20")

            write(cfg, mosquitto.port, gw, "unit: mm/s, hi: 5, deadband: 0.3")
            d.signal(signal.SIGHUP)
            applied = await until(lambda: d.logged("configuration reloaded"), 10, "reload")
            assert "profiles.pump.signals.vibration.hi" in applied[0]["applied"]
            await publish(mosquitto.port, topic, [pump(8.0)])
            raised = await until(lambda: threshold("raised")[1:], 10, "raise at the new limit 5")
            assert raised[0]["limit"] == 5

            good = cfg.read_text()
            cfg.write_text(good.replace("window_s: 30", "window_s: thirty").replace("stale_after_s:", "stale_afer_s:"))
            d.signal(signal.SIGHUP)
            rejected = await until(lambda: col.alerts(asset=gw, kind="config_rejected", state="raised"), 10, "config_rejected")
            assert "2 problems" in rejected[0]["message"]
            problems = [p["problem"] for p in d.logged("config problem")]
            assert any("profiles.pump.window_s" in p for p in problems) and any("stale_afer_s" in p for p in problems)
            await publish(mosquitto.port, topic, [pump(3.0)])  # still the running config: 3 clears under 5
            cleared = await until(lambda: threshold("cleared")[1:], 10, "clear under 5")
            assert cleared[0]["limit"] == 5

            cfg.write_text(good.replace(f"id: {gw}", "id: gw-renamed"))
            d.signal(signal.SIGHUP)
            await until(lambda: col.alerts(asset=gw, kind="config_rejected", state="cleared"), 10, "config_rejected cleared")
            restart = await until(lambda: d.logged("changed keys need a restart; they keep their running values"), 10)
            assert restart[0]["keys"] == ["gateway.id"]
            assert d.proc.poll() is None
            # three reloads, and the connections the changes did not touch were never dropped
            assert len(d.logged("mqtt-0 connected")) == 1 and len(d.logged("local broker connected")) == 1
