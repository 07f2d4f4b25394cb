"""Webhook delivery through httpx: a POST whose body is the alert JSON exactly as published on MQTT
(a JSON array of them for a digest); accepted on any 2xx answer."""

from __future__ import annotations

import contextlib
import importlib
import ssl

import httpx

from edgegw.config.notify import WebhookTarget
from edgegw.notify import DeliveryError, DeliveryRefused

_FIRST_USE = ("anyio._backends._asyncio", "anyio.streams.tls", "anyio.streams.stapled", "anyio.lowlevel", "anyio.to_thread")
REFUSED = (400, 413, 422)  # the body itself is refused; anything else (401, 404, 5xx...) is retried


class WebhookSender:
    def __init__(self, target: WebhookTarget, gateway: str) -> None:
        self.target = target
        assert target.url is not None
        self._url = target.url.get_secret_value()
        verify: ssl.SSLContext | bool = True
        if target.ca_file:
            verify = ssl.create_default_context(cafile=target.ca_file)
        for module in _FIRST_USE:  # loaded here (a worker thread), not in the first POST (~50 ms of the loop)
            with contextlib.suppress(ImportError):
                importlib.import_module(module)
        self._client = httpx.AsyncClient(timeout=target.timeout_s, verify=verify, follow_redirects=False)
        self.where = target.where
        self._headers = {"Content-Type": "application/json", "User-Agent": f"edgegw ({gateway})", **target.headers}

    async def deliver(self, payloads: list[bytes], key: str = "") -> None:
        body = payloads[0] if len(payloads) == 1 else b"[" + b",".join(payloads) + b"]"
        headers = {**self._headers, "Idempotency-Key": key} if key else self._headers
        try:
            r = await self._client.post(self._url, content=body, headers=headers)
        except httpx.HTTPError as e:
            raise DeliveryError(f"{self.where}: {type(e).__name__}: {e}") from None
        if r.status_code in REFUSED:
            raise DeliveryRefused(f"{self.where}: HTTP {r.status_code} {r.reason_phrase}")
        if not r.is_success:
            raise DeliveryError(f"{self.where}: HTTP {r.status_code} {r.reason_phrase}")

    async def aclose(self) -> None:
        await self._client.aclose()
