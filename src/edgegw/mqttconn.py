"""Connection settings for aiomqtt clients, shared by the MQTT source, the local sink and the bridge."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Coroutine
from typing import Any

import aiomqtt

from edgegw.config import MqttBroker, TlsConfig

NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]  # alerts must not wait for Nagle + delayed ACK


def tls_context(tls: TlsConfig) -> ssl.SSLContext:
    """Verification on by default: the CA file, else the system store."""
    ctx = ssl.create_default_context(cafile=tls.ca_file) if tls.ca_file else ssl.create_default_context()
    if tls.cert_file and tls.key_file:
        ctx.load_cert_chain(tls.cert_file, tls.key_file)
    if tls.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def client_kwargs(b: MqttBroker) -> dict[str, Any]:
    kw: dict[str, Any] = {"hostname": b.host, "port": b.port, "keepalive": b.keepalive_s, "timeout": 5}
    if b.username:
        kw["username"] = b.username
        kw["password"] = b.password.get_secret_value() if b.password else None
    if b.tls is not None:
        kw["tls_context"] = tls_context(b.tls)
        kw["tls_insecure"] = b.tls.insecure
    return kw


async def until_disconnect(client: aiomqtt.Client, work: Coroutine[Any, Any, None]) -> bool:
    """Run `work` on a connected client while watching the connection.

    True when `work` finished; the work's or the connection's MqttError is raised when either
    failed first. Iterating `client.messages` is aiomqtt's public way to learn of a disconnect
    while a publisher sits idle.
    """

    async def watch() -> None:
        async for _ in client.messages:
            pass

    job = asyncio.create_task(work)
    watcher = asyncio.create_task(watch())
    try:
        await asyncio.wait({job, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in (job, watcher):
            t.cancel()
        await asyncio.gather(job, watcher, return_exceptions=True)
    for t in (job, watcher):
        if not t.cancelled() and (exc := t.exception()) is not None:
            raise exc
    return job.done() and not job.cancelled()
