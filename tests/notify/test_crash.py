"""kill -9 with notifications queued, then a restart: each is delivered, once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import orjson

from edgegw.notify.message import message_id
from edgegw.sinks.outbox import Kind, Outbox
from tests.helpers import EXAMPLE, publish, pump
from tests.notify.peers import Smtp, email_target, notifier, stale, unique_gateway
from tests.peers import until


def _config(tmp_path: Path, broker_port: int, smtp_port: int) -> list[str]:
    """`edgegw run` arguments for the example config with one email target and no alarm delays."""
    section = {
        "state_dir": str(tmp_path / "state"),
        "journal": {"flush_s": 0.2},
        "targets": [
            {
                "type": "email",
                "smtp": {"host": "127.0.0.1", "port": smtp_port},
                "from": "gw@plant.example",
                "to": ["ops@plant.example"],
                "digest_s": 0,
                "retry_max_s": 1,
            }
        ],
    }
    f = tmp_path / "gw.yaml"
    f.write_text(EXAMPLE.read_text() + f"\nnotify: {json.dumps(section)}\n")
    base = unique_gateway(broker_port)
    sets = [
        f"mqtt.port={broker_port}",
        "profiles.pump.model=null",
        f"gateway.id={base.gateway.id}",
        f"gateway.site={base.gateway.site}",
        "log.format=json",
        *[f"profiles.pump.signals.vibration.{d}=0" for d in ("on_delay_s", "off_delay_s")],
    ]
    return [sys.executable, "-m", "edgegw", "run", "-c", str(f), *[a for s in sets for a in ("--set", s)]]


def _start(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)


async def _subscribed(log: Path, starts: int) -> None:
    """The gateway's MQTT source has subscribed (`starts` times in this log): telemetry now arrives."""
    await until(
        lambda: log.exists() and log.read_text().count('"event": "subscribed"') >= starts,
        20,
        what=f"the gateway subscribed; log: {log.read_text()[-300:] if log.exists() else ''}",
    )


def _queued(db: Path) -> int:
    if not db.exists():
        return 0
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(c.execute("SELECT count(*) FROM outbox").fetchone()[0])
    except sqlite3.Error:
        return 0
    finally:
        c.close()


async def test_kill9_with_queued_notifications_then_restart_delivers_each_once(mosquitto, tmp_path: Path) -> None:
    smtp = Smtp()  # not started: the server is down while the alarms happen
    argv = _config(tmp_path, mosquitto.port, smtp.port)
    queue = tmp_path / "state" / "notify-email-0.db"
    log = tmp_path / "gw.log"
    p = _start(argv, log)
    try:
        await _subscribed(log, 1)
        for i, v in enumerate((8.0, 12.5, 9.0), 1):
            await publish(mosquitto.port, f"plant/pumps/pump-{i}/telemetry", [pump(v)])
        await until(lambda: _queued(queue) == 3, what=f"3 notifications on disk; log: {log.read_text()[-500:]}")
        os.kill(p.pid, signal.SIGKILL)
        p.wait(10)
        smtp.start()
        p = _start(argv, log)
        await until(lambda: len(smtp.box.messages) >= 3, 20, what="3 emails after the restart")
        await until(lambda: _queued(queue) == 0, what="an empty queue")
        await asyncio.sleep(1.5)  # retries run every second at most: a duplicate would be here by now
    finally:
        p.terminate()
        p.wait(10)
        smtp.stop()
    assets = [m["Subject"].split()[2] for m in smtp.box.messages]
    assert assets == ["pump-1", "pump-2", "pump-3"], assets
    assert len({m["Message-ID"] for m in smtp.box.messages}) == 3


async def test_killed_before_the_server_answered_resends_with_the_same_message_id(mosquitto, tmp_path: Path) -> None:
    smtp = Smtp().start()
    argv = _config(tmp_path, mosquitto.port, smtp.port)
    log = tmp_path / "gw.log"
    procs: list[subprocess.Popen[bytes]] = []

    def kill_the_gateway() -> None:  # the message is with the server, its 250 not yet with the gateway
        if len(smtp.box.messages) == 0:
            os.kill(procs[-1].pid, signal.SIGKILL)
            procs[-1].wait(10)

    smtp.box.on_data = kill_the_gateway
    try:
        procs.append(_start(argv, log))
        await _subscribed(log, 1)
        await publish(mosquitto.port, "plant/pumps/pump-1/telemetry", [pump(8.0)])
        await until(lambda: procs[0].poll() is not None, what="the gateway killed mid-delivery")
        procs.append(_start(argv, log))
        await until(lambda: len(smtp.box.messages) >= 2, 20, what="the resend after the restart")
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait(10)
        smtp.stop()
    first, again = smtp.box.messages[:2]
    assert first["Message-ID"] == again["Message-ID"]  # the receiver can tell it is the same one


async def test_a_digest_cut_short_by_a_crash_goes_again_as_the_same_digest(tmp_path: Path) -> None:
    """What a crash mid-digest leaves on disk: the queued alarms and the batch mark. The restart sends
    exactly that batch again, under the same Message-ID, before anything else."""
    smtp = Smtp().start()
    try:
        alarms = [stale("pump-1", s) for s in ("vibration", "pressure", "temperature", "flow")]
        ob = Outbox(tmp_path / "state" / "notify-email-0.db", 2**20)
        ids = [ob.put(Kind.ALERT, a.id, orjson.dumps(a.to_dict())) for a in alarms]
        ob.set_meta("batch", f"{ids[0]}:{ids[2]}")  # the first three were being sent as one digest
        ob.commit()
        ob.close()
        async with notifier(tmp_path, email_target(smtp, digest_s=0.2)) as n:
            await until(lambda: len(smtp.box.messages) >= 2, what="the digest again, then the fourth")
            await until(lambda: n.queues[0].depth == 0, what="an empty queue")
            gateway = n.cfg.gateway.id
    finally:
        smtp.stop()
    again, fourth = smtp.box.messages
    assert again["Message-ID"] == message_id([a.id for a in alarms[:3]], gateway)
    assert again["X-Edgegw-Alert-Ids"].split() == [a.id for a in alarms[:3]]
    assert alarms[3].id in fourth["Message-ID"]
