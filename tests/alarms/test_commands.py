"""Alarm commands without a notify section, against mosquitto: `edgegw watch` acknowledges (its `a`
key), the ack is re-published retained with acked_by, a shelve says why it is refused, and the
AlarmEvents reach the sinks through the gateway."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

import aiomqtt

from edgegw.records import AlarmEvent
from edgegw.watch import watch
from tests.alarms.conftest import leaves
from tests.helpers import Collector, example_config, publish, pump, running_gateway
from tests.peers import until


async def test_ack_and_watch_work_without_notify(mosquitto: Any) -> None:
    cfg = example_config(mosquitto.port, "profiles.pump.signals.vibration.on_delay_s=0")
    assert cfg.notify is None
    site, base = cfg.gateway.site, f"cmd/{cfg.gateway.id}/alarms"
    leaves(mosquitto.port, site)
    async with Collector(mosquitto.port, f"alerts/{site}/#", f"{base}/response") as col, running_gateway(cfg) as gw:
        events: list[AlarmEvent] = []
        gw.local.event = events.append  # type: ignore[method-assign]
        await publish(mosquitto.port, "plant/pumps/pump-1/telemetry", [pump(12.5)])
        keys: asyncio.Queue[str] = asyncio.Queue()
        out, stop = io.StringIO(), asyncio.Event()
        board = asyncio.create_task(
            watch(
                "127.0.0.1",
                mosquitto.port,
                [f"alerts/{site}/#"],
                out,
                tty=True,
                colour_on=False,
                stop=stop,
                keys=keys,
                user="ann",
            )
        )
        await until(lambda: "1 active" in out.getvalue(), what="the alarm on the board")
        keys.put_nowait("a")
        await until(lambda: "[acked by ann]" in out.getvalue(), what="the acknowledged alarm on the board")
        stop.set()
        await asyncio.wait_for(board, 5)
        acked = [d for d in col.alerts(asset="pump-1") if d.get("acked_by") == "ann"]
        assert acked and acked[0]["state"] == "raised"

    assert [(e.event, e.key, e.by) for e in events] == [("acked", ("pump-1", "threshold", "vibration"), "ann")]


async def command(port: int, base: str, name: str, payload: dict[str, Any]) -> None:
    async with aiomqtt.Client("127.0.0.1", port) as c:
        await c.publish(f"{base}/{name}", json.dumps(payload), qos=1)


async def test_shelves_without_notify_travel_as_marks_and_survive_a_restart(mosquitto: Any, tmp_path: Path) -> None:
    cfg = example_config(mosquitto.port, "profiles.pump.signals.vibration.on_delay_s=0", f"gateway.state_dir={tmp_path}")
    site, base = cfg.gateway.site, f"cmd/{cfg.gateway.id}/alarms"
    leaves(mosquitto.port, site)
    key = {"asset": "pump-2", "kind": "threshold", "source": "vibration"}
    async with Collector(mosquitto.port, f"alerts/{site}/#", f"{base}/response") as col:
        async with running_gateway(cfg):
            await command(mosquitto.port, base, "shelve", {**key, "by": "bob", "note": "bearing swap", "duration_s": 600})
            got = await col.wait(lambda c: [d for d in c.json(base) if d["command"] == "shelve"])
            assert got[0]["ok"] and got[0]["reason"].startswith("shelved until")
        async with running_gateway(cfg):  # the shelf outlives the restart
            await publish(mosquitto.port, "plant/pumps/pump-2/telemetry", [pump(12.5)])
            raised = await col.wait(lambda c: c.alerts(asset="pump-2", state="raised"))
            assert raised[0]["shelved_by"] == "bob" and raised[0]["shelved_until"]
            await command(mosquitto.port, base, "unshelve", {**key, "by": "bob"})
            again = await col.wait(lambda c: [d for d in c.alerts(asset="pump-2", state="raised") if d.get("unshelved")])
    assert "shelved_until" not in again[0] and again[0]["_topic"] == raised[0]["_topic"]
