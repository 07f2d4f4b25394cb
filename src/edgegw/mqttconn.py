"""Connection settings for aiomqtt clients, shared by the MQTT source, the local sink and the bridge."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Coroutine
from typing import Any

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

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
    failed first (with the server's reason code when it sent one).
    """
    job = asyncio.create_task(work)
    watcher = asyncio.create_task(wait_disconnect(client))
    try:
        await asyncio.wait({job, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in (job, watcher):
            t.cancel()
        await asyncio.gather(job, watcher, return_exceptions=True)
    for t in (watcher, job):
        if not t.cancelled() and (exc := t.exception()) is not None:
            raise exc
    return job.done() and not job.cancelled()


async def wait_disconnect(client: aiomqtt.Client) -> None:
    """Return never; raise when the connection ends. Iterating `client.messages` is aiomqtt's public
    way to learn of a disconnect (messages go elsewhere when a `queue_type` hands them off); its
    error says only "Disconnected during message iteration", so the server's reason code is added."""
    try:
        async for _ in client.messages:
            pass
    except aiomqtt.MqttError as e:
        reason = getattr(client, "disconnect_reason", None)
        if reason is not None and not isinstance(e, aiomqtt.MqttCodeError):
            raise aiomqtt.MqttCodeError(reason, "Disconnected") from e
        raise
    raise aiomqtt.MqttError("message iteration ended")


# Reason codes of a PUBACK (MQTT 5) that no retry will change for the same message on the same server.
PERMANENT_REFUSALS = frozenset({0x90, 0x95, 0x99})  # topic name invalid, packet too large, payload format invalid


class AckClient(aiomqtt.Client):
    """aiomqtt's client plus what MQTT 5 acknowledgements say, which aiomqtt 2.x drops.

    aiomqtt's `publish()` returns nothing when the PUBACK says "not authorized" (0x87) or "quota
    exceeded" (0x97), and it keeps the CONNACK's limits to itself. This subclass takes both from
    paho's public callbacks (`on_connect` properties, `on_publish` reason code) by extending
    aiomqtt's two handlers of them, and `publish_acked()` returns the reason code. It relies on
    aiomqtt 2.x internals (`_client`, `_on_connect`, `_on_publish`): aiomqtt is pinned below 3.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.receive_maximum: int | None = None  # the server's Receive Maximum (MQTT 5 CONNACK)
        self.maximum_packet_size: int | None = None  # the server's Maximum Packet Size (MQTT 5 CONNACK)
        self.v5 = kwargs.get("protocol") == aiomqtt.ProtocolVersion.V5
        self.disconnect_reason: ReasonCode | None = None  # what the last DISCONNECT (or paho) said
        self._acks: dict[int, asyncio.Future[int]] = {}

    def _on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None = None,
    ) -> None:
        if properties is not None:
            self.receive_maximum = getattr(properties, "ReceiveMaximum", None)
            self.maximum_packet_size = getattr(properties, "MaximumPacketSize", None)
        super()._on_connect(client, userdata, flags, reason_code, properties)

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None = None,
    ) -> None:
        self.disconnect_reason = reason_code
        super()._on_disconnect(client, userdata, flags, reason_code, properties)

    def _on_publish(self, client: paho.Client, userdata: Any, mid: int, reason_code: ReasonCode, properties: Properties) -> None:
        fut = self._acks.pop(mid, None)
        if fut is None:
            super()._on_publish(client, userdata, mid, reason_code, properties)
        elif not fut.done():
            fut.set_result(int(reason_code.value))

    async def publish_acked(self, topic: str, payload: bytes, qos: int = 1, timeout: float | None = None) -> int:
        """Publish at QoS 1 or 2 and return the acknowledgement's reason code: 0 is success, >= 0x80 a
        refusal (MQTT 5 only; a 3.1.1 broker cannot say no, it acknowledges or disconnects)."""
        info = self._client.publish(topic, payload, qos)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise aiomqtt.MqttCodeError(info.rc, "Could not publish message")
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._acks[info.mid] = fut  # a PUBACK is read by the loop, never inside paho's publish()
        try:
            return await asyncio.wait_for(fut, self.timeout if timeout is None else timeout)
        except TimeoutError:
            raise aiomqtt.MqttError("Operation timed out") from None
        finally:
            self._acks.pop(info.mid, None)

    def packet_size(self, topic: str, payload: bytes, qos: int = 1) -> int:
        return packet_size(topic, payload, qos, self.v5)


def packet_size(topic: str, payload: bytes, qos: int = 1, v5: bool = True) -> int:
    """Bytes a PUBLISH of this message takes on the wire (no properties sent)."""
    rest = 2 + len(topic.encode()) + (2 if qos else 0) + (1 if v5 else 0) + len(payload)
    return 1 + _varint_len(rest) + rest


def _varint_len(n: int) -> int:
    size = 1
    while n >= 128:
        n //= 128
        size += 1
    return size
