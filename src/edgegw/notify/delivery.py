"""One target's durable queue and its delivery loop: pacing (digest window, rate cap), retries.

Notifications are written to the target's own outbox (`sinks/outbox.py`, one SQLite file per
target) before anything is sent, and deleted once the peer accepted them. Before a batch is sent
its id range is recorded in the outbox, so after a crash exactly the same batch goes again with
the same Message-ID / Idempotency-Key, and the receiver can de-duplicate it.

Pacing: the first alarm after a quiet spell goes alone and at once, and opens a window of
`digest_s`; what arrives within it goes as one digest when it ends, which opens the next window.
A window that gathered nothing ends the burst. The rate cap counts messages over the last hour;
at the cap, alarms wait and go together as one digest when the oldest message leaves the hour.
While the peer fails, the batch is retried with capped, jittered backoff; order is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import structlog

from edgegw.backoff import Backoff
from edgegw.config.notify import TargetBase
from edgegw.notify import DeliveryError, DeliveryRefused
from edgegw.ratelimit import RateLimitedLog
from edgegw.runtime import cancel_requested
from edgegw.sinks.outbox import Kind, Outbox, OutboxBusy, Row

log = structlog.get_logger("edgegw.notify")
_rl = RateLimitedLog(log)

RATE_WINDOW_S = 3600.0  # the rate cap counts messages over this span
SYNC_S = 1.0  # how often the queue's WAL is fsynced (off the loop thread)


class Sender(Protocol):
    where: str

    async def deliver(self, payloads: list[bytes], key: str = "") -> None: ...

    async def aclose(self) -> None: ...


class QueueBusy(Exception):
    """Another process holds this target's queue."""


class TargetQueue:
    """Written from the event loop (`put`, `commit`), drained by `run()`."""

    def __init__(
        self,
        target: TargetBase,
        path: Path,
        make_sender: Callable[[], Sender],
        on_failing: Callable[[TargetQueue, bool], None],
        settle: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.target = target
        self.name = target.name
        self.make_sender = make_sender
        self.sender: Sender | None = None  # made in a worker thread at run(): its library loads off the loop
        self.where = target.where
        self.on_failing = on_failing
        self.settle = settle  # awaited before each attempt: lets a burst of alarms go out first
        try:
            self.outbox = Outbox(path, int(target.max_mb * 2**20))
        except OutboxBusy as e:
            raise QueueBusy(str(e)) from None
        for problem in self.outbox.problems:
            log.error("notification queue problem", target=self.name, problem=problem)
        self.notified: set[tuple[str, str, str]] = set()  # raises this target was told of, not yet cleared
        self._wake = asyncio.Event()
        self._after = self.outbox.first_id() - 1
        self._window_end: float | None = None
        self._singles_upto = 0  # rows up to this id go one by one: a digest of them was refused
        self._sent_at: deque[float] = deque()
        self.delivering = False
        self.sent = 0  # messages accepted by the peer
        self.sent_alerts = 0  # alerts in them
        self.attempts = 0
        self.failures = 0
        self.last_error: str | None = None
        self.failing_since: float | None = None
        alarm = self.outbox.meta.get("alarm")
        self.alarm_raised_at: float | None = float(alarm) if alarm is not None else None

    # -- intake (event loop, never awaits)

    def put(self, alert_id: str, payload: bytes) -> None:
        self.outbox.put(Kind.ALERT, alert_id, payload)

    def commit(self) -> None:
        if self.outbox.commit():
            self._wake.set()

    def set_alarm(self, raised_at: float | None) -> None:
        self.alarm_raised_at = raised_at
        self.outbox.set_meta("alarm", raised_at)
        self.outbox.commit()

    # -- delivery

    async def run(self) -> None:
        syncer = asyncio.create_task(self._sync(), name=f"notify:{self.name}:sync")
        try:
            if self.sender is None:
                self.sender = await asyncio.to_thread(self.make_sender)
            while not cancel_requested():
                rows = self._unfinished() or await self._next_batch()
                await self._send(rows)
        finally:
            syncer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await syncer

    async def _sync(self) -> None:
        """fsync the WAL off the loop; store again what a full disk kept in memory (every 10 s at most)."""
        retry_at = 0.0
        while True:
            await asyncio.sleep(SYNC_S)
            await asyncio.to_thread(self.outbox.sync)
            if self.outbox.unstored and time.monotonic() >= retry_at:
                retry_at = time.monotonic() + (10.0 if self.outbox.space_short else 0.0)
                self.outbox.retry_unstored()
                self._wake.set()

    def _unfinished(self) -> list[Row]:
        """The batch that was being sent when the process stopped: the same ids again."""
        mark = self.outbox.meta.get("batch")
        if not mark:
            return []
        first, last = (int(x) for x in str(mark).split(":"))
        rows = self.outbox.read(first - 1, last, limit=last - first + 1)
        if not rows:
            self._finish([])
        return rows

    def _has_rows(self) -> bool:
        return self.outbox.committed_id > self._after and bool(self.outbox.read(self._after, limit=1))

    def _rate_wait(self) -> float:
        """Seconds until the cap allows one more message (0: now)."""
        cap = self.target.max_per_hour
        if cap is None:
            return 0.0
        now = time.monotonic()
        while self._sent_at and now - self._sent_at[0] >= RATE_WINDOW_S:
            self._sent_at.popleft()
        return 0.0 if len(self._sent_at) < cap else self._sent_at[0] + RATE_WINDOW_S - now

    async def _wait(self, timeout: float | None) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._wake.wait()

    async def _next_batch(self) -> list[Row]:
        held = False
        while True:
            now = time.monotonic()
            if not self._has_rows():
                if self._window_end is not None and now >= self._window_end:
                    self._window_end = None  # a window that gathered nothing: the burst is over
                await self._wait(None if self._window_end is None else self._window_end - now)
                continue
            if self._window_end is not None and now < self._window_end:
                await asyncio.sleep(self._window_end - now)  # gather the burst
                continue
            wait = self._rate_wait()
            if wait > 0:
                held = True
                await asyncio.sleep(min(wait, 60.0))
                continue
            alone = (self._window_end is None and not held) or self.outbox.first_id() <= self._singles_upto
            rows = self.outbox.read(self._after, limit=1 if alone else self.target.max_batch)
            d = self.target.digest_s
            self._window_end = time.monotonic() + d if d > 0 else None
            if len(rows) > 1:  # one row alone is what a restart sends first anyway: the same key again
                self.outbox.set_meta("batch", f"{rows[0].id}:{rows[-1].id}")
                self.outbox.commit()
            return rows

    async def _send(self, rows: list[Row]) -> None:
        assert self.sender is not None
        backoff = Backoff(1.0, self.target.retry_max_s)
        key = rows[0].topic + (f".{len(rows)}" if len(rows) > 1 else "")
        while True:
            if self.settle is not None:
                await self.settle()
            self.attempts += 1
            self.delivering = True
            try:
                async with asyncio.timeout(self.target.timeout_s * 2):
                    await self.sender.deliver([r.payload for r in rows], key)
            except DeliveryRefused as e:
                self._refused(rows, str(e))
                return
            except (DeliveryError, TimeoutError) as e:
                self._failed(str(e) or "timed out")
            except Exception as e:  # a bug in composing or sending: loud, and the batch stays queued
                log.exception("notification delivery failed unexpectedly", target=self.name)
                self._failed(f"{type(e).__name__}: {e}")
            else:
                self._delivered(rows)
                return
            finally:
                self.delivering = False
            await asyncio.sleep(backoff.next())

    def _refused(self, rows: list[Row], reason: str) -> None:
        """A digest is split and sent again one by one; a single refused alarm goes to the dead letters."""
        if len(rows) > 1:
            self._singles_upto = rows[-1].id
            log.warning("digest refused; sending its alarms one by one", target=self.name, error=reason)
        else:
            self.outbox.dead_letter(rows[0].id, reason)
            self._after = max(self._after, rows[0].id)
            log.error(
                "notification refused by the peer; kept as a dead letter", target=self.name, error=reason, alert_id=rows[0].topic
            )
        if "batch" in self.outbox.meta:
            self.outbox.set_meta("batch", None)
        self.outbox.commit()

    def _failed(self, error: str) -> None:
        self.failures += 1
        self.last_error = error
        now = time.time()
        if self.failing_since is None:
            self.failing_since = now
        _rl.warning(
            f"fail:{self.name}", "notification not delivered; retrying", target=self.name, error=error, queued=self.outbox.count
        )
        if self.alarm_raised_at is None and now - self.failing_since >= self.target.alarm_after_s:
            self.on_failing(self, True)

    def _delivered(self, rows: list[Row]) -> None:
        self._finish(rows)
        self.sent += 1
        self.sent_alerts += len(rows)
        self._sent_at.append(time.monotonic())
        if self.failing_since is not None:
            log.info("notifications delivered again", target=self.name, failed_for_s=round(time.time() - self.failing_since, 1))
        self.failing_since = None
        self.last_error = None
        if self.alarm_raised_at is not None:
            self.on_failing(self, False)

    def _finish(self, rows: list[Row]) -> None:
        """The peer has them: deleted, and the batch mark with them, in one commit right away."""
        for r in rows:
            self.outbox.ack(r.id)
        if rows:
            self._after = max(self._after, rows[-1].id)
        if "batch" in self.outbox.meta:
            self.outbox.set_meta("batch", None)
        self.outbox.commit()

    async def aclose(self) -> None:
        if self.sender is not None:
            with contextlib.suppress(Exception):
                await self.sender.aclose()
        await asyncio.to_thread(self.outbox.sync)
        self.outbox.close()

    @property
    def depth(self) -> int:
        return self.outbox.count

    def stats(self) -> dict[str, Any]:
        return {
            "queued": self.outbox.count,
            "sent": self.sent,
            "sent_alerts": self.sent_alerts,
            "attempts": self.attempts,
            "failures": self.failures,
            "failing": self.failing_since is not None,
            "last_error": self.last_error,
            "durable": not self.outbox.in_memory,
            "dropped": self.outbox.dropped["alert"],
            "unstored": len(self.outbox.unstored),
            "dead_lettered": self.outbox.dead_lettered["alert"],
        }
