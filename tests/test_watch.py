"""`edgegw watch`: the active-alarm board, learned from retained messages on a real broker."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys

import aiomqtt
import orjson

from edgegw.watch import AlarmBoard, host_port, render_table, watch
from tests.peers import until


def alert(asset: str, kind: str, source: str, state: str = "raised", severity: str = "warning", **ev: object) -> dict:
    return {
        "id": "x",
        "seq": 1,
        "ts": "2026-11-23T02:00:00.000Z",
        "gateway": "gw",
        "site": "s",
        "asset": asset,
        "kind": kind,
        "source": source,
        "state": state,
        "severity": severity,
        "message": f"{kind} {source}",
        **ev,
    }


def test_board_follows_raise_escalate_clear_and_delete() -> None:
    b = AlarmBoard()
    t = "alerts/s/p1/threshold/vibration"
    assert b.apply(t, orjson.dumps(alert("p1", "threshold", "vibration"))).action == "raised"
    up = b.apply(t, orjson.dumps(alert("p1", "threshold", "vibration", severity="critical")))
    assert up is not None and up.action == "escalated"
    assert b.apply("alerts/s/p2/stale/flow", orjson.dumps(alert("p2", "stale", "flow"))).action == "raised"
    assert [d["severity"] for d in b.rows()] == ["critical", "warning"]
    assert b.apply(t, orjson.dumps(alert("p1", "threshold", "vibration", state="cleared"))).action == "cleared"
    assert b.apply(t, b"") is None  # the gateway deleting the retained raise after the clear
    assert b.apply("alerts/s/p2/stale/flow", b"").action == "deleted"  # a clear we never saw
    assert b.active == {}
    assert b.apply(t, b"not json") is None and b.apply(t, b"[1]") is None and b.bad == 2
    lines = render_table([alert("p9", "anomaly", "pump", severity="critical")], colour_on=True)
    assert "\x1b[1;31m" in lines[1] and "p9" in lines[1]
    assert render_table([], False)[1] == "(no active alarms)"
    shelved = alert("p3", "stale", "flow", shelved_until="2026-11-23T04:00:00.000Z", shelved_by="bob")
    assert "[shelved by bob until " in render_table([shelved], False)[1]


def test_the_same_alarm_again_is_no_change() -> None:
    """A gateway re-publishes its active alarms after a reconnect, and a re-subscribe gets the
    retained copies again: neither is an escalation. A level change is, or is a change."""
    b = AlarmBoard()
    t = "alerts/s/p1/threshold/vibration"
    hi = orjson.dumps(alert("p1", "threshold", "vibration", level="hi", id="a1"))
    assert b.apply(t, hi).action == "raised"
    assert b.apply(t, hi) is None
    assert b.apply(t, hi, retained=True) is None
    hihi = alert("p1", "threshold", "vibration", severity="critical", level="hihi", id="a2")
    assert b.apply(t, orjson.dumps(hihi)).action == "escalated"
    assert b.apply(t, orjson.dumps(hihi)) is None
    back = b.apply(t, orjson.dumps(alert("p1", "threshold", "vibration", level="hi", id="a3")))
    assert back is not None and back.action == "changed"
    assert [d["id"] for d in b.active.values()] == ["a3"]


def test_host_port() -> None:
    assert host_port("10.0.0.5:1884") == ("10.0.0.5", 1884)
    assert host_port("broker") == ("broker", 1883)
    assert host_port(":1999") == ("127.0.0.1", 1999)


async def test_watch_learns_active_alarms_from_retained_messages(mosquitto) -> None:
    base = "alerts/watchtest"
    async with aiomqtt.Client("127.0.0.1", mosquitto.port) as c:
        await c.publish(f"{base}/p1/threshold/current", orjson.dumps(alert("p1", "threshold", "current")), qos=1, retain=True)
        await c.publish(f"{base}/p2/anomaly/pump", orjson.dumps(alert("p2", "anomaly", "pump")), qos=1, retain=True)
        await c.publish(f"{base}/p3/stale/flow", orjson.dumps(alert("p3", "stale", "flow")), qos=1, retain=True)
        await c.publish(f"{base}/p3/stale/flow", b"", qos=1, retain=True)  # cleared before we came
    out = io.StringIO()
    stop = asyncio.Event()
    task = asyncio.create_task(watch("127.0.0.1", mosquitto.port, [f"{base}/#"], out, tty=False, colour_on=False, stop=stop))
    await until(lambda: out.getvalue().count("RAISED") >= 2, what="both retained alarms shown")
    async with aiomqtt.Client("127.0.0.1", mosquitto.port) as c:  # then live: p2 clears
        await c.publish(f"{base}/p2/anomaly/pump", orjson.dumps(alert("p2", "anomaly", "pump", state="cleared")), qos=1)
        await c.publish(f"{base}/p2/anomaly/pump", b"", qos=1, retain=True)
    await until(lambda: "CLEARED" in out.getvalue(), what="the live clear shown")
    stop.set()
    board = await asyncio.wait_for(task, 10)
    assert set(board.active) == {("p1", "threshold", "current")}
    text = out.getvalue()
    assert "(retained)" in text and "p3" not in text
    async with aiomqtt.Client("127.0.0.1", mosquitto.port) as c:
        await c.publish(f"{base}/p1/threshold/current", b"", qos=1, retain=True)


def test_watch_command_prints_the_table(mosquitto) -> None:
    topic = "alerts/watchcmd/p5/threshold/pressure"
    subprocess.run(
        [
            "mosquitto_pub",
            "-p",
            str(mosquitto.port),
            "-t",
            topic,
            "-r",
            "-q",
            "1",
            "-m",
            json.dumps(alert("p5", "threshold", "pressure", severity="critical")),
        ],
        check=True,
        timeout=10,
    )
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgegw",
            "watch",
            "--broker",
            f"127.0.0.1:{mosquitto.port}",
            "--exit-after",
            "1.5",
            "alerts/watchcmd/#",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    subprocess.run(["mosquitto_pub", "-p", str(mosquitto.port), "-t", topic, "-r", "-n"], check=True, timeout=10)
    assert r.returncode == 0, r.stderr
    assert "-- 1 active alarm(s)" in r.stdout
    assert "critical" in r.stdout and "p5" in r.stdout and "threshold pressure" in r.stdout
