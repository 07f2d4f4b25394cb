"""The page's web server: an aiohttp Application on the gateway's own loop, run as a sink.

`WebServer` is a `Sink`, so the gateway's fan-out reaches `LiveState` the way it reaches the
local broker, and `run()` is a supervised session (`runtime.supervise`): a port that is taken is
retried with backoff and never takes the daemon down. Static files are gzip-compressed once at
start and served under a versioned path with a year's cache; the HTML itself is never cached.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import mimetypes
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from edgegw.alarms.commands import AlarmCommand
from edgegw.backoff import Backoff
from edgegw.config import GatewayConfig
from edgegw.config.web import WebConfig, is_loopback
from edgegw.records import AlarmEvent, Alert, HopResult, Rollup
from edgegw.runtime import Link, supervise
from edgegw.web.auth import LoginPacer, Sessions, Users, default_users_file, load_key
from edgegw.web.live import LiveState
from edgegw.web.trends import HistoryReader

log = structlog.get_logger("edgegw.web")

STATIC = ("app.js", "app.css", "uPlot.iife.min.js", "uPlot.min.css", "uPlot.LICENSE")


@dataclass
class GatewayPort:
    """What the page asks of the gateway: its figures, the alarm command handler (the one MQTT
    commands use; None when the gateway has none), and the history file (None: history off)."""

    info: Callable[[], dict[str, Any]]
    command: Callable[[str, AlarmCommand], tuple[bool, str]] | None = None
    history: Path | None = None
    shelved_until: Callable[[tuple[str, str, str]], float | None] | None = None  # the shelves kept across restarts


class Static:
    """The package's static files, each held raw and gzipped, with a version for the URLs."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, bytes, str]] = {}
        h = hashlib.sha256()
        root = resources.files("edgegw.web") / "static"
        for name in STATIC:
            raw = (root / name).read_bytes()
            h.update(raw)
            ctype = "text/plain" if name.endswith("LICENSE") else (mimetypes.guess_type(name)[0] or "application/octet-stream")
            self.files[name] = (raw, gzip.compress(raw, 9, mtime=0), ctype)
        self.version = h.hexdigest()[:12]

    def response(self, request: web.Request, name: str) -> web.Response:
        got = self.files.get(name)
        if got is None:
            raise web.HTTPNotFound()
        raw, gz, ctype = got
        headers = {"Cache-Control": "public, max-age=31536000, immutable", "Vary": "Accept-Encoding"}
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            headers["Content-Encoding"] = "gzip"
            return web.Response(body=gz, content_type=ctype, headers=headers)
        return web.Response(body=raw, content_type=ctype, headers=headers)


def tls_context(w: WebConfig) -> ssl.SSLContext | None:
    if w.tls is None:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(w.tls.cert_file, w.tls.key_file)
    return ctx


class WebServer:
    """The page as a sink: LiveState takes the fan-out, the session serves HTTP."""

    name = "web"

    def __init__(self, cfg: GatewayConfig, port: GatewayPort, state_dir: Path | None) -> None:
        assert cfg.web is not None
        self.cfg = cfg
        self.web = cfg.web
        self.port = port
        self.live = LiveState(cfg, cfg.web.sse_queue, port.shelved_until)
        self.users = Users(default_users_file(cfg.web.users_file, state_dir))
        self.sessions = Sessions(load_key(self.users.path.with_name(self.users.path.name + ".key")), cfg.web.session_hours * 3600)
        self.static = Static()
        self.history = HistoryReader(port.history, cfg.history.fine_s) if port.history is not None else None
        self.pacer = LoginPacer(cfg.web.login_attempts_per_min)
        self.link = Link("web", cfg.web.listen)
        self.started = time.time()
        self.bound: tuple[str, int] | None = None
        self.stopping = asyncio.Event()
        self._closing = False

    # -- the Sink protocol

    @property
    def connected(self) -> bool:
        return self.link.connected

    def alert(self, alert: Alert) -> None:
        self.live.alert(alert)

    def hop(self, result: HopResult) -> None:
        self.live.hop(result)

    def event(self, event: AlarmEvent) -> None:
        self.live.event(event)

    def rollup(self, rollup: Rollup) -> None:
        pass

    def stats(self) -> dict[str, Any]:
        return {**self.link.stats(), "clients": len(self.live.clients), "resyncs": self.live.resyncs}

    @property
    def url(self) -> str:
        host, port = self.bound or (self.web.host, self.web.port)
        host = f"[{host}]" if ":" in host else host
        return f"{'https' if self.web.tls else 'http'}://{host}:{port}/"

    async def run(self) -> None:
        w = self.web
        if not is_loopback(w.host) and w.tls is None:
            log.warning("the page listens beyond this machine without TLS: set web.tls (cert_file, key_file)", listen=w.listen)
        if w.anonymous == "viewer":
            log.warning("web.anonymous: viewer: anyone who reaches the page sees the plant without logging in")
        if len(self.users) == 0 and w.anonymous == "off":
            log.warning("the page has no users yet: edgegw users add NAME --role operator", users_file=str(self.users.path))
        await supervise(self.link, self._session, Backoff(), stopping=lambda: self._closing, stop=self.stopping)

    async def _session(self, link: Link) -> None:
        from edgegw.web.api import build_app

        runner = web.AppRunner(build_app(self), access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.web.host, self.web.port, ssl_context=tls_context(self.web))
            await site.start()
            self.bound = _bound(runner) or (self.web.host, self.web.port)
            link.up(url=self.url)
            link.progress()
            await self.stopping.wait()
        finally:
            self._stop_streams()
            await runner.cleanup()

    def _stop_streams(self) -> None:
        for c in list(self.live.clients):
            c.wake.set()

    async def close(self, timeout: float) -> None:
        self._closing = True
        self.stopping.set()


def _bound(runner: web.AppRunner) -> tuple[str, int] | None:
    for addr in runner.addresses:
        if isinstance(addr, tuple) and len(addr) >= 2:
            return str(addr[0]), int(addr[1])
    return None


def build(cfg: GatewayConfig, port: GatewayPort, state_dir: Path | None) -> WebServer:
    return WebServer(cfg, port, state_dir)
