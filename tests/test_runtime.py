"""runtime.supervise: the one reconnect loop. Sessions here are plain coroutines (no peer is
needed to show how failures are counted, restarted and backed off)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiomqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from edgegw.backoff import Backoff
from edgegw.runtime import Link, reason_code, supervise


async def test_a_session_that_raises_anything_is_restarted_never_ends_the_task() -> None:
    link, backoff = Link("thing"), Backoff(0.001, 0.002)
    runs = 0

    async def session(lk: Link) -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise ValueError("a bug")
        if runs == 2:
            raise KeyError("another")
        lk.up()
        await asyncio.sleep(3600)

    task = asyncio.create_task(supervise(link, session, backoff))
    for _ in range(500):
        if link.connected:
            break
        await asyncio.sleep(0.005)
    assert link.connected and runs == 3 and not task.done()
    assert link.failures == 2 and link.disconnects == {"ValueError": 1, "KeyError": 1}
    assert link.stats()["connects"] == 1 and link.stats()["connected_since"] is not None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not link.connected


async def test_backoff_starts_over_only_after_a_session_that_lasted() -> None:
    """A server that accepts the connection and throws the client off soon after is not hammered,
    even when each session moved something (two clients with one client id take turns)."""
    link, backoff = Link("flappy"), Backoff(0.0001, 0.0002)
    attempts: list[int] = []
    churned: list[int] = []
    link.on_churn = lambda lk: churned.append(lk.short_sessions)
    stop = asyncio.Event()

    async def session(lk: Link) -> None:
        attempts.append(backoff.attempt)
        lk.up()
        lk.progress()  # every session delivered something
        if len(attempts) == 5:
            await asyncio.sleep(0.05)  # this one stayed up past healthy_after_s
        if len(attempts) == 8:
            stop.set()
            return
        raise aiomqtt.MqttCodeError(ReasonCode(PacketTypes.DISCONNECT, identifier=0x95), "Disconnected")

    await supervise(link, session, backoff, stopping=stop.is_set, stop=stop, expected=(aiomqtt.MqttError,), healthy_after_s=0.04)
    assert attempts == [0, 1, 2, 3, 4, 1, 2, 3]  # thrown off every time; started over only after the fifth
    assert churned == [3]  # the third short session in a row: a likely client-id clash, reported once
    assert link.connects == 8 and link.failures == 7
    assert link.disconnects == {"0x95": 7} and link.last_reason_code == 0x95


async def test_a_session_that_returns_while_not_stopping_is_retried() -> None:
    link, backoff = Link("ends"), Backoff(0.0001, 0.0002)
    runs = 0
    stopping = False

    async def session(lk: Link) -> None:
        nonlocal runs, stopping
        runs += 1
        stopping = runs == 3

    await supervise(link, session, backoff, stopping=lambda: stopping)
    assert runs == 3 and link.failures == 2 and link.last_error == "ends session ended"


def test_reason_codes_of_exceptions() -> None:
    assert reason_code(aiomqtt.MqttCodeError(ReasonCode(PacketTypes.PUBACK, identifier=0x87), "x")) == 0x87
    assert reason_code(aiomqtt.MqttCodeError(7, "x")) == 7
    assert reason_code(OSError("refused")) is None


@pytest.mark.parametrize("swallow", [False, True], ids=["turned-into-an-error", "swallowed"])
async def test_one_cancel_ends_a_session_that_eats_the_cancel(swallow: bool) -> None:
    """A client cut off mid-connect raises its own error (or a library drops the CancelledError):
    shutdown must not need a second cancel, and the session must not start again."""
    link, backoff = Link("eater"), Backoff(0.001, 0.002)
    runs = 0
    entered = asyncio.Event()

    async def session(lk: Link) -> None:
        nonlocal runs
        runs += 1
        if runs > 1:
            return  # started again: what the test must not see (and no hang if it does)
        entered.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            if not swallow:
                raise OSError("connection lost while connecting") from None

    task = asyncio.create_task(supervise(link, session, backoff, stopping=lambda: runs > 1))
    await entered.wait()
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=5.0)
    assert task in done and task.cancelled()
    assert runs == 1


async def test_one_cancel_ends_a_notification_job_that_eats_the_cancel(tmp_path: Path) -> None:
    from edgegw.notify.dispatch import Notifier
    from tests.notify.peers import notify_config

    section = {
        "state_dir": str(tmp_path / "state"),
        "commands": {"enabled": False},
        "journal": {"enabled": False},
        "targets": [{"type": "webhook", "url": "http://127.0.0.1:9/"}],
    }
    n = Notifier(notify_config(tmp_path, 1883, section))
    runs = 0
    entered = asyncio.Event()

    async def job() -> None:
        nonlocal runs
        runs += 1
        if runs > 1:
            raise asyncio.CancelledError  # started again: what the test must not see (and no hang if it does)
        entered.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise RuntimeError("closing half-open transport") from None

    task = asyncio.create_task(n._keep("eater", job))
    await entered.wait()
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=5.0)
    assert task in done and task.cancelled()
    assert runs == 1
