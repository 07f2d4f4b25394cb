"""Real protocol peers for the source tests: an asyncua server (security None or Basic256Sha256
with generated certificates, optional user names) and an aiocoap device with observable
resources; both on free loopback ports, both stoppable and restartable on the same port.
`Recorder` stands in for the intake where a test looks at the values a source hands over."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from edgegw.records import Quality
from tests.conftest import free_port

SIGNALS = ("vibration", "pressure", "temperature", "flow", "current")


class Recorder:
    """The intake's interface, keeping what it is given."""

    def __init__(self) -> None:
        self.values: list[tuple[str, str, float, float, Quality]] = []
        self.rejected: dict[str, int] = {}
        self.messages_in = 0

    def put(self, asset: str, signal: str, ts: float, value: float, quality: Quality = Quality.GOOD) -> None:
        self.values.append((asset, signal, ts, value, quality))

    def message(self, nbytes: int = 0) -> None:
        self.messages_in += 1

    def reject(self, reason: str, **detail: Any) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1

    def ts_ok(self, ts: float, now: float) -> bool:
        return math.isfinite(ts) and 946684800.0 <= ts <= now + 300

    def of(self, asset: str, signal: str) -> list[tuple[float, float, Quality]]:
        return [(t, v, q) for a, s, t, v, q in self.values if a == asset and s == signal]


async def wait_until(pred: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll until pred() is truthy; the timeout only keeps a broken test from hanging."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        await asyncio.sleep(0.02)
    raise AssertionError(f"{what} not reached in {timeout} s")


# ---------------------------------------------------------------- certificates


@dataclass
class Certs:
    client_cert: Path
    client_key: Path
    server_cert: Path
    server_key: Path
    other_cert: Path  # a second server identity: pinning it must refuse the real server
    other_key: Path


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    from edgegw.certs import make_app_certificate

    d = tmp_path_factory.mktemp("pki")
    cc, ck = make_app_certificate(d / "client.der", d / "client.pem", "urn:test:edgegw")
    sc, sk = make_app_certificate(d / "server.der", d / "server.pem", "urn:test:pumps", server=True)
    oc, ok = make_app_certificate(d / "other.der", d / "other.pem", "urn:test:pumps", server=True)
    return Certs(cc, ck, sc, sk, oc, ok)


# ---------------------------------------------------------------- OPC UA


class OpcuaPumpServer:
    """An asyncua server exposing Objects/Pumps/<asset>/<signal> (ns=2;s=<asset>.<signal>)."""

    def __init__(
        self,
        port: int,
        assets: tuple[str, ...],
        secure: Certs | None = None,
        users: dict[str, str] | None = None,
        policies: tuple[str, ...] = ("Basic256Sha256_SignAndEncrypt",),
    ) -> None:
        self.port = port
        self.policies = policies
        self.assets = assets
        self.secure = secure
        self.users = users
        self.server: Any = None
        self.vars: dict[str, Any] = {}
        self.ns = 2

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://127.0.0.1:{self.port}/pumps"

    async def start(self) -> OpcuaPumpServer:
        from asyncua import Server, ua
        from asyncua.crypto.permission_rules import User, UserRole
        from asyncua.server.user_managers import UserManager

        users = self.users

        class Passwords(UserManager):
            def get_user(self, iserver: Any, username: Any = None, password: Any = None, certificate: Any = None) -> Any:
                if users is None or (username in users and users[username] == password):
                    return User(role=UserRole.User)
                return None

        server = Server(user_manager=Passwords())
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_server_name("test pumps")
        if self.secure is not None:
            await server.set_application_uri("urn:test:pumps")
            await server.load_certificate(str(self.secure.server_cert))
            await server.load_private_key(str(self.secure.server_key))
            server.set_security_policy([getattr(ua.SecurityPolicyType, p) for p in self.policies])
        else:
            server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        if users is not None:
            server.set_identity_tokens([ua.UserNameIdentityToken])
        self.ns = await server.register_namespace("urn:test:pumps:model")
        pumps = await server.nodes.objects.add_folder(ua.NodeId("Pumps", self.ns), ua.QualifiedName("Pumps", self.ns))
        for asset in self.assets:
            obj = await pumps.add_object(ua.NodeId(asset, self.ns), ua.QualifiedName(asset, self.ns))
            for s in SIGNALS:
                var = await obj.add_variable(
                    ua.NodeId(f"{asset}.{s}", self.ns), ua.QualifiedName(s, self.ns), 0.0, ua.VariantType.Double
                )
                self.vars[f"{asset}.{s}"] = var
        await server.start()
        self.server = server
        return self

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None

    async def write(
        self, asset: str, signal: str, value: float, *, bad: bool = False, source_ts: dt.datetime | None = None
    ) -> None:
        from asyncua import ua

        var = self.vars[f"{asset}.{signal}"]
        if bad:
            dv = ua.DataValue(
                StatusCode=ua.StatusCode(ua.StatusCodes.BadSensorFailure), SourceTimestamp=source_ts or dt.datetime.now(dt.UTC)
            )
        else:
            dv = ua.DataValue(
                ua.Variant(float(value), ua.VariantType.Double), SourceTimestamp=source_ts or dt.datetime.now(dt.UTC)
            )
        await self.server.write_attribute_value(var.nodeid, dv)


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


# ---------------------------------------------------------------- CoAP device


class CoapDevice:
    """An aiocoap server with an observable SenML resource per asset (pumps/<asset>) and a plain,
    non-observable one (plain/<asset>); `notify()` pushes a new pack to observers."""

    def __init__(self, port: int, assets: tuple[str, ...]) -> None:
        self.port = port
        self.assets = assets
        self.ctx: Any = None
        self.resources: dict[str, Any] = {}
        self.plain: dict[str, Any] = {}

    async def start(self) -> CoapDevice:
        import aiocoap
        from aiocoap import resource

        class Plain(resource.Resource):
            """GET only: a device without observe support."""

            def __init__(self, asset: str, max_age: int | None) -> None:
                super().__init__()
                self.asset = asset
                self.max_age = max_age
                self.payload = b""
                self.cf = 110
                self.gets = 0

            async def render_get(self, request: Any) -> Any:
                self.gets += 1
                return aiocoap.Message(payload=self.payload, content_format=self.cf, max_age=self.max_age)

        class Pack(Plain, resource.ObservableResource):
            """Observable: notifies on `updated_state()`."""

            def __init__(self, asset: str, max_age: int | None) -> None:
                super().__init__(asset, max_age)
                self.observers = 0

            def update_observation_count(self, newcount: int) -> None:
                self.observers = newcount

        site = resource.Site()
        for a in self.assets:
            self.resources[a] = Pack(a, 2)
            site.add_resource(("pumps", a), self.resources[a])
            self.plain[a] = Plain(a, None)
            site.add_resource(("plain", a), self.plain[a])
        for r in (*self.resources.values(), *self.plain.values()):
            r.payload = senml(r.asset, vibration=3.0)
        self.ctx = await aiocoap.Context.create_server_context(site, bind=("127.0.0.1", self.port), transports=["udp6"])
        return self

    def notify(self, asset: str, payload: bytes, cf: int = 110) -> None:
        for r in (self.resources[asset], self.plain[asset]):
            r.payload = payload
            r.cf = cf
        self.resources[asset].updated_state()

    async def stop(self) -> None:
        if self.ctx is not None:
            await self.ctx.shutdown()
            self.ctx = None


def senml(asset: str, t: float | None = None, **values: float) -> bytes:
    import json

    recs: list[dict[str, Any]] = []
    for i, (k, v) in enumerate(values.items()):
        r: dict[str, Any] = {"n": k, "v": v}
        if i == 0:
            r.update(bn=f"{asset}/", bt=t if t is not None else time.time())
        recs.append(r)
    return json.dumps(recs).encode()


@pytest.fixture
async def coap_device_factory() -> AsyncIterator[Callable[..., Any]]:
    made: list[CoapDevice] = []

    async def make(assets: tuple[str, ...] = ("pump-1",), port: int | None = None) -> CoapDevice:
        d = CoapDevice(port or free_port(socket.SOCK_DGRAM), assets)
        made.append(d)
        return await d.start()

    yield make
    for d in made:
        await d.stop()
