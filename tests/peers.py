"""Real peers on free loopback ports, never mocks: a mosquitto broker, an asyncua server of pumps
(security None or Basic256Sha256 with generated certificates, optional user names) and an aiocoap
device with observable resources; all stoppable and restartable on the same port.

The tests (through the fixtures in tests/conftest.py) and the benchmarks use the same ones.
Plain classes with no pytest in them: a benchmark script imports this module too.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
SIGNALS = ("vibration", "pressure", "temperature", "flow", "current")


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 5.0) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


async def until(pred: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll until pred() is truthy and return it; the timeout only keeps a broken test from hanging."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        await asyncio.sleep(0.02)
    raise AssertionError(f"{what} not reached in {timeout} s")


# ---------------------------------------------------------------- MQTT


@dataclass
class Broker:
    """A mosquitto process; stop() and start() keep the same port (and persistence dir if any).

    max_queued_messages 0: the default of 1000 drops messages, even at QoS 1, when a subscriber
    falls behind; TCP_NODELAY as every MQTT socket of the gateway sets it.
    """

    port: int
    workdir: Path
    extra_conf: str = ""
    persist: bool = False
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def conf(self) -> Path:
        return self.workdir / f"mosquitto-{self.port}.conf"

    def start(self) -> Broker:
        if MOSQUITTO is None:
            raise RuntimeError("mosquitto is not installed (./edgegw.sh test installs it)")
        keep = (
            f"persistence true\npersistence_location {self.workdir}/\nautosave_interval 1\n"
            if self.persist
            else "persistence false\n"
        )
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n"
            f"set_tcp_nodelay true\n{keep}{self.extra_conf}"
        )
        with open(self.workdir / f"mosquitto-{self.port}.log", "ab") as log:  # the child keeps its own copy
            self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=log, stderr=log)
        wait_port(self.port)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


# ---------------------------------------------------------------- certificates (OPC UA identities, a TLS PKI)


@dataclass
class Certs:
    client_cert: Path
    client_key: Path
    server_cert: Path
    server_key: Path
    other_cert: Path  # a second server identity: pinning it must refuse the real server
    other_key: Path


def make_certs(d: Path) -> Certs:
    """A client identity and two server identities (same application URI) under `d`."""
    from edgegw.certs import make_app_certificate

    cc, ck = make_app_certificate(d / "client.der", d / "client.pem", "urn:test:edgegw")
    sc, sk = make_app_certificate(d / "server.der", d / "server.pem", "urn:test:pumps", server=True)
    oc, ok = make_app_certificate(d / "other.der", d / "other.pem", "urn:test:pumps", server=True)
    return Certs(cc, ck, sc, sk, oc, ok)


def _write(path: Path, key: Any, cert: Any) -> None:
    from cryptography.hazmat.primitives import serialization

    path.with_suffix(".pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    for p in (path.with_suffix(".pem"), path.with_suffix(".key")):
        p.chmod(0o644)  # mosquitto may drop to its own user


def make_pki(d: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA
    (PEM files under `d`: ca, server, client and their keys)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "edgegw test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write(d / "ca", ca_key, ca)

    def leaf(name: str, san: list[Any] | None) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        b = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        )
        if san:
            b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
        _write(d / name, key, b.sign(ca_key, hashes.SHA256()))

    leaf("server", [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")])
    leaf("client", None)
    return {n: d / f"{n}.{ext}" for n in ("ca", "server", "client") for ext in ("pem",)} | {
        "server_key": d / "server.key",
        "client_key": d / "client.key",
    }


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
    """A SenML JSON pack of `values` for `asset`, stamped `t` (now by default)."""
    recs: list[dict[str, Any]] = []
    for i, (k, v) in enumerate(values.items()):
        r: dict[str, Any] = {"n": k, "v": v}
        if i == 0:
            r.update(bn=f"{asset}/", bt=t if t is not None else time.time())
        recs.append(r)
    return json.dumps(recs).encode()
