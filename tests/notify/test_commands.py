"""Acknowledge and shelve over MQTT on the local broker, malformed commands included, and the journal."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiomqtt

from edgegw.notify.journal import parse_since, read
from tests.helpers import Collector, publish, pump, running_gateway
from tests.notify.peers import Hook, notify_config
from tests.peers import until


async def command(port: int, topic: str, payload: bytes | str) -> None:
    async with aiomqtt.Client("127.0.0.1", port) as c:
        await c.publish(topic, payload, qos=1)


def replies(col: Collector) -> list[dict[str, Any]]:
    return [d for d in col.json("cmd/") if d["_topic"].endswith("/response")]


async def test_ack_shelve_and_malformed_commands(mosquitto, tmp_path: Path) -> None:
    hook = Hook()
    section = {
        "state_dir": str(tmp_path / "state"),
        "journal": {"flush_s": 0.2},
        "targets": [{"type": "webhook", "url": hook.url}],
    }
    cfg = notify_config(tmp_path, mosquitto.port, section)
    gw_id, site = cfg.gateway.id, cfg.gateway.site
    base = f"cmd/{gw_id}/alarms"
    port = mosquitto.port
    try:
        async with Collector(port, f"alerts/{site}/#", f"{base}/#") as col, running_gateway(cfg) as gw:
            t = time.time()
            await publish(port, "plant/pumps/pump-1/telemetry", [pump(8.0, ts=t)])
            await until(lambda: hook.accepted(), what="pump-1's raise notified")

            bad = [
                ("ack", b"not json"),
                ("ack", b'{"asset": "pump-1", "kind": "threshold", "source": "vibration"}'),
                ("ack", b'{"asset": "pump-9", "kind": "threshold", "source": "vibration", "by": "ann"}'),
                ("ack", b'{"asset": "pump-2", "kind": "threshold", "source": "vibration", "by": "ann"}'),
                ("reboot", b'{"asset": "pump-1"}'),
                ("shelve", b'{"asset": "pump-2", "kind": "threshold", "source": "vibration", "by": "ann"}'),
                ("shelve", b'{"asset": "pump-2", "kind": "threshold", "source": "speed", "by": "ann", "duration_s": 5}'),
                ("ack", f'{{"asset": "{gw_id}", "kind": "threshold", "source": "x", "by": "ann"}}'.encode()),
            ]
            for name, payload in bad:
                await command(port, f"{base}/{name}", payload)
            got = await col.wait(lambda c: len(replies(c)) >= len(bad) and replies(c))
            reasons = [(r["command"], r["ok"], r["reason"]) for r in got]
            assert all(not ok for _, ok, _ in reasons), reasons
            assert "not JSON" in reasons[0][2] and "by: Field required" in reasons[1][2]
            assert "unknown asset 'pump-9'" in reasons[2][2] and "no active alarm" in reasons[3][2]
            assert "unknown command 'reboot'" in reasons[4][2] and "needs duration_s" in reasons[5][2]
            assert "has no signal 'speed'" in reasons[6][2] and "no active alarm" in reasons[7][2]
            assert not [d for d in col.alerts(asset="pump-1") if "acked_by" in d]  # nothing changed

            ack = {
                "asset": "pump-1",
                "kind": "threshold",
                "source": "vibration",
                "by": "ann",
                "note": "on it",
                "request_id": "r1",
            }
            await command(port, f"{base}/ack", json.dumps(ack))
            acked = await col.wait(lambda c: [d for d in c.alerts(asset="pump-1") if "acked_by" in d])
            assert acked[0]["acked_by"] == "ann" and acked[0]["acked_at"] and acked[0]["state"] == "raised"
            assert acked[0]["_topic"].endswith("/pump-1/threshold/vibration")
            ok = await col.wait(lambda c: [r for r in replies(c) if r.get("request_id") == "r1"])
            assert ok[0]["ok"] and ok[0]["reason"] == "acknowledged"
            assert len(hook.accepted()) == 1  # an ack is not a notification

            shelve = {"asset": "pump-2", "kind": "threshold", "source": "vibration", "by": "bob", "duration_s": 1.5}
            await command(port, f"{base}/shelve", json.dumps(shelve))
            await col.wait(lambda c: [r for r in replies(c) if r["command"] == "shelve" and r["ok"]])
            await publish(port, "plant/pumps/pump-2/telemetry", [pump(8.0, ts=t + 1)])
            await col.wait(lambda c: c.alerts(asset="pump-2", state="raised"))
            assert [d["asset"] for d in hook.accepted()] == ["pump-1"]  # shelved: nothing sent
            # the shelf ends with the alarm still active: it is announced then
            await until(lambda: len(hook.accepted()) >= 2, what="pump-2 announced when its shelf ended")
            assert hook.accepted()[1]["asset"] == "pump-2"
            await until(lambda: gw.notifier.journal.stats()["written"] >= 5, what="the journal written")
    finally:
        hook.close()
    entries = read(tmp_path / "state" / "alarms.db", parse_since("1h"))
    events = [(e["event"], e["asset"], e["by"]) for e in entries]
    for want in [
        ("raised", "pump-1", ""),
        ("acked", "pump-1", "ann"),
        ("shelved", "pump-2", "bob"),
        ("raised", "pump-2", ""),
        ("shelf_expired", "pump-2", ""),
    ]:
        assert want in events, events
    r = subprocess.run(
        [sys.executable, "-m", "edgegw", "alarms", "--journal", str(tmp_path / "state" / "alarms.db"), "--since", "24h", "--csv"],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = r.stdout.splitlines()
    assert lines[0].startswith("ts,event,asset,kind,source,severity,by,note")
    assert any(",acked,pump-1,threshold,vibration,warning,ann,on it," in line for line in lines), lines
    r = subprocess.run(
        [sys.executable, "-m", "edgegw", "alarms", "--journal", str(tmp_path / "state" / "alarms.db")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "shelved" in r.stdout and "entries" in r.stdout.splitlines()[-1]


async def test_acked_alarm_can_be_acked_again_only_once(mosquitto, tmp_path: Path) -> None:
    section = {"state_dir": str(tmp_path / "state"), "targets": []}
    cfg = notify_config(tmp_path, mosquitto.port, section)
    base = f"cmd/{cfg.gateway.id}/alarms"
    async with Collector(mosquitto.port, f"alerts/{cfg.gateway.site}/#", f"{base}/#") as col, running_gateway(cfg):
        await publish(mosquitto.port, "plant/pumps/pump-3/telemetry", [pump(8.0)])
        await col.wait(lambda c: c.alerts(asset="pump-3", state="raised"))
        ack = json.dumps({"asset": "pump-3", "kind": "threshold", "source": "vibration", "by": "ann"})
        await command(mosquitto.port, f"{base}/ack", ack)
        await command(mosquitto.port, f"{base}/ack", ack)
        got = await col.wait(lambda c: len(replies(c)) >= 2 and replies(c))
        await asyncio.sleep(0.2)
    assert [r["reason"] for r in got] == ["acknowledged", "already acknowledged by ann"]
    assert len([d for d in col.alerts(asset="pump-3") if "acked_by" in d]) == 1
