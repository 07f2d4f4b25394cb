"""Email delivery through aiosmtplib: one message per batch, accepted when the server says 250."""

from __future__ import annotations

import ssl
from typing import Any

import aiosmtplib
import orjson

from edgegw.config.notify import EmailTarget
from edgegw.notify import DeliveryError, DeliveryRefused, message


class EmailSender:
    """Sends a batch of queued alerts (the JSON payloads) as one email."""

    def __init__(self, target: EmailTarget, gateway: str) -> None:
        self.target = target
        self.gateway = gateway
        s = target.smtp
        self._tls: ssl.SSLContext | None = None
        if s.ssl or s.starttls is not False:
            self._tls = ssl.create_default_context(cafile=s.ca_file) if s.ca_file else ssl.create_default_context()
        self.where = target.where

    async def deliver(self, payloads: list[bytes], key: str = "") -> None:
        """`key` is unused: the Message-ID, derived from the alert ids, is what a receiver de-duplicates by."""
        t, s = self.target, self.target.smtp
        alerts: list[dict[str, Any]] = [orjson.loads(p) for p in payloads]
        msg = message.email(alerts, t.from_, t.to, t.subject_prefix, self.gateway)
        kw: dict[str, Any] = {
            "hostname": s.host,
            "port": s.port_or_default,
            "timeout": t.timeout_s,
            "use_tls": s.ssl,
            "start_tls": False if s.ssl else s.starttls,
        }
        if self._tls is not None:
            kw["tls_context"] = self._tls
        if s.username:
            kw["username"] = s.username
            kw["password"] = s.password.get_secret_value() if s.password else None
        try:
            await aiosmtplib.send(msg, **kw)
        except aiosmtplib.SMTPDataError as e:  # the server took the envelope, then refused this message
            if e.code >= 500:
                raise DeliveryRefused(f"{self.where}: {e}") from None
            raise DeliveryError(f"{self.where}: {e}") from None
        except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as e:
            raise DeliveryError(f"{self.where}: {e}") from None

    async def aclose(self) -> None:
        """Nothing held between deliveries: each one is a connection of its own."""
