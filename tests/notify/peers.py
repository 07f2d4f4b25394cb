"""Real peers for the notification tests: an SMTP server (aiosmtpd) and an HTTP receiver, each
in a thread of its own, on free loopback ports; and the example config with a `notify:` section."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from edgegw.config import GatewayConfig, load_config
from edgegw.notify.dispatch import Notifier
from edgegw.records import Alert, AlertState, Severity
from tests.helpers import EXAMPLE, example_config
from tests.peers import free_port


class Mailbox:
    """aiosmtpd handler: keeps every accepted message, parsed."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.on_data: Callable[[], None] | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.on_data is not None:
            self.on_data()
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))  # type: ignore[arg-type]
        return "250 OK"

    def texts(self) -> list[str]:
        out = []
        for m in self.messages:
            body = m.get_body(("plain",))
            out.append(body.get_content() if body is not None else "")
        return out


class Smtp:
    """A real SMTP server; stop() and start() keep the port (an outage and the server's return)."""

    def __init__(self, **kw: Any) -> None:
        self.port = free_port()
        self.box = Mailbox()
        self.kw = kw
        self.controller: Controller | None = None

    def start(self) -> Smtp:
        self.controller = Controller(self.box, hostname="127.0.0.1", port=self.port, **self.kw)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


class Hook:
    """An HTTP receiver; `statuses` are answered in turn (the last one repeats); a body holding
    `refuse` gets 422."""

    def __init__(self, statuses: list[int] | None = None, refuse: bytes | None = None) -> None:
        self.port = free_port()
        self.statuses = statuses or [200]
        self.requests: list[tuple[int, dict[str, str], bytes]] = []  # (status answered, headers, body)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                n = len(outer.requests)
                status = outer.statuses[min(n, len(outer.statuses) - 1)]
                if refuse is not None and refuse in body:
                    status = 422
                outer.requests.append((status, dict(self.headers.items()), body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def accepted(self) -> list[Any]:
        return [json.loads(b) for s, _, b in self.requests if 200 <= s < 300]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


SITES: list[tuple[int, str]] = []  # (broker port, site) whose retained alarms a test may leave behind


def unique_gateway(broker_port: int) -> GatewayConfig:
    """A gateway id and site of a test's own; its retained alarms are deleted after the test."""
    base = example_config(broker_port)
    SITES.append((broker_port, base.gateway.site))
    return base


async def clear_retained(port: int, topic_filter: str) -> None:
    """Delete the retained messages under `topic_filter`: other tests subscribe to alerts/#."""
    import aiomqtt

    with contextlib.suppress(aiomqtt.MqttError):
        async with aiomqtt.Client("127.0.0.1", port, timeout=2) as c:
            topics: list[str] = []

            async def collect() -> None:
                async for m in c.messages:
                    if m.retain and m.payload:
                        topics.append(m.topic.value)

            await c.subscribe(topic_filter, qos=1)
            task = asyncio.create_task(collect())
            await asyncio.sleep(0.3)
            task.cancel()
            for t in topics:
                await c.publish(t, b"", qos=1, retain=True)


def notify_config(tmp_path: Path, broker_port: int, section: Any, *overrides: str) -> GatewayConfig:
    """The example config with `notify:` (the section as YAML flow) and no alarm delays."""
    f = tmp_path / "gw.yaml"
    f.write_text(EXAMPLE.read_text() + f"\nnotify: {json.dumps(section)}\n")
    base = unique_gateway(broker_port)
    return load_config(
        f,
        [
            f"mqtt.port={broker_port}",
            "profiles.pump.model=null",
            f"gateway.id={base.gateway.id}",
            f"gateway.site={base.gateway.site}",
            *[
                f"profiles.pump.signals.{s}.{d}=0"
                for s in ("vibration", "pressure", "temperature", "flow", "current")
                for d in ("on_delay_s", "off_delay_s")
            ],
            *overrides,
        ],
    )


def stale(asset: str, signal: str) -> Alert:
    a = Alert(
        asset,
        "stale",
        signal,
        AlertState.RAISED,
        Severity.WARNING,
        time.time(),
        {"signal": signal, "silent_s": 12.0, "limit": 10.0},
        f"{signal} silent for 12.0 s",
    )
    a.id, a.gateway, a.site = uuid.uuid4().hex, "gw-pacing", "plant"
    return a


@contextlib.asynccontextmanager
async def notifier(tmp_path: Path, target: dict[str, Any]) -> AsyncIterator[Notifier]:
    section = {
        "state_dir": str(tmp_path / "state"),
        "commands": {"enabled": False},
        "journal": {"enabled": False},
        "targets": [target],
    }
    n = Notifier(notify_config(tmp_path, 1883, section))
    task = asyncio.create_task(n.run())
    try:
        yield n
    finally:
        await n.close()
        await asyncio.wait_for(task, 5)


def email_target(smtp: Smtp, smtp_opts: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    """An email target on the test SMTP server; `smtp_opts` add to its `smtp:` block, `kw` to the target."""
    return {
        "type": "email",
        "smtp": {"host": "127.0.0.1", "port": smtp.port, **(smtp_opts or {})},
        "from": "gw@plant.example",
        "to": ["ops@plant.example"],
        **kw,
    }
