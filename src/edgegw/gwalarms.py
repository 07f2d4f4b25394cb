"""Alarms about the gateway itself that only the running process can judge: `config_rejected`
(reload.py) and `client_id_clash` (runtime.supervise sees the churn). Asset = the gateway id.
Each is raised once and cleared once; one left retained by an earlier run is cleared at start,
since a new process judges afresh (it raises the alarm again if the cause is still there)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from edgegw.records import Alert, AlertState, Severity
from edgegw.runtime import Link

KINDS = ("config_rejected", "client_id_clash")


class GatewayAlarms:
    def __init__(self, gateway_id: str, emit: Callable[[Alert], None]) -> None:
        self.gateway_id = gateway_id
        self._emit = emit
        self.active: dict[tuple[str, str], float] = {}  # (kind, source) -> raised at (wall clock)
        self.links: dict[str, Link] = {}

    def watch(self, links: list[Link], steady_after_s: float = 60.0) -> None:
        """Raise `client_id_clash` for a link that keeps being dropped soon after connecting;
        clear it once the link has stayed up `steady_after_s` (see `tick`)."""
        self.steady_after_s = steady_after_s
        for lk in links:
            self.links[lk.name] = lk
            lk.on_churn = self._churn

    def _churn(self, link: Link) -> None:
        self.raise_(
            "client_id_clash",
            link.name,
            f"{link.name} keeps being dropped soon after connecting: likely another client with the same client id "
            f"(another gateway with id {self.gateway_id}?)",
            {"link": link.name, "at": link.where, "sessions": link.short_sessions, "error": link.last_error},
        )

    def tick(self) -> None:
        """Each second: a churning link that has now stayed up long enough clears its alarm."""
        now = time.monotonic()
        for kind, source in list(self.active):
            lk = self.links.get(source)
            if kind == "client_id_clash" and lk is not None and lk.connected and now - lk.up_since >= self.steady_after_s:
                lk.short_sessions = 0
                self.clear(kind, source, f"{source} steady again", {"link": source})

    def raise_(self, kind: str, source: str, message: str, evidence: dict[str, Any]) -> None:
        if (kind, source) in self.active:
            return
        a = self._alert(kind, source, AlertState.RAISED, message, evidence)
        self.active[(kind, source)] = a.ts
        self._emit(a)

    def clear(self, kind: str, source: str, message: str, evidence: dict[str, Any] | None = None) -> None:
        raised = self.active.pop((kind, source), None)
        if raised is None:
            return
        a = self._alert(kind, source, AlertState.CLEARED, message, evidence or {})
        a.raised_at = raised
        self._emit(a)

    def restored(self, alarms: list[dict[str, Any]]) -> None:
        for d in alarms:
            kind, source = d.get("kind"), d.get("source")
            if (
                d.get("asset") == self.gateway_id
                and kind in KINDS
                and isinstance(source, str)
                and (kind, source) not in self.active
            ):
                self._emit(self._alert(kind, source, AlertState.CLEARED, f"{kind} cleared: the gateway restarted", {}))

    def _alert(self, kind: str, source: str, state: AlertState, message: str, evidence: dict[str, Any]) -> Alert:
        severity = Severity.WARNING if state == AlertState.RAISED else Severity.INFO
        return Alert(self.gateway_id, kind, source, state, severity, time.time(), evidence, message)
