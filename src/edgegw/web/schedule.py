"""`report: {every, to}`: the report of the last period, mailed through notify's email targets.

Durable like a notification: when a report is due it is written to `<state_dir>/reports/` with a
`.pending` note of the targets still to get it, before the first send; each target that takes it
is crossed off, and whatever is left is sent again after an outage or a restart (the same
Message-ID per report and target, so a resend can be de-duplicated). The next due time is kept in
`reports/next`, so a restart neither skips nor repeats a report. A sink of the gateway's fan-out
(it ignores what flows) run as a supervised session: an SMTP server away is retried with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import ssl
import time
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Any

import orjson
import structlog

from edgegw.backoff import Backoff
from edgegw.config import GatewayConfig
from edgegw.config.notify import EmailTarget
from edgegw.records import AlarmEvent, Alert, HopResult, Rollup, iso
from edgegw.runtime import Link, supervise

log = structlog.get_logger("edgegw.report")


class SendFailed(Exception):
    """A target did not take the report this time; it stays pending."""


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class ReportMailer:
    """Writes the report when due and mails it to each target until every one took it."""

    name = "report"

    def __init__(self, cfg: GatewayConfig, history: Path, state_dir: Path) -> None:
        assert cfg.report is not None and cfg.notify is not None
        self.cfg = cfg
        self.sched = cfg.report
        self.history = history
        self.folder = state_dir / "reports"
        targets = {t.name: t for t in cfg.notify.targets}
        self.targets: dict[str, EmailTarget] = {n: t for n in self.sched.to if isinstance(t := targets.get(n), EmailTarget)}
        self.link = Link("report", ", ".join(self.sched.to))
        self.sent = 0
        self.written = 0
        self._stop = asyncio.Event()
        self._closing = False

    # -- the Sink protocol: nothing of the fan-out is needed

    @property
    def connected(self) -> bool:
        return self.link.connected

    def alert(self, alert: Alert) -> None:
        pass

    def hop(self, result: HopResult) -> None:
        pass

    def event(self, event: AlarmEvent) -> None:
        pass

    def rollup(self, rollup: Rollup) -> None:
        pass

    def stats(self) -> dict[str, Any]:
        return {
            **self.link.stats(),
            "written": self.written,
            "sent": self.sent,
            "pending": len(self._pending()),
            "next": iso(self.next_at()),
        }

    async def close(self, timeout: float) -> None:
        self._closing = True
        self._stop.set()

    async def run(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        await supervise(
            self.link, self._session, Backoff(), stopping=lambda: self._closing, stop=self._stop, expected=(OSError, SendFailed)
        )

    # -- the schedule

    def next_at(self) -> float:
        try:
            return float((self.folder / "next").read_text())
        except (OSError, ValueError):
            every = self.sched.every_s
            return math.ceil(time.time() / every) * every

    def _pending(self) -> list[Path]:
        return sorted(self.folder.glob("*.pending")) if self.folder.is_dir() else []

    async def _session(self, link: Link) -> None:
        link.up()
        while not self._closing:
            await self._send_pending()
            link.progress()
            due = self.next_at()
            _write(self.folder / "next", f"{due}".encode())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), max(0.0, due - time.time()))
            if self._closing:
                return
            await asyncio.to_thread(self._make, due)

    def _make(self, until: float) -> None:
        """Write the report of [until - every, until) and its pending note, then the next due time."""
        from edgegw.web.report import build

        since = until - self.sched.every_s
        text = build(self.cfg, self.history, since, until, self.sched.assets or None)
        stamp = time.strftime("%Y%m%dT%H%MZ", time.gmtime(until))
        html = self.folder / f"report-{stamp}.html"
        _write(html, text.encode())
        note = {"file": html.name, "since": since, "until": until, "to": list(self.targets)}
        _write(self.folder / f"report-{stamp}.pending", orjson.dumps(note))
        _write(self.folder / "next", f"{until + self.sched.every_s}".encode())
        self.written += 1
        for old in sorted(self.folder.glob("report-*.html"))[: -self.sched.keep]:
            if not old.with_suffix(".pending").exists():
                old.unlink()
        log.info("report written", file=str(html), since=iso(since), until=iso(until))

    async def _send_pending(self) -> None:
        for note_path in self._pending():
            note = orjson.loads(note_path.read_bytes())
            html = (self.folder / note["file"]).read_bytes()
            for name in list(note["to"]):
                target = self.targets.get(name)
                if target is not None:
                    await self._send(target, note, html)
                    self.sent += 1
                note["to"].remove(name)
                _write(note_path, orjson.dumps(note))
            note_path.unlink()

    async def _send(self, t: EmailTarget, note: dict[str, Any], html: bytes) -> None:
        import aiosmtplib

        g = self.cfg.gateway
        span = f"{iso(note['since'])[:16]} – {iso(note['until'])[:16]} UTC"
        msg = EmailMessage()
        msg["Subject"] = f"{t.subject_prefix} report {g.id}: {span}".strip()
        msg["From"] = t.from_
        msg["To"] = ", ".join(t.to)
        msg["Date"] = formatdate(localtime=False)
        domain = "".join(c if c.isalnum() or c in "-." else "-" for c in g.id) or "gateway"
        msg["Message-ID"] = f"<{note['file'].removesuffix('.html')}.{t.name}@{domain}.edgegw>"
        msg.set_content(
            f"The edgegw report of gateway {g.id} (site {g.site}) for {span} is attached: open it in a browser,\n"
            "print it to PDF from there if you need one.\n"
        )
        msg.add_attachment(html, maintype="text", subtype="html", filename=note["file"])
        s = t.smtp
        kw: dict[str, Any] = {
            "hostname": s.host,
            "port": s.port_or_default,
            "timeout": t.timeout_s,
            "use_tls": s.ssl,
            "start_tls": False if s.ssl else s.starttls,
        }
        if s.ssl or s.starttls is not False:
            kw["tls_context"] = ssl.create_default_context(cafile=s.ca_file) if s.ca_file else ssl.create_default_context()
        if s.username:
            kw["username"] = s.username
            kw["password"] = s.password.get_secret_value() if s.password else None
        try:
            await aiosmtplib.send(msg, **kw)
        except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as e:
            raise SendFailed(f"report to {t.name} ({t.where}): {e}") from None
        log.info("report sent", target=t.name, file=note["file"])
