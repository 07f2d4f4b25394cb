"""The notification sink: takes every alert like the other sinks, decides per target whether it
is sent (severity, asset and kind filters, on_clear, shelf marks), queues it durably and journals
it with the alarm events (acks, shelves, clears) the alarms room hands it. Shelves are the alarms
room's: a raise carrying `shelved_until` is held back, and the same raise published again with
`unshelved` when its shelf ends is announced to the targets it was held back from.

`alert()` only appends to memory: the queue writes happen in one commit a few milliseconds later,
after the local sink has published the alert, so a notification never delays the MQTT alert.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import functools
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import structlog

from edgegw.backoff import Backoff
from edgegw.config import ConfigError, GatewayConfig
from edgegw.config.notify import SEVERITIES, EmailTarget, NotifyConfig, TargetBase, WebhookTarget, queue_file
from edgegw.notify.delivery import QueueBusy, Sender, TargetQueue
from edgegw.notify.journal import Journal, Key, Shelf
from edgegw.records import AlarmEvent, Alert, AlertState, HopResult, Rollup, Severity, alert_from_dict, epoch, iso
from edgegw.runtime import cancel_requested

log = structlog.get_logger("edgegw.notify")

FLUSH_DELAY_S = 0.01  # queue writes wait this long: the local publish goes first, a burst shares one commit
SETTLE_S = 0.01  # a delivery starts once no alert came for this long (a few ms of loop time each) ...
SETTLE_MAX_S = 0.5  # ... or after this long at most
FAILED_KIND = "notify_failed"
_RANK = {s: i for i, s in enumerate(SEVERITIES)}


def _sender(target: TargetBase, gateway: str) -> Sender:
    if isinstance(target, EmailTarget):
        from edgegw.notify.email import EmailSender

        return EmailSender(target, gateway)
    assert isinstance(target, WebhookTarget)
    from edgegw.notify.webhook import WebhookSender

    return WebhookSender(target, gateway)


class Notifier:
    """The `notify` sink. `emit` is the gateway's alert entry (stamps and fans out to every sink)."""

    def __init__(self, cfg: GatewayConfig, emit: Any = None, state_dir: Path | None = None) -> None:
        """`state_dir`: the gateway's, where queues and journal live unless `notify.state_dir` says."""
        assert cfg.notify is not None
        self.name = "notify"
        self.connected = True  # no target failing (refreshed each second)
        self.cfg = cfg
        self.ncfg: NotifyConfig = cfg.notify
        self.emit = emit
        gw = cfg.gateway.id
        self.folder = self.ncfg.folder(state_dir)
        self.journal_path = self.ncfg.journal_path(self.folder)
        self.queues: list[TargetQueue] = []
        try:
            for t in self.ncfg.targets:
                self.queues.append(
                    TargetQueue(t, queue_file(self.folder, t), functools.partial(_sender, t, gw), self._failing, self.settle)
                )
        except QueueBusy as e:
            raise ConfigError([f"notify.state_dir: {e}"]) from None
        self.journal = Journal(self.journal_path, self.ncfg.journal) if self.ncfg.journal.enabled else None
        self.shelves: dict[Key, Shelf] = (
            self.journal.load_shelves() if self.journal else {}
        )  # earlier versions': see take_shelves
        self.active: dict[Key, Alert] = {}
        self._pending: list[tuple[TargetQueue, str, bytes]] = []
        self._flush_pending = False
        self._last_alert = 0.0
        self._closing = asyncio.Event()
        self.queued = 0
        self.suppressed = {"filtered": 0, "shelved": 0}

    @property
    def depth(self) -> int:
        return sum(q.depth for q in self.queues)

    # -- intake (synchronous, from the gateway's fan-out)

    def restore(self, raised: list[dict[str, Any]]) -> None:
        """Alarms active before a restart (the local sink reads them back): ack-able, and their clears
        reach the targets that were told of the raise."""
        for d in raised:
            a = alert_from_dict(d)
            self.active[a.key] = a
            for q in self.queues:
                if self._takes(q, a):
                    q.notified.add(a.key)

    def alert(self, alert: Alert) -> None:
        self._last_alert = time.monotonic()
        key = alert.key
        acked = "acked_by" in alert.evidence
        if alert.state == AlertState.RAISED:
            self.active[key] = alert
        else:
            self.active.pop(key, None)
        if acked:
            return  # the ack itself is journalled by the command
        payload = orjson.dumps(alert.to_dict())  # the alert exactly as published on MQTT
        if alert.evidence.get("unshelved"):  # its shelf ended (journaled as an event): tell who was not told
            for q in self.queues:
                if key not in q.notified and self._takes(q, alert):
                    q.notified.add(key)
                    self._queue(q, alert.id, payload)
            return
        if self.journal is not None:
            self.journal.record(str(alert.state), alert.asset, alert.kind, alert.source, str(alert.severity), detail=payload)
        shelved = alert.state == AlertState.RAISED and _shelved(alert.evidence)
        for q in self.queues:
            if alert.state == AlertState.RAISED:
                send = self._takes(q, alert)
                if send and not shelved:
                    q.notified.add(key)
                else:
                    q.notified.discard(key)  # a raise not passed on: nor its clear
            else:
                send = key in q.notified and q.target.on_clear
                q.notified.discard(key)
            if not send:
                self.suppressed["filtered"] += 1
                continue
            if shelved:
                self.suppressed["shelved"] += 1
                continue
            self._queue(q, alert.id, payload)

    def hop(self, result: HopResult) -> None:
        """Hops are not published here."""

    def event(self, event: AlarmEvent) -> None:
        """Alarm events (acks, shelves, clears by command, orphans, suppressions) go to the journal
        next to the transitions; they are not notifications."""
        if self.journal is not None:
            severity = str(event.detail.get("severity", ""))
            self.journal.record(
                event.event, *event.key, severity=severity, by=event.by, note=event.note, detail=event.detail, ts=event.ts
            )

    def rollup(self, rollup: Rollup) -> None:
        """Rollups are not notified."""

    async def settle(self) -> None:
        """Wait for a pause in the alarms (at most SETTLE_MAX_S): sending costs the one event loop a
        few milliseconds, which would otherwise land on the next alarm of a burst."""
        give_up = time.monotonic() + SETTLE_MAX_S
        while True:
            now = time.monotonic()
            quiet_for = now - self._last_alert
            if quiet_for >= SETTLE_S or now >= give_up:
                return
            await asyncio.sleep(SETTLE_S - quiet_for)

    def _takes(self, q: TargetQueue, a: Alert) -> bool:
        """Whether target `q` is sent raise `a`: its filters, and never its own notify_failed alarm."""
        return self._wants(q.target, a) and not (a.kind == FAILED_KIND and a.source == q.name)

    def _wants(self, t: TargetBase, a: Alert) -> bool:
        if t.kinds and a.kind not in t.kinds:
            return False
        if t.assets and not any(fnmatch.fnmatchcase(a.asset, p) for p in t.assets):
            return False
        return _RANK.get(str(a.severity), 0) >= _RANK[t.min_severity]

    def take_shelves(self) -> dict[Key, Shelf]:
        """Shelves an earlier version kept in the journal, handed to the alarms room once."""
        out = dict(self.shelves)
        self.shelves.clear()  # the journal's table empties at its next flush
        return out

    def _queue(self, q: TargetQueue, alert_id: str, payload: bytes) -> None:
        self._pending.append((q, alert_id, payload))
        self.queued += 1
        if not self._flush_pending:
            self._flush_pending = True
            try:
                asyncio.get_running_loop().call_later(FLUSH_DELAY_S, self._flush)
            except RuntimeError:
                self._flush()

    def _flush(self) -> None:
        """Write what alert() took to the target queues: one commit per queue."""
        self._flush_pending = False
        pending, self._pending = self._pending, []
        touched: dict[int, TargetQueue] = {}
        for q, alert_id, payload in pending:
            q.put(alert_id, payload)
            touched[id(q)] = q
        for q in touched.values():
            q.commit()

    # -- gateway alarm: a target that keeps failing

    def _failing(self, q: TargetQueue, failing: bool) -> None:
        gw = self.cfg.gateway.id
        ev = {"target": q.name, "type": getattr(q.target, "type", ""), "queued": q.outbox.count, "where": q.where}
        if failing:
            now = time.time()
            q.set_alarm(now)
            ev.update(error=q.last_error, failing_since=iso(q.failing_since or now))
            a = Alert(
                gw,
                FAILED_KIND,
                q.name,
                AlertState.RAISED,
                Severity.WARNING,
                now,
                ev,
                f"notifications to {q.name} ({q.where}) failing: {q.last_error}",
            )
        else:
            raised, now = q.alarm_raised_at, time.time()
            q.set_alarm(None)
            a = Alert(
                gw,
                FAILED_KIND,
                q.name,
                AlertState.CLEARED,
                Severity.INFO,
                now,
                ev,
                f"notifications to {q.name} delivered again",
                raised_at=raised,
            )
        self._emit(a)

    def _emit(self, a: Alert) -> None:
        if self.emit is None:
            return
        try:
            asyncio.get_running_loop().call_soon(self.emit, a)
        except RuntimeError:
            self.emit(a)

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.connected = all(q.failing_since is None for q in self.queues)

    # -- running

    async def _keep(self, name: str, job: Callable[[], Awaitable[None]]) -> None:
        """Run `job` until cancelled; a bug that ends it is logged and it starts again."""
        backoff = Backoff(1.0, 60.0)
        while True:
            try:
                await job()
            except Exception:
                if not cancel_requested():
                    log.exception("notification task failed; restarting it", task=name)
            if cancel_requested():
                raise asyncio.CancelledError
            await asyncio.sleep(backoff.next())

    async def run(self) -> None:
        jobs: list[tuple[str, Callable[[], Awaitable[None]]]] = [(f"notify:{q.name}", q.run) for q in self.queues]
        jobs.append(("notify:state", self._refresh))
        if self.journal is not None:
            jobs.append(("notify:journal", functools.partial(self.journal.run, self.shelves)))
        tasks = [asyncio.create_task(self._keep(name, job), name=name) for name, job in jobs]
        log.info(
            "notifications running",
            targets=[f"{q.name} ({q.where})" for q in self.queues],
            queued=self.depth,
            journal=str(self.journal_path) if self.journal else None,
        )
        try:
            await self._closing.wait()
            self._flush()
            for _ in range(20):  # let a delivery under way finish (it would be sent again otherwise)
                if not any(q.delivering for q in self.queues):
                    break
                await asyncio.sleep(0.05)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._flush()
            for q in self.queues:
                with contextlib.suppress(Exception):
                    await q.aclose()
            if self.journal is not None:
                await asyncio.to_thread(self.journal.close, dict(self.shelves))

    async def close(self, timeout: float = 2.0) -> None:
        self._closing.set()

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "queued_total": self.queued,
            "suppressed": dict(self.suppressed),
            "targets": {q.name: q.stats() for q in self.queues},
        }
        if self.journal is not None:
            out["journal"] = self.journal.stats()
        return out


def build(cfg: GatewayConfig, emit: Any = None, state_dir: Path | None = None) -> Notifier:
    return Notifier(cfg, emit, state_dir)


def _shelved(ev: dict[str, Any]) -> bool:
    """The raise carries a shelf mark that has not run out."""
    until = ev.get("shelved_until")
    t = epoch(until) if until else None
    return t is not None and t > time.time()
