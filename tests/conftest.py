"""Shared fixtures: real peers (tests/peers.py) on free loopback ports, never mocks.

`mosquitto` starts a real broker per test session. `broker_factory` starts extra brokers (e.g.
an upstream one) that a test may stop and start again. `opcua_server_factory` and
`coap_device_factory` start asyncua servers and aiocoap devices stopped at teardown; `certs`
makes the OPC UA identities once per session. `state_directory` (every test) is where state
goes: never /var/lib/edgegw.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.peers import MOSQUITTO, Broker, Certs, CoapDevice, OpcuaPumpServer, free_port, make_certs


@pytest.fixture(autouse=True)
def state_directory(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test, and every daemon it starts, keeps state in a temporary directory of its own: the
    default state directory is $STATE_DIRECTORY, else /var/lib/edgegw, which may exist here."""
    d = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("STATE_DIRECTORY", str(d))
    return d


def _need_mosquitto() -> None:
    if MOSQUITTO is None:
        pytest.skip("mosquitto is not installed (./edgegw.sh test installs it)")


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """One real broker for the whole session; tests use their own topics/assets."""
    _need_mosquitto()
    d = tmp_path_factory.mktemp("mosq")
    d.chmod(0o777)
    b = Broker(free_port(), d).start()
    yield b
    b.stop()


@pytest.fixture
def broker_factory(tmp_path: Path) -> Iterator[type]:
    """Start extra brokers: broker_factory(persist=False, extra_conf='') -> Broker (stopped at teardown)."""
    _need_mosquitto()
    made: list[Broker] = []
    tmp_path.chmod(0o777)

    def make(persist: bool = False, extra_conf: str = "", port: int | None = None) -> Broker:
        d = tmp_path / f"b{len(made)}"
        d.mkdir()
        d.chmod(0o777)
        b = Broker(port or free_port(), d, extra_conf=extra_conf, persist=persist).start()
        made.append(b)
        return b

    yield make  # type: ignore[misc]
    for b in made:
        b.stop()


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("pki"))


@pytest.fixture
async def opcua_server_factory() -> AsyncIterator[Callable[..., Any]]:
    """opcua_server_factory(assets, secure=None, users=None, port=None, policies=...) -> started server."""
    made: list[OpcuaPumpServer] = []

    async def make(
        assets: tuple[str, ...] = ("pump-1",),
        secure: Certs | None = None,
        users: dict[str, str] | None = None,
        port: int | None = None,
        policies: tuple[str, ...] = ("Basic256Sha256_SignAndEncrypt",),
    ) -> OpcuaPumpServer:
        s = OpcuaPumpServer(port or free_port(), assets, secure, users, policies)
        made.append(s)
        return await s.start()

    yield make
    for s in made:
        await s.stop()


@pytest.fixture
async def coap_device_factory() -> AsyncIterator[Callable[..., Any]]:
    """coap_device_factory(assets, port=None) -> started aiocoap device."""
    made: list[CoapDevice] = []

    async def make(assets: tuple[str, ...] = ("pump-1",), port: int | None = None) -> CoapDevice:
        d = CoapDevice(port or free_port(socket.SOCK_DGRAM), assets)
        made.append(d)
        return await d.start()

    yield make
    for d in made:
        await d.stop()
