"""Orphans at start and `edgegw alarms clear`, against mosquitto: an asset removed from the config
leaves no retained alarm behind; the kept asset's alarm stays; a clear by key works on the running
gateway (found through its state directory), is refused while the signal still reports, and both
are journaled with who did it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

from edgegw.config import GatewayConfig
from edgegw.notify.journal import parse_since, read
from tests.helpers import Collector, publish, pump, running_gateway
from tests.notify.peers import notify_config
from tests.peers import until


async def cli(cfg: GatewayConfig, tmp_path: Path, key: str) -> tuple[int, str]:
    p = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "edgegw",
        "alarms",
        "clear",
        key,
        "-c",
        str(tmp_path / "gw.yaml"),
        "--set",
        f"gateway.id={cfg.gateway.id}",
        "--set",
        f"gateway.state_dir={cfg.gateway.state_dir}",
        "--note",
        "sensor replaced",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await p.communicate()
    return p.returncode or 0, out.decode()


async def retained(port: int, site: str) -> dict[str, dict[str, Any]]:
    """What a fresh subscriber gets: the retained alarms, by topic."""
    async with Collector(port, f"alerts/{site}/#") as c:
        await asyncio.sleep(0.5)
    return {d["_topic"]: d for d in c.json() if d["_retained"]}


async def test_orphans_cleared_at_start_and_clear_by_key(mosquitto: Any, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    section = {"state_dir": str(state), "journal": {"flush_s": 0.2}, "targets": []}
    cfg = notify_config(tmp_path, mosquitto.port, section, f"gateway.state_dir={state}")
    port, site = mosquitto.port, cfg.gateway.site
    async with Collector(port, f"alerts/{site}/#") as col:
        async with running_gateway(cfg):
            for a in ("pump-1", "pump-2"):
                await publish(port, f"plant/pumps/{a}/telemetry", [pump(12.5)])
            await col.wait(lambda c: {d["asset"] for d in c.alerts(state="raised")} >= {"pump-1", "pump-2"})
        fewer = cfg.model_copy(update={"assets": [a for a in cfg.assets if a.id != "pump-2"]})
        async with running_gateway(fewer):
            gone = await col.wait(lambda c: c.alerts(asset="pump-2", state="cleared"))
            assert gone[0]["message"] == "cleared: asset removed from the configuration"
            left = await retained(port, site)
            assert [t for t in left if "/pump-2/" in t] == []
            assert f"alerts/{site}/pump-1/threshold/vibration" in left  # the kept asset's alarm stays

            await publish(port, "plant/pumps/pump-3/telemetry", [pump(12.5)])
            await col.wait(lambda c: c.alerts(asset="pump-3", state="raised"))
            rc, out = await cli(fewer, tmp_path, "pump-3/threshold/vibration")
            assert rc == 1 and "refused" in out and "pump-3 vibration is reporting" in out, out

            rc, out = await cli(fewer, tmp_path, "pump-1/threshold/vibration")
            assert rc == 0, out
            cleared = await col.wait(lambda c: c.alerts(asset="pump-1", state="cleared"))
            assert cleared[0]["cleared_by"].startswith("cli") and cleared[0]["clear_note"] == "sensor replaced"
            assert f"alerts/{site}/pump-1/threshold/vibration" not in await retained(port, site)

            await until(lambda: any(e["event"] == "cleared" for e in read(state / "alarms.db", parse_since("1h"))))
    listing = subprocess.run(
        [sys.executable, "-m", "edgegw", "alarms", "-c", str(tmp_path / "gw.yaml"), "--set", f"gateway.state_dir={state}"],
        capture_output=True,
        text=True,
    )
    assert "orphan_cleared" in listing.stdout and "cli:" in listing.stdout, listing.stdout + listing.stderr
    events = {(e["event"], e["asset"], e["by"][:3]): e for e in read(state / "alarms.db", parse_since("1h"))}
    assert events[("orphan_cleared", "pump-2", "gat")]["note"] == "asset removed from the configuration"
    assert events[("cleared", "pump-1", "cli")]["note"] == "sensor replaced"  # who cleared it, and why


async def test_clear_without_a_running_gateway_says_so(tmp_path: Path) -> None:
    (tmp_path / "gw.yaml").write_text((Path(__file__).parents[2] / "config" / "example.yaml").read_text())
    p = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "edgegw",
        "alarms",
        "clear",
        "pump-1/threshold",
        "-c",
        str(tmp_path / "gw.yaml"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await p.communicate()
    assert p.returncode == 2 and b"expected ASSET/KIND/SOURCE" in out
