"""Digest window and rate cap, against a real SMTP server: a burst becomes one email, not twenty."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from edgegw.notify import delivery
from tests.notify.peers import Smtp, email_target, notifier, stale
from tests.peers import until


@pytest.fixture
def smtp():
    s = Smtp().start()
    yield s
    s.stop()


async def test_burst_of_twenty_is_one_alarm_then_one_digest(tmp_path: Path, smtp: Smtp) -> None:
    async with notifier(tmp_path, email_target(smtp, digest_s=0.5)) as n:
        burst = [
            stale(f"pump-{i % 4 + 1}", s) for i, s in enumerate(["vibration", "pressure", "temperature", "flow", "current"] * 4)
        ]
        for a in burst:
            n.alert(a)
        await until(lambda: len(smtp.box.messages) >= 2, what="two emails")
        await asyncio.sleep(1.2)  # two more windows: nothing else may come
        assert len(smtp.box.messages) == 2
        # a quiet spell: the next alarm goes at once and alone again
        late = stale("pump-1", "flow")
        n.alert(late)
        await until(lambda: len(smtp.box.messages) >= 3, what="the alarm after the quiet spell")
    first, digest, alone = smtp.box.messages
    assert burst[0].id in first["Message-ID"] and "pump-1 stale vibration" in first["Subject"]
    assert "19 alarm changes" in digest["Subject"]
    text = digest.get_body(("plain",)).get_content()
    assert all(a.id in digest["X-Edgegw-Alert-Ids"] for a in burst[1:])
    assert text.count("Silent:") == 19 and "12 s (limit 10 s)" in text
    assert late.id in alone["Message-ID"]


async def test_rate_cap_holds_alarms_and_sends_them_as_one_digest(
    tmp_path: Path, smtp: Smtp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delivery, "RATE_WINDOW_S", 1.5)  # "per hour", shortened
    async with notifier(tmp_path, email_target(smtp, digest_s=0, max_per_hour=2)) as n:
        alarms = [stale("pump-2", s) for s in ("vibration", "pressure", "temperature", "flow", "current")]
        for a in alarms[:2]:
            n.alert(a)
        await until(lambda: len(smtp.box.messages) >= 2, what="two emails within the cap")
        for a in alarms[2:]:
            n.alert(a)
        await asyncio.sleep(0.3)
        assert len(smtp.box.messages) == 2 and n.queues[0].depth == 3  # held on disk at the cap
        await until(lambda: len(smtp.box.messages) >= 3, what="the held alarms")
        await asyncio.sleep(0.3)
    assert len(smtp.box.messages) == 3
    assert "3 alarm changes" in smtp.box.messages[2]["Subject"]
    assert [a.id for a in alarms[2:]] == smtp.box.messages[2]["X-Edgegw-Alert-Ids"].split()
