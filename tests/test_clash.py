"""Two gateways where there should be one (a cloned SD card): two real daemons on one broker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.daemon import ROOT, Daemon
from tests.helpers import EXAMPLE, Collector
from tests.peers import Broker, until


def config(tmp_path: Path, port: int, gw: str) -> Path:
    text = EXAMPLE.read_text().replace("model: models/pump", "model: null").replace("port: 1883", f"port: {port}")
    text = text.replace("id: gw-pumphouse-1", f"id: {gw}").replace("site: plant-a", f"site: {gw}")
    f = tmp_path / "gw.yaml"
    f.write_text(text.replace("stale_after_s: 10", "stale_after_s: 600"))
    return f


def test_a_second_daemon_on_the_same_state_directory_is_refused(tmp_path: Path, mosquitto: Broker, state_directory: Path) -> None:
    cfg = config(tmp_path, mosquitto.port, f"gw-lock-{os.getpid()}")
    with Daemon(cfg, log=tmp_path / "first.log") as first:
        first.wait_logged("gateway running")
        r = subprocess.run(
            [sys.executable, "-m", "edgegw", "run", "-c", str(cfg)], cwd=ROOT, capture_output=True, text=True, timeout=30
        )
        assert r.returncode == 78, r.stdout + r.stderr
        assert f"{state_directory} is in use by another running gateway (pid {first.proc.pid})" in r.stderr
        assert first.proc.poll() is None


async def test_two_daemons_with_one_gateway_id_are_told_apart_from_a_flaky_broker(tmp_path: Path, mosquitto: Broker) -> None:
    """Each kicks the other off the broker (same client ids): the backoff is not reset by those short
    sessions, the log says why, and the gateway alarm client_id_clash is raised."""
    gw = f"gw-twin-{os.getpid()}"
    cfg = config(tmp_path, mosquitto.port, gw)
    other_state = tmp_path / "twin-state"
    other_state.mkdir()
    async with Collector(mosquitto.port, f"alerts/{gw}/{gw}/client_id_clash/#") as col:
        with Daemon(cfg, log=tmp_path / "a.log") as a:
            a.wait_logged("gateway running")
            with Daemon(cfg, log=tmp_path / "b.log", env={"STATE_DIRECTORY": str(other_state)}) as b:

                def clash_logged() -> list[dict]:
                    return [
                        x
                        for d in (a, b)
                        for x in d.lines()
                        if "likely another client with the same client id" in x.get("event", "")
                    ]

                await until(clash_logged, 30, "a clash in the log")
                raised = await until(lambda: col.alerts(kind="client_id_clash", state="raised"), 30, "client_id_clash alarm")
                assert raised[0]["asset"] == gw and "same client id" in raised[0]["message"]
                attempts = [x["attempt"] for d in (a, b) for x in d.lines() if "retry_in_s" in x]
                assert max(attempts) >= 3  # the backoff grew: short sessions no longer start it over
