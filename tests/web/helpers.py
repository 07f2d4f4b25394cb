"""The page's test rig: the example gateway in-process with `web:` on a free port, two users."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from edgegw.gateway import Gateway
from edgegw.web.auth import User, hash_password, write_users
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
