"""Publishes to the local broker: alerts (retained while active), rollups, status and metrics.

Holds the gateway's status connection: retained `status/{gateway}` = online, with a Last Will
of offline. Active alarms are kept in memory and re-published retained after every reconnect,
so a broker restarted without persistence still tells a late subscriber what is active.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Any

import aiomqtt
import orjson
import structlog

from edgegw.backoff import Backoff
from edgegw.config import GatewayConfig
from edgegw.mqttconn import NODELAY, client_kwargs, until_disconnect
from edgegw.records import Alert, AlertState, Rollup

log = structlog.get_logger("edgegw.sinks.local")
_TOPIC_UNSAFE = str.maketrans({"/": "_", "+": "_", "#": "_"})


def alert_topic(template: str, alert: Alert) -> str:
    return template.format(
        site=alert.site, gateway=alert.gateway, asset=alert.asset, kind=alert.kind,
        source=alert.source.translate(_TOPIC_UNSAFE),
    )


_Item = tuple[str, bytes, int, bool]


class LocalSink:
    """Two queues + one publisher task; publishing never blocks the engine.

    Alerts and status go out before rollups and metrics: 50 rollups published at the top of a
    minute must not hold back an alarm raised in the same instant. Order within each queue is kept.
    """

    def __init__(self, cfg: GatewayConfig, max_queue: int = 100_000) -> None:
        self.name = "local"
        self.cfg = cfg
        gw = cfg.gateway.id
        self.status_topic = f"status/{gw}"
        self.connected = False
        self.first_connect = asyncio.Event()
        self._urgent: deque[_Item] = deque()  # alerts, status
        self._bulk: deque[_Item] = deque()  # rollups, metrics
        self._max_queue = max_queue
        self._wake = asyncio.Event()
        self._active: dict[str, bytes] = {}  # topic -> retained payload of active alarms
        self._closing = False
        self.dropped = 0
        self.published = 0
        self.restored: list[dict[str, Any]] = []

    # -- taking work (synchronous, from the engine)

    def _put(self, topic: str, payload: bytes, qos: int, retain: bool, urgent: bool = True) -> None:
        if self.depth >= self._max_queue:  # a long outage: the oldest rollups and metrics go first
            (self._bulk or self._urgent).popleft()
            self.dropped += 1
        (self._urgent if urgent else self._bulk).append((topic, payload, qos, retain))
        self._wake.set()

    def alert(self, alert: Alert) -> None:
        a = self.cfg.alerts
        topic = alert_topic(a.topic, alert)
        payload = orjson.dumps(alert.to_dict())
        if alert.state == AlertState.RAISED:
            if a.retain_active:
                self._active[topic] = payload
            self._put(topic, payload, a.qos, a.retain_active)
        else:
            self._put(topic, payload, a.qos, False)
            if a.retain_active and self._active.pop(topic, None) is not None:
                self._put(topic, b"", a.qos, True)  # deletes the retained raise

    def rollup(self, rollup: Rollup) -> None:
        topic = self.cfg.rollups.topic.format(site=rollup.site, gateway=rollup.gateway, asset=rollup.asset)
        self._put(topic, orjson.dumps(rollup.to_dict()), 1, False, urgent=False)

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> None:
        """For metrics: queued behind alerts."""
        self._put(topic, payload, qos, retain, urgent=False)

    @property
    def depth(self) -> int:
        return len(self._urgent) + len(self._bulk)

    # -- connection

    async def _restore(self, client: aiomqtt.Client) -> None:
        """Learn which alarms this gateway had active before it stopped (retained messages)."""
        flt = "/".join(
            "+" if "{" in lv else lv
            for lv in self.cfg.alerts.topic.format(
                site=self.cfg.gateway.site, gateway=self.cfg.gateway.id, asset="{a}", kind="{k}", source="{s}"
            ).split("/")
        )
        got: list[tuple[str, bytes]] = []

        async def collect() -> None:
            async for m in client.messages:
                if m.retain and isinstance(m.payload, bytes) and m.payload:
                    got.append((m.topic.value, m.payload))

        await client.subscribe(flt, qos=1)
        task = asyncio.create_task(collect())
        await asyncio.sleep(0.3)  # retained messages arrive right after SUBACK
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.unsubscribe(flt)
        for topic, payload in got:
            try:
                d = orjson.loads(payload)
            except orjson.JSONDecodeError:
                continue
            if isinstance(d, dict) and d.get("gateway") == self.cfg.gateway.id and d.get("state") == "raised":
                self._active.setdefault(topic, payload)
                self.restored.append(d)

    async def run(self) -> None:
        backoff = Backoff()
        b = self.cfg.mqtt
        will = aiomqtt.Will(self.status_topic, b"offline", qos=1, retain=True)
        ident = f"{b.client_id or 'edgegw-' + self.cfg.gateway.id}-pub"
        while True:
            try:
                async with aiomqtt.Client(
                    **client_kwargs(b), identifier=ident, will=will, socket_options=NODELAY,
                    max_queued_outgoing_messages=0,
                ) as client:
                    if not self.first_connect.is_set():
                        await self._restore(client)
                    await client.publish(self.status_topic, b"online", qos=1, retain=True)
                    for topic, payload in list(self._active.items()):
                        await client.publish(topic, payload, qos=self.cfg.alerts.qos, retain=True)
                    self.connected = True
                    backoff.reset()
                    self.first_connect.set()
                    log.info("connected", broker=f"{b.host}:{b.port}")
                    if await until_disconnect(client, self._pump(client)):
                        return
            except aiomqtt.MqttError as e:
                self.connected = False
                if self._closing:
                    return
                delay = backoff.next()
                log.warning("local broker connection lost", error=str(e), retry_in_s=round(delay, 1))
                await asyncio.sleep(delay)
            finally:
                self.connected = False

    async def _pump(self, client: aiomqtt.Client) -> None:
        urgent, bulk = self._urgent, self._bulk
        while True:
            while urgent or bulk:
                q = urgent or bulk
                item = q[0]
                topic, payload, qos, retain = item
                await client.publish(topic, payload, qos=qos, retain=retain)
                if q and q[0] is item:  # only after the broker took it (unless overflow dropped it meanwhile)
                    q.popleft()
                self.published += 1
            if self._closing:
                await client.publish(self.status_topic, b"offline", qos=1, retain=True)
                return
            self._wake.clear()
            await self._wake.wait()

    async def close(self, timeout: float = 2.0) -> None:
        self._closing = True
        self._wake.set()
        # run() returns after the queue is drained and offline is published; the gateway awaits it


def build(cfg: GatewayConfig) -> LocalSink:
    return LocalSink(cfg)
