"""Alarms reach people: a real gateway, a real SMTP server and a real HTTP receiver."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from edgegw.notify.message import message_id
from tests.helpers import Collector, publish, pump, running_gateway
from tests.notify.peers import Hook, Smtp, email_target, notify_config
from tests.peers import until


@pytest.fixture
def smtp():
    s = Smtp().start()
    yield s
    s.stop()


@pytest.fixture
def hook():
    h = Hook()
    yield h
    h.close()


async def test_threshold_alarm_arrives_by_email_and_webhook(mosquitto, tmp_path: Path, smtp: Smtp, hook: Hook) -> None:
    section = {
        "state_dir": str(tmp_path / "state"),
        "targets": [email_target(smtp), {"type": "webhook", "url": hook.url}],
    }
    cfg = notify_config(tmp_path, mosquitto.port, section)
    site = cfg.gateway.site
    async with Collector(mosquitto.port, f"alerts/{site}/#") as col, running_gateway(cfg):
        await publish(mosquitto.port, "plant/pumps/pump-1/telemetry", [pump(8.0)])
        await until(lambda: smtp.box.messages and hook.accepted(), what="an email and a webhook POST")
        raised = await col.wait(lambda c: c.alerts(asset="pump-1", state="raised"))
    published = {k: v for k, v in raised[0].items() if not k.startswith("_")}
    assert hook.accepted() == [published]  # the body is the alert exactly as published on MQTT
    assert hook.requests[0][1]["Idempotency-Key"] == published["id"]
    m = smtp.box.messages[0]
    assert m["Message-ID"] == message_id([published["id"]], cfg.gateway.id)
    assert "pump-1" in m["Subject"] and "threshold" in m["Subject"]
    text = smtp.box.texts()[0]
    for needle in ("pump-1", "signal vibration", "8 mm/s, limit 7.1 mm/s (hi)", published["ts"]):
        assert needle in text, text
    html = m.get_body(("html",))
    assert html is not None and "pump-1" in html.get_content()


async def test_smtp_outage_waits_on_disk_and_is_delivered_in_order(mosquitto, tmp_path: Path, smtp: Smtp) -> None:
    section = {
        "state_dir": str(tmp_path / "state"),
        "targets": [email_target(smtp, digest_s=0, retry_max_s=1, alarm_after_s=0.5)],
    }
    cfg = notify_config(tmp_path, mosquitto.port, section)
    smtp.stop()
    async with (
        Collector(mosquitto.port, f"alerts/{cfg.gateway.site}/#", f"status/{cfg.gateway.id}/#") as col,
        running_gateway(cfg) as gw,
    ):
        await publish(mosquitto.port, "plant/pumps/pump-2/telemetry", [pump(12.5)])
        await publish(mosquitto.port, "plant/pumps/pump-3/telemetry", [pump(8.0)])
        failing = await col.wait(lambda c: c.alerts(asset=cfg.gateway.id, kind="notify_failed", state="raised"))
        assert failing[0]["source"] == "email-0" and failing[0]["queued"] == 2
        q = gw.notifier.queues[0]
        assert q.stats()["failing"] and q.stats()["queued"] == 2
        assert gw.health.snapshot()["sinks"]["notify"]["targets"]["email-0"]["failing"]
        smtp.start()
        await until(lambda: len(smtp.box.messages) >= 2, what="both emails after the outage")
        await col.wait(lambda c: c.alerts(asset=cfg.gateway.id, kind="notify_failed", state="cleared"))
    subjects = [m["Subject"] for m in smtp.box.messages]
    assert "pump-2" in subjects[0] and "pump-3" in subjects[1], subjects  # in order
    assert len(smtp.box.messages) == 2  # the gateway's own alarm about this target is not sent to it


async def test_webhook_500_then_200_is_retried_and_delivered_once(mosquitto, tmp_path: Path) -> None:
    hook = Hook([500, 500, 200])
    try:
        section = {
            "state_dir": str(tmp_path / "state"),
            "targets": [{"type": "webhook", "url": hook.url, "retry_max_s": 1, "headers": {"Authorization": "Bearer t0k"}}],
        }
        cfg = notify_config(tmp_path, mosquitto.port, section)
        async with running_gateway(cfg) as gw:
            await publish(mosquitto.port, "plant/pumps/pump-4/telemetry", [pump(8.0)])
            q = gw.notifier.queues[0]
            await until(lambda: q.sent == 1, what="the webhook accepted, and the gateway told so")
            stats = q.stats()
        assert [s for s, _, _ in hook.requests] == [500, 500, 200]
        assert len({b for _, _, b in hook.requests}) == 1  # the same body each time
        assert hook.requests[-1][1]["Authorization"] == "Bearer t0k"
        assert stats["failures"] == 2 and stats["sent"] == 1 and stats["queued"] == 0
    finally:
        hook.close()


async def test_min_severity_filters_and_clear_follows_its_raise(mosquitto, tmp_path: Path, hook: Hook) -> None:
    section = {
        "state_dir": str(tmp_path / "state"),
        "journal": {"flush_s": 0.2},
        "targets": [{"type": "webhook", "url": hook.url, "min_severity": "critical", "assets": ["pump-[12]"]}],
    }
    cfg = notify_config(tmp_path, mosquitto.port, section)
    async with Collector(mosquitto.port, f"alerts/{cfg.gateway.site}/#") as col, running_gateway(cfg):
        t = time.time()
        await publish(mosquitto.port, "plant/pumps/pump-1/telemetry", [pump(8.0, ts=t)])  # warning: not sent
        await publish(mosquitto.port, "plant/pumps/pump-3/telemetry", [pump(12.0, ts=t)])  # pump-3: not sent
        await publish(mosquitto.port, "plant/pumps/pump-2/telemetry", [pump(12.0, ts=t), pump(3.0, ts=t + 0.1)])
        await col.wait(lambda c: c.alerts(asset="pump-2", state="cleared"))
        await until(lambda: len(hook.accepted()) >= 2, what="pump-2's raise and clear")
        await publish(mosquitto.port, "plant/pumps/pump-1/telemetry", [pump(3.0, ts=t + 0.2)])  # its clear: not sent
        await col.wait(lambda c: c.alerts(asset="pump-1", state="cleared"))
        await publish(mosquitto.port, "plant/pumps/pump-2/telemetry", [pump(12.0, ts=t + 0.3)])  # a marker after it
        await until(lambda: len(hook.accepted()) >= 3, what="pump-2's second raise")
    got = [(d["asset"], d["state"]) for d in hook.accepted()]
    assert got == [("pump-2", "raised"), ("pump-2", "cleared"), ("pump-2", "raised")]
    body = json.loads(hook.requests[0][2])
    assert body["severity"] == "critical"


async def test_a_refused_alarm_goes_to_the_dead_letters_and_the_queue_moves_on(mosquitto, tmp_path: Path) -> None:
    hook = Hook(refuse=b'"pump-3"')
    try:
        section = {
            "state_dir": str(tmp_path / "state"),
            "targets": [{"type": "webhook", "url": hook.url, "digest_s": 0.5, "retry_max_s": 1}],
        }
        cfg = notify_config(tmp_path, mosquitto.port, section)
        async with running_gateway(cfg) as gw:
            t = time.time()
            await publish(mosquitto.port, "plant/pumps/pump-1/telemetry", [pump(8.0, ts=t)])  # alone, at once
            await until(lambda: hook.accepted(), what="pump-1 sent")
            for i in (3, 4):  # one digest of two: refused for pump-3's sake, then one by one
                await publish(mosquitto.port, f"plant/pumps/pump-{i}/telemetry", [pump(8.0, ts=t)])
            q = gw.notifier.queues[0]
            await until(lambda: q.stats()["dead_lettered"] == 1 and q.depth == 0, what="pump-3 dead-lettered")
            await until(lambda: len(hook.accepted()) == 2, what="pump-4 sent")
        assert [d["asset"] for d in hook.accepted()] == ["pump-1", "pump-4"]
        assert [s for s, _, _ in hook.requests] == [200, 422, 422, 200]
    finally:
        hook.close()
