"""The active alarms of this gateway, and what operators do to them.

`Gateway._on_alert` passes every alert through `ActiveAlarms.take` before the fan-out: it keeps
the active raise per key (asset, kind, source), holds back the stale and quality alarms a lost
link causes (ISA-18.2 suppression by design: counted and journaled, not published), and lets
the rest through. Acks, shelves and clears are applied here, with or without a notify section;
each emits an `AlarmEvent` through the gateway (history journals it). A raise of a shelved alarm
carries the shelf as a mark (`shelved_until`, `shelved_by`: the notifier sends nothing for it);
when the shelf ends with the alarm still active, the alarm is published again without the mark
(`unshelved`), which the notifier announces to the targets it held it back from.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgegw.alarms.commands import AlarmCommand
from edgegw.alarms.shelves import Shelf, Shelves
from edgegw.config import GatewayConfig
from edgegw.records import AlarmEvent, Alert, AlertState, Severity, alert_from_dict, iso

Key = tuple[str, str, str]
ENGINE_KINDS = ("threshold", "stale", "quality", "anomaly", "failure_risk")
SIGNAL_KINDS = ("threshold", "stale", "quality")
SUPPRESSIBLE = ("stale", "quality")  # what a lost link causes; a value past a limit is never the link's doing
_ACK_FIELDS = ("acked_by", "acked_at", "ack_note")
_SHELF_FIELDS = ("shelved_until", "shelved_by", "unshelved")


def key_text(key: Key) -> str:
    return "/".join(key)


class ActiveAlarms:
    """Key -> the active alert (ack marks in its evidence), suppressed alarms, and the command handler."""

    def __init__(
        self,
        cfg: GatewayConfig,
        emit: Callable[[Alert], None],
        on_event: Callable[[AlarmEvent], None],
        state_dir: Path | None = None,
    ) -> None:
        """`emit`: the gateway's alert entry (an ack or a clear re-enters there); `on_event`: its
        event fan-out; `state_dir`: where shelves are kept across restarts."""
        self.gateway = cfg.gateway.id
        self.emit = emit
        self.on_event = on_event
        self.active: dict[Key, Alert] = {}
        self.suppressed: dict[Key, tuple[str, Alert]] = {}  # key -> (the link alarm it is under, the raise)
        self.suppressor: Callable[[Alert], str | None] | None = None  # the link alarm that owns a stale/quality raise
        self.holds: Callable[[Key], str | None] = _nothing  # why a condition still owns the alarm (clear refused)
        self.forget: Callable[[Key], None] = _ignore  # the owner forgets an alarm cleared by command
        self.shelves = Shelves(state_dir / f"{cfg.gateway.id}.shelves.json" if state_dir is not None else None)
        self._signals = {a.id: set(cfg.profiles[a.profile].signals) for a in cfg.assets}
        self.counts = {"suppressed": 0, "acked": 0, "cleared": 0, "orphans_cleared": 0}

    # -- every alert, before the fan-out

    def take(self, alert: Alert) -> bool:
        """Whether the alert goes on to the sinks; keeps the active set current."""
        key = alert.key
        if alert.state == AlertState.RAISED:
            if alert.kind in SUPPRESSIBLE and self.suppressor is not None:
                link = self.suppressor(alert)
                if link is not None:
                    alert.evidence["suppressed_by"] = link
                    self.suppressed[key] = (link, alert)
                    self.counts["suppressed"] += 1
                    self.on_event(
                        AlarmEvent(
                            time.time(),
                            "suppressed",
                            key,
                            "gateway",
                            f"under {link}",
                            {"suppressed_by": link, "message": alert.message, "severity": str(alert.severity)},
                        )
                    )
                    return False
            shelf = self.shelves.get(key)
            if shelf is not None and "unshelved" not in alert.evidence:
                alert.evidence["shelved_until"] = iso(shelf.until)
                alert.evidence["shelved_by"] = shelf.by
            self.active[key] = alert
            return True
        if self.suppressed.pop(key, None) is not None:
            return False  # its raise was never published: nor is its clear
        self.active.pop(key, None)
        return True

    def release(self, link: str) -> list[Key]:
        """The link alarm `link` cleared: the keys it held back, forgotten here (the owner re-arms them)."""
        keys = [k for k, (by, _) in self.suppressed.items() if by == link]
        for k in keys:
            del self.suppressed[k]
        return keys

    def restore(self, alarms: list[dict[str, Any]]) -> None:
        """Alarms active before a restart (read back from the broker), ack marks included."""
        for d in alarms:
            a = alert_from_dict(d)
            self.active[a.key] = a

    def clear_orphan(self, d: dict[str, Any], reason: str) -> None:
        """A retained alarm nothing here will ever clear: cleared now, and journaled why."""
        a = alert_from_dict(d)
        now = time.time()
        self.active.pop(a.key, None)
        self.counts["orphans_cleared"] += 1
        self.on_event(
            AlarmEvent(now, "orphan_cleared", a.key, "gateway", reason, {"alert_id": a.id, "severity": str(a.severity)})
        )
        ev = {k: v for k, v in a.evidence.items() if k not in _ACK_FIELDS}
        ev["cleared_because"] = reason
        self.emit(Alert(*a.key, AlertState.CLEARED, Severity.INFO, now, ev, f"cleared: {reason}", raised_at=a.raised_at or a.ts))

    # -- commands (MQTT and the page: Gateway.alarm_command)

    def command(self, name: str, c: AlarmCommand) -> tuple[bool, str]:
        """Apply one parsed command; (ok, reason). Refused commands change nothing."""
        if name == "ack":
            return self._ack(c)
        if name == "clear":
            return self._clear(c)
        if name == "shelve":
            return self._shelve(c)
        if name == "unshelve":
            return self._unshelve(c)
        return False, f"unknown command {name!r}"

    def _known(self, c: AlarmCommand) -> str | None:
        """Why the alarm named is not one this gateway could have (None: it could)."""
        if c.key in self.active or c.key in self.suppressed:
            return None
        if c.asset != self.gateway and c.asset not in self._signals:
            return f"unknown asset {c.asset!r}"
        if c.asset in self._signals:
            if c.kind not in ENGINE_KINDS:
                return f"unknown kind {c.kind!r} (one of {', '.join(ENGINE_KINDS)})"
            if c.kind in SIGNAL_KINDS and c.source not in self._signals[c.asset]:
                return f"asset {c.asset!r} has no signal {c.source!r}"
        return None

    def _ack(self, c: AlarmCommand) -> tuple[bool, str]:
        a = self.active.get(c.key)
        if a is None:
            return False, self._known(c) or f"no active alarm {key_text(c.key)}"
        if "acked_by" in a.evidence:
            return True, f"already acknowledged by {a.evidence['acked_by']}"
        now = time.time()
        ev = {**{k: v for k, v in a.evidence.items() if k != "unshelved"}, "acked_by": c.by, "acked_at": iso(now)}
        if c.note:
            ev["ack_note"] = c.note
        self.counts["acked"] += 1
        self.on_event(AlarmEvent(now, "acked", c.key, c.by, c.note, {"alert_id": a.id, "severity": str(a.severity)}))
        # re-published (retained) with acked_by / acked_at, upstream too; notify sends nothing for it
        self.emit(Alert(*a.key, AlertState.RAISED, a.severity, a.ts, ev, a.message, raised_at=a.raised_at))
        return True, "acknowledged"

    def _clear(self, c: AlarmCommand) -> tuple[bool, str]:
        a = self.active.get(c.key)
        if a is None:
            return False, self._known(c) or f"no active alarm {key_text(c.key)}"
        why = self.holds(c.key)
        if why:
            return False, f"refused while the condition owns the alarm: {why}"
        self.forget(c.key)
        now = time.time()
        ev = {k: v for k, v in a.evidence.items() if k not in _ACK_FIELDS and k not in _SHELF_FIELDS}
        ev["cleared_by"] = c.by
        if c.note:
            ev["clear_note"] = c.note
        self.counts["cleared"] += 1
        self.on_event(AlarmEvent(now, "cleared", c.key, c.by, c.note, {"alert_id": a.id, "severity": str(a.severity)}))
        msg = f"{a.kind} {a.source} cleared by {c.by}" + (f": {c.note}" if c.note else "")
        self.emit(Alert(*a.key, AlertState.CLEARED, Severity.INFO, now, ev, msg, raised_at=a.raised_at or a.ts))
        return True, "cleared"

    def _shelve(self, c: AlarmCommand) -> tuple[bool, str]:
        why = self._known(c)
        if why:
            return False, why
        assert c.duration_s is not None  # parse() refuses a shelve without it
        now = time.time()
        until = now + c.duration_s
        self.shelves.put(c.key, Shelf(until, c.by, c.note))
        a = self.active.get(c.key)
        detail = {"until": iso(until), "duration_s": c.duration_s, "severity": str(a.severity) if a else ""}
        self.on_event(AlarmEvent(now, "shelved", c.key, c.by, c.note, detail))
        return True, f"shelved until {iso(until)}"

    def _unshelve(self, c: AlarmCommand) -> tuple[bool, str]:
        if self.shelves.pop(c.key) is None:
            return False, self._known(c) or f"alarm {key_text(c.key)} is not shelved"
        self._shelf_ended(c.key, "unshelved", c.by, c.note)
        return True, "unshelved"

    def tick(self, now: float) -> None:
        """Shelves that ran out (the gateway's 1 s ticker)."""
        for key in self.shelves.expired(now):
            self._shelf_ended(key, "shelf_expired")

    def _shelf_ended(self, key: Key, event: str, by: str = "", note: str = "") -> None:
        """Journaled; an alarm whose raise the shelf held back is published again without the mark."""
        a = self.active.get(key)
        self.on_event(AlarmEvent(time.time(), event, key, by, note, {"severity": str(a.severity) if a else ""}))
        if a is None or "shelved_until" not in a.evidence or "acked_by" in a.evidence:
            return
        ev = {k: v for k, v in a.evidence.items() if k not in _SHELF_FIELDS}
        ev["unshelved"] = True
        self.emit(Alert(*a.key, AlertState.RAISED, a.severity, a.ts, ev, a.message, raised_at=a.raised_at))

    def stats(self) -> dict[str, Any]:
        return {
            "active": len(self.active),
            "suppressed_now": len(self.suppressed),
            "shelved": len(self.shelves.table),
            **self.counts,
        }


def _nothing(key: Key) -> str | None:
    return None


def _ignore(key: Key) -> None:
    return None
