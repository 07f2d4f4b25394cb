"""The page's test rig: the example gateway in-process with `web:` on a free port, two users."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from edgegw.gateway import Gateway
from edgegw.web.auth import User, hash_password, write_users
from edgegw.web.server import GatewayPort, WebServer
from tests.helpers import example_config, running_gateway
from tests.peers import free_port

PASSWORDS = {"vera": "view-pass-123", "otto": "oper-pass-456"}


@dataclass
class Page:
    gw: Gateway
    url: str
    port: int  # the broker's


def make_users(path: Path) -> None:
    write_users(
        path,
        {
            "vera": User("vera", "viewer", hash_password(PASSWORDS["vera"])),
            "otto": User("otto", "operator", hash_password(PASSWORDS["otto"])),
        },
    )


@contextlib.asynccontextmanager
async def page_gateway(broker_port: int, tmp: Path, *overrides: str, web_port: int | None = None) -> AsyncIterator[Page]:
    users = tmp / "users"
    if not users.exists():
        make_users(users)
    web = web_port or free_port()
    cfg = example_config(
        broker_port,
        f"web.listen=127.0.0.1:{web}",
        f"web.users_file={users}",
        "profiles.pump.signals.vibration.on_delay_s=0",
        *overrides,
    )
    async with running_gateway(cfg) as gw:
        yield Page(gw, f"http://127.0.0.1:{web}", broker_port)


async def login(session: aiohttp.ClientSession, url: str, name: str) -> str:
    """Log in as `name`; the CSRF token of the new session."""
    async with session.post(
        f"{url}/login", data={"username": name, "password": PASSWORDS[name]}, headers={"Origin": url}, allow_redirects=False
    ) as r:
        assert r.status == 303, await r.text()
    async with session.get(f"{url}/api/me") as r:
        me = await r.json()
    assert me["user"] == name
    return str(me["csrf"])


def web_sink(tmp: Path) -> tuple[WebServer, str]:
    """The page's sink alone (no gateway), on a free port, with the two users."""
    make_users(tmp / "users")
    port = free_port()
    cfg = example_config(1883, f"web.listen=127.0.0.1:{port}", f"web.users_file={tmp / 'users'}")
    return WebServer(cfg, GatewayPort(dict), None), f"http://127.0.0.1:{port}"


class SseReader:
    """A logged-in viewer's event stream, opened at the first `saw()` (the server may not listen
    before): `saw(id)` is whether an alert with that id reached it, in a snapshot or an event."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.text = ""
        self._task: asyncio.Task[None] | None = None

    def saw(self, alert_id: str) -> bool:
        if self._task is None or (self._task.done() and alert_id not in self.text):
            self._task = asyncio.get_running_loop().create_task(self._read())
        return alert_id in self.text

    async def _read(self) -> None:
        with contextlib.suppress(aiohttp.ClientError):
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
                await login(s, self.url, "vera")
                async with s.get(self.url + "/api/events") as r:
                    async for chunk in r.content.iter_any():
                        self.text += chunk.decode()

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
