"""The bridge's transport security against a real mosquitto: TLS with a CA made here, mTLS, and
an upstream password that never shows in any log line."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from edgegw.config import GatewayConfig
from edgegw.gateway import Sequencer
from edgegw.records import Alert
from edgegw.sinks.bridge import Bridge
from tests.helpers import example_config, publish, threshold_alert
from tests.peers import free_port, make_pki, until
from tests.sinks.test_bridge import AS_INVOKER, Observer, cycles, start_daemon

pytest.importorskip("cryptography.x509")


def tls_broker(broker_factory: Any, pki: dict[str, Path], *, mtls: bool) -> tuple[Any, int]:
    """TLS on the fixture's listener; a second, plaintext listener for the observing consumer."""
    plain = free_port()
    conf = (
        f"{AS_INVOKER}cafile {pki['ca']}\ncertfile {pki['server']}\nkeyfile {pki['server_key']}\n"
        f"require_certificate {'true' if mtls else 'false'}\nlistener {plain} 127.0.0.1\n"
    )
    return broker_factory(extra_conf=conf), plain


def upstream_cfg(tmp_path: Path, port: int, *extra: str) -> GatewayConfig:
    return example_config(
        1883,
        "gateway.id=gw-tls",
        "upstream.host=127.0.0.1",
        f"upstream.port={port}",
        f"upstream.outbox.path={tmp_path}/outbox-{time.monotonic_ns()}.db",
        *extra,
    )


@contextlib.asynccontextmanager
async def running_bridge(cfg: GatewayConfig) -> AsyncIterator[Bridge]:
    b = Bridge(cfg, Sequencer())
    task = asyncio.create_task(b.run())
    try:
        yield b
    finally:
        await b.close(2.0)
        await asyncio.wait_for(task, 10)


def an_alert(seq: Sequencer) -> Alert:
    return threshold_alert(
        "p1", evidence={"value": 12.0}, id=os.urandom(8).hex(), seq=seq.next(), gateway="gw-tls", site="plant-a"
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("pki")
    d.chmod(0o755)
    return make_pki(d)


async def test_tls_refused_without_the_ca_works_with_it(broker_factory, pki, tmp_path: Path) -> None:
    broker, plain = tls_broker(broker_factory, pki, mtls=False)
    async with running_bridge(upstream_cfg(tmp_path, broker.port, "upstream.tls_enabled=true")) as b:
        await until(lambda: b.link.last_error and "CERTIFICATE_VERIFY_FAILED" in b.link.last_error)
        assert not b.connected and b.link.connects == 0, "the system store does not know the test CA"
    async with (
        Observer(plain, ident="tls-observer") as obs,
        running_bridge(upstream_cfg(tmp_path, broker.port, f"upstream.tls.ca_file={pki['ca']}")) as b,
    ):
        await until(lambda: b.connected)
        a = an_alert(b.seq)  # type: ignore[arg-type]
        b.alert(a)
        await obs.wait(lambda o: any(d["id"] == a.id for d in o.records()), 10)
    # the broker's certificate names 127.0.0.1, not this name: hostname verification refuses it
    async with running_bridge(
        example_config(
            1883,
            "upstream.host=localhost.localdomain",
            f"upstream.port={broker.port}",
            f"upstream.tls.ca_file={pki['ca']}",
            f"upstream.outbox.path={tmp_path}/h.db",
        )
    ) as b:
        await until(lambda: b.link.last_error is not None)
        assert not b.connected


async def test_mtls_client_certificate(broker_factory, pki, tmp_path: Path) -> None:
    broker, plain = tls_broker(broker_factory, pki, mtls=True)
    async with running_bridge(upstream_cfg(tmp_path, broker.port, f"upstream.tls.ca_file={pki['ca']}")) as b:
        await until(lambda: b.link.last_error is not None)
        assert not b.connected, "the broker wants a client certificate"
    async with (
        Observer(plain, ident="mtls-observer") as obs,
        running_bridge(
            upstream_cfg(
                tmp_path,
                broker.port,
                f"upstream.tls.ca_file={pki['ca']}",
                f"upstream.tls.cert_file={pki['client']}",
                f"upstream.tls.key_file={pki['client_key']}",
            )
        ) as b,
    ):
        await until(lambda: b.connected)
        a = an_alert(b.seq)  # type: ignore[arg-type]
        b.alert(a)
        await obs.wait(lambda o: any(d["id"] == a.id for d in o.records()), 10)


def test_plaintext_unless_tls_is_asked_for() -> None:
    assert not example_config(1883, "upstream.host=h", "upstream.port=1884").upstream.use_tls  # type: ignore[union-attr]
    assert example_config(1883, "upstream.host=h").upstream.use_tls  # type: ignore[union-attr]  # 8883
    assert example_config(1883, "upstream.host=h", "upstream.port=1884", "upstream.tls.ca_file=x").upstream.use_tls  # type: ignore[union-attr]
    assert not example_config(1883, "upstream.host=h", "upstream.tls_enabled=false").upstream.use_tls  # type: ignore[union-attr]


async def test_upstream_password_never_logged(mosquitto, broker_factory, tmp_path: Path) -> None:
    """Wrong password (refused), then the right one (works): debug logs of both runs hold no password."""
    import subprocess

    right, wrong = "Sesame-" + os.urandom(6).hex(), "Wrong-" + os.urandom(6).hex()
    pw = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(pw), "gw-secret", right], check=True, capture_output=True)
    subprocess.run(["mosquitto_passwd", "-b", str(pw), "cloud", "cloud-pw"], check=True, capture_output=True)
    pw.chmod(0o644)
    broker = broker_factory(extra_conf=f"{AS_INVOKER}allow_anonymous false\npassword_file {pw}\n")
    secret = tmp_path / "upstream-password"
    secret.write_text(right + "\n")
    common = (
        "gateway.id=gw-secret",
        f"mqtt.port={mosquitto.port}",
        "upstream.host=127.0.0.1",
        f"upstream.port={broker.port}",
        "upstream.username=gw-secret",
        "log.level=debug",
        "assets.0.id=secret-pump",
    )
    env_before = os.environ.get("EDGEGW_TEST_UP_PW")
    os.environ["EDGEGW_TEST_UP_PW"] = wrong
    try:
        gw = start_daemon(
            tmp_path, "wrong", *common, "upstream.password=${EDGEGW_TEST_UP_PW}", f"upstream.outbox.path={tmp_path}/a.db"
        )
        try:
            await until(lambda: "upstream unavailable" in (tmp_path / "wrong.log").read_text(), 20)
        finally:
            gw.terminate()
            gw.wait(10)
    finally:
        if env_before is None:
            os.environ.pop("EDGEGW_TEST_UP_PW", None)
        else:
            os.environ["EDGEGW_TEST_UP_PW"] = env_before
    async with Observer(broker.port, ident="secret-observer", auth=("cloud", "cloud-pw")) as obs:
        gw = start_daemon(tmp_path, "right", *common, f"upstream.password_file={secret}", f"upstream.outbox.path={tmp_path}/b.db")
        try:
            await until(
                lambda: all(e in (tmp_path / "right.log").read_text() for e in ("upstream connected", '"subscribed"')), 20
            )
            await publish(mosquitto.port, "plant/pumps/secret-pump/telemetry", cycles("secret-pump", 80))
            await obs.wait(lambda o: len([d for d in o.records("/alerts/") if d["kind"] == "threshold"]) >= 2, 20)
        finally:
            gw.terminate()
            gw.wait(10)
    logs = (tmp_path / "wrong.log").read_text() + (tmp_path / "right.log").read_text()
    assert "not authorised" in logs.lower() or "not authorized" in logs.lower(), logs[-2000:]
    assert right not in logs and wrong not in logs
    assert len(logs.splitlines()) > 10, "debug logging was on"


def test_console_tracebacks_show_no_local_variables() -> None:
    """A traceback rendered for a terminal must not print the frames' locals (a password is one)."""
    import subprocess
    import sys

    code = (
        "import structlog\n"
        "from edgegw.log import setup\n"
        "setup('info', 'console')\n"
        "def connect(password):\n"
        "    raise ValueError('boom')\n"
        "try:\n"
        "    connect('Sesame-in-a-frame')\n"
        "except ValueError:\n"
        "    structlog.get_logger('t').exception('failed')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    out = r.stdout + r.stderr
    assert "boom" in out and "Sesame-in-a-frame" not in out
