"""Supervised reconnect loops: the one owner of retrying, for every source and sink.

A source or sink writes one *session*: connect, call `link.up()`, work until the connection ends
(return when asked to stop, raise when it broke) and call `link.progress()` whenever something
went through. `supervise()` does the rest, the same way for all of them: it counts connects and
failures, keeps the last error and the reason code of each disconnect (in the log and in
`Link.stats()`), waits a capped, jittered backoff between attempts and starts the session again.
The backoff starts over only after a session that stayed up for `healthy_after_s` (60 s), so a
server that accepts the connection and throws the client off soon after is not hammered, even
when each session moved something. CHURN_AFTER such short sessions in a row are what a second
client with the same client id causes (two gateways with one id, a cloned SD card): logged once
as a likely client-id clash and reported through `Link.on_churn` (the gateway raises an alarm).
A session that fails with an unexpected exception (a bug, a bad file) is logged with its
traceback and restarted like any other failure: it never ends the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypedDict

import structlog

from edgegw.backoff import Backoff

log = structlog.get_logger("edgegw.runtime")
CHURN_AFTER = 3  # sessions in a row that connected and ended before healthy_after_s


class LinkStats(TypedDict):
    connected: bool
    connects: int
    failures: int
    connected_since: float | None  # wall clock of the current connection's start
    last_error: str | None
    last_reason_code: int | None  # of the last disconnect, where the protocol gives one (MQTT 5)
    disconnects: dict[str, int]  # by reason: "0x95", "refused", "timeout", ...


def reason_code(exc: BaseException) -> int | None:
    """The protocol's reason code carried by an exception (aiomqtt's MqttCodeError.rc), if any."""
    rc = getattr(exc, "rc", None)
    if rc is None:
        return None
    value = getattr(rc, "value", rc)
    return value if isinstance(value, int) else None


def _reason_key(exc: BaseException) -> str:
    code = reason_code(exc)
    if code is not None:
        return f"0x{code:02x}"
    text = str(exc).lower()
    for word in ("refused", "timed out", "reset", "unreachable", "ssl", "certificate"):
        if word in text:
            return word.replace(" ", "_")
    return type(exc).__name__


class Link:
    """The state of one supervised connection: written by its session and by `supervise()`."""

    def __init__(self, name: str, where: str = "") -> None:
        self.name = name
        self.where = where
        self.connected = False
        self.connects = 0
        self.failures = 0  # sessions that ended in an error (failed connects included)
        self.connected_since: float | None = None
        self.last_error: str | None = None
        self.last_reason_code: int | None = None
        self.disconnects: dict[str, int] = {}
        self.healthy = False  # this session moved something
        self.up_since = 0.0  # monotonic clock of the current connection's start
        self.short_sessions = 0  # in a row: connected, then dropped before healthy_after_s
        self.on_churn: Callable[[Link], None] | None = None  # called once when short_sessions reaches CHURN_AFTER

    def up(self, **info: Any) -> None:
        """The session is connected (after its handshake and any start-up exchange)."""
        self.connected = True
        self.connects += 1
        self.connected_since = time.time()
        self.up_since = time.monotonic()
        log.info(f"{self.name} connected", link=self.name, at=self.where, connects=self.connects, **info)

    def progress(self) -> None:
        """Something went through on this session."""
        self.healthy = True

    def down(self, exc: BaseException | None) -> None:
        self.connected = False
        self.connected_since = None
        if exc is None:
            return
        self.failures += 1
        self.last_error = str(exc) or type(exc).__name__
        self.last_reason_code = reason_code(exc)
        key = _reason_key(exc)
        self.disconnects[key] = self.disconnects.get(key, 0) + 1

    def stats(self) -> LinkStats:
        return LinkStats(
            connected=self.connected,
            connects=self.connects,
            failures=self.failures,
            connected_since=self.connected_since,
            last_error=self.last_error,
            last_reason_code=self.last_reason_code,
            disconnects=dict(self.disconnects),
        )


Session = Callable[[Link], Awaitable[None]]


def cancel_requested() -> bool:
    """True when this task was asked to stop but a library swallowed the CancelledError (or turned
    it into an error of its own, as a client cut off mid-connect does): a loop that restarts its
    job on any ending asks this first, or shutdown waits for a second cancel."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def supervise(
    link: Link,
    session: Session,
    backoff: Backoff,
    *,
    stopping: Callable[[], bool] = lambda: False,
    stop: asyncio.Event | None = None,
    expected: tuple[type[BaseException], ...] = (OSError,),
    healthy_after_s: float = 60.0,
    context: Callable[[], dict[str, Any]] | None = None,
) -> None:
    """Run `session` until it returns while `stopping()` is true; retry every other ending.

    `expected` failures (a broker away, a refused connect) log one warning line each; anything
    else logs its traceback. `stop` cuts a backoff wait short; `context` adds figures to the lines.
    """
    while True:
        link.healthy = False
        started = time.monotonic()
        error: BaseException | None = None
        try:
            await session(link)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # whatever broke, the session runs again
            error = e
        finally:
            was_up = link.connected
            link.down(error)
        if stopping():
            return
        if cancel_requested():
            raise asyncio.CancelledError
        if error is None:
            error = ConnectionError(f"{link.name} session ended")
            link.down(error)
        if was_up:
            _session_ended(link, backoff, time.monotonic() - started >= healthy_after_s)
        delay = backoff.next()
        extra = context() if context is not None else {}
        fields = dict(
            link=link.name,
            at=link.where,
            error=link.last_error,
            reason=_reason_key(error),
            attempt=backoff.attempt,
            retry_in_s=round(delay, 2),
            **extra,
        )
        if isinstance(error, expected):
            log.warning(f"{link.name} unavailable", **fields)
        else:
            log.error(f"{link.name} failed; restarting", exc_info=error, **fields)
        if stop is None:
            await asyncio.sleep(delay)
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
        if stopping():
            return


def _session_ended(link: Link, backoff: Backoff, lasted: bool) -> None:
    """After a session that was connected: start the backoff over if it lasted, else count it."""
    if lasted:
        backoff.reset()
        link.short_sessions = 0
        return
    link.short_sessions += 1
    if link.short_sessions == CHURN_AFTER:
        log.warning(
            f"{link.name} dropped soon after connecting, {CHURN_AFTER} times in a row: likely another client with "
            "the same client id (a second gateway with this gateway id, e.g. a cloned SD card)",
            link=link.name,
            at=link.where,
            error=link.last_error,
        )
        if link.on_churn is not None:
            link.on_churn(link)
