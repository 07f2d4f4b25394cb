"""STARTTLS with a CA of the plant's own (self-signed), and credentials from a file."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from edgegw.config import ConfigError
from tests.helpers import publish, pump, running_gateway
from tests.notify.peers import Smtp, email_target, notify_config
from tests.peers import make_pki, until


def make_ca_and_server(d: Path) -> tuple[Path, ssl.SSLContext]:
    """A CA, a server certificate for 127.0.0.1 signed by it; returns the CA file and the server context."""
    pki = make_pki(d)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(pki["server"], pki["server_key"])
    return pki["ca"], ctx


class Users:
    def __init__(self) -> None:
        self.logins: list[tuple[bytes, bytes]] = []

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        if isinstance(data, LoginPassword):
            self.logins.append((data.login, data.password))
            return AuthResult(success=data.login == b"gw" and data.password == b"s3cret")
        return AuthResult(success=False)


@pytest.fixture
def tls_smtp(tmp_path: Path):
    ca_file, ctx = make_ca_and_server(tmp_path)
    users = Users()
    s = Smtp(tls_context=ctx, require_starttls=True, auth_required=True, authenticator=users).start()
    yield s, ca_file, users
    s.stop()


async def test_starttls_with_own_ca_and_password_file(mosquitto, tmp_path: Path, tls_smtp) -> None:
    smtp, ca_file, users = tls_smtp
    (tmp_path / "smtp-password").write_text("s3cret\n")
    section = {
        "state_dir": str(tmp_path / "state"),
        "targets": [
            email_target(
                smtp,
                {"starttls": True, "ca_file": str(ca_file), "username": "gw", "password_file": str(tmp_path / "smtp-password")},
            )
        ],
    }
    cfg = notify_config(tmp_path, mosquitto.port, section)
    assert "s3cret" not in repr(cfg.notify)
    async with running_gateway(cfg):
        await publish(mosquitto.port, "plant/pumps/pump-1/telemetry", [pump(8.0)])
        await until(lambda: smtp.box.messages, what="an email over STARTTLS")
    assert users.logins == [(b"gw", b"s3cret")]
    assert "pump-1" in smtp.box.messages[0]["Subject"]


async def test_a_server_the_ca_does_not_vouch_for_gets_nothing(mosquitto, tmp_path: Path, tls_smtp) -> None:
    smtp, _, users = tls_smtp
    section = {
        "state_dir": str(tmp_path / "state"),
        "targets": [email_target(smtp, {"starttls": True, "username": "gw", "password": "s3cret"}, retry_max_s=1)],
    }
    cfg = notify_config(tmp_path, mosquitto.port, section)
    async with running_gateway(cfg) as gw:
        await publish(mosquitto.port, "plant/pumps/pump-1/telemetry", [pump(8.0)])
        q = gw.notifier.queues[0]
        await until(lambda: q.failures >= 2, what="verification failures")
        assert "CERTIFICATE_VERIFY_FAILED" in (q.last_error or "") and q.depth == 1
        await asyncio.sleep(0)
    assert smtp.box.messages == [] and users.logins == []  # the password never went to it


def test_credentials_without_encryption_are_refused(tmp_path: Path) -> None:
    section = [
        {
            "type": "email",
            "from": "gw@plant.example",
            "to": ["ops@plant.example"],
            "smtp": {"host": "mail.example.net", "username": "gw", "password": "x"},
        }
    ]
    with pytest.raises(ConfigError) as e:
        notify_config(tmp_path, 1883, section)
    assert any("notify.targets.0.smtp: " in p and "starttls: true or ssl: true" in p for p in e.value.problems), e.value.problems
