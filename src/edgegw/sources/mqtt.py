"""MQTT source (aiomqtt): subscribes to a topic template and decodes each message as it arrives.

aiomqtt's public `queue_type` takes the class of its incoming queue; ours hands every message
straight to the decoder inside `put_nowait`, so there is no per-message task or queue hop.
Iterating `client.messages` then only waits for a disconnect, which ends the session;
`runtime.supervise` reconnects with capped, jittered backoff (re-subscribing every time).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiomqtt
import structlog

from edgegw.backoff import Backoff
from edgegw.config import GatewayConfig, MqttSource
from edgegw.intake import Intake
from edgegw.mqttconn import NODELAY, AckClient, client_kwargs, wait_disconnect
from edgegw.runtime import Link, LinkStats, supervise
from edgegw.sources.payloads import JsonDecoder, NumberDecoder, SenmlDecoder

log = structlog.get_logger("edgegw.sources.mqtt")


class TopicTemplate:
    """`plant/pumps/{asset}/telemetry` -> subscription filter and a cheap topic parser."""

    def __init__(self, template: str) -> None:
        self.levels = template.split("/")
        self.filter = "/".join("+" if lv in ("{asset}", "{signal}") else lv for lv in self.levels)
        self.asset_at = self.levels.index("{asset}") if "{asset}" in self.levels else -1
        self.signal_at = self.levels.index("{signal}") if "{signal}" in self.levels else -1

    def parse(self, topic: str) -> tuple[str, str] | None:
        """(asset, signal) from a topic, '' where the template has no placeholder; None if no match."""
        parts = topic.split("/")
        if len(parts) != len(self.levels):
            return None
        asset = parts[self.asset_at] if self.asset_at >= 0 else ""
        signal = parts[self.signal_at] if self.signal_at >= 0 else ""
        if (self.asset_at >= 0 and not asset) or (self.signal_at >= 0 and not signal):
            return None
        return asset, signal


class MqttTelemetrySource:
    """One topic template on the local broker."""

    def __init__(self, spec: MqttSource, cfg: GatewayConfig, intake: Intake, name: str) -> None:
        self.name = name
        self.spec = spec
        self.cfg = cfg
        self.intake = intake
        self.link = Link(name, f"{cfg.mqtt.host}:{cfg.mqtt.port}")
        self.backoff = Backoff(0.5, 30.0)
        self.template = TopicTemplate(spec.topic)
        self.fixed_asset = spec.asset or ""
        self.assets = frozenset([self.fixed_asset]) if self.template.asset_at < 0 else frozenset(a.id for a in cfg.assets)
        self.fixed_signal = spec.signal or ""
        self.max_payload = cfg.ingest.max_payload_bytes
        self._json = JsonDecoder(spec.fields, spec.timestamp, intake)
        self._number = NumberDecoder(intake)
        self._senml = SenmlDecoder(spec.fields, intake)
        self._handle = {"json": self._on_json, "number": self._on_number, "senml": self._on_senml}[spec.format]

    # -- per message: parse topic, check size, decode; never raises

    def on_message(self, m: aiomqtt.Message) -> None:
        payload = m.payload
        if not isinstance(payload, bytes | bytearray):
            payload = str(payload).encode() if payload is not None else b""
        self.intake.message(len(payload))
        if len(payload) > self.max_payload:
            self.intake.reject("oversized", bytes=len(payload), topic=m.topic.value[:120])
            return
        parsed = self.template.parse(m.topic.value)
        if parsed is None:
            self.intake.reject("unknown_topic", topic=m.topic.value[:120])
            return
        try:
            self._handle(payload, parsed[0] or self.fixed_asset, parsed[1] or self.fixed_signal)
        except Exception:  # a decoder bug must not kill the connection; it is loud in the log
            self.intake.reject("decoder_error", topic=m.topic.value[:120])
            log.exception("decoder failed", topic=m.topic.value[:120])

    def _on_json(self, payload: bytes, asset: str, signal: str) -> None:
        self._json.decode(payload, asset, time.time())

    def _on_number(self, payload: bytes, asset: str, signal: str) -> None:
        self._number.decode(payload, asset, signal, time.time())

    def _on_senml(self, payload: bytes, asset: str, signal: str) -> None:
        self._senml.decode(payload, asset or None, time.time())

    # -- connection

    def _queue_type(self) -> Any:
        source = self

        class Handoff(asyncio.Queue[aiomqtt.Message]):
            """aiomqtt's incoming queue, replaced by a direct call into the decoder."""

            def put_nowait(self, item: aiomqtt.Message) -> None:
                source.on_message(item)

        return Handoff

    @property
    def connected(self) -> bool:
        return self.link.connected

    @property
    def connects(self) -> int:
        return self.link.connects

    def stats(self) -> LinkStats:
        return self.link.stats()

    async def run(self) -> None:
        await supervise(self.link, self._session, self.backoff, expected=(aiomqtt.MqttError, OSError))

    async def _session(self, link: Link) -> None:
        b = self.cfg.mqtt
        ident = f"{b.client_id or 'edgegw-' + self.cfg.gateway.id}-{self.name}"
        before = self.intake.messages_in
        try:
            async with AckClient(
                **client_kwargs(b),
                identifier=ident,
                clean_session=False,  # the broker keeps QoS 1 telemetry for us while we reconnect
                queue_type=self._queue_type(),
                socket_options=NODELAY,
            ) as client:
                await client.subscribe(self.template.filter, qos=self.spec.qos)
                link.up(source=self.name)
                log.info("subscribed", source=self.name, broker=f"{b.host}:{b.port}", topic=self.template.filter)
                await wait_disconnect(client)  # messages go to on_message meanwhile
        finally:
            if self.intake.messages_in != before:
                link.progress()


def build(spec: MqttSource, cfg: GatewayConfig, intake: Intake, name: str) -> MqttTelemetrySource:
    return MqttTelemetrySource(spec, cfg, intake, name)
