"""Publishes to the local broker: alerts (retained while active), rollups, status and metrics.

Holds the gateway's status connection: retained `status/{gateway}` = online, with a Last Will
of offline. Active alarms are kept in memory and re-published retained after every reconnect,
so a broker restarted without persistence still tells a late subscriber what is active.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

import aiomqtt
import orjson
import structlog

from edgegw.backoff import Backoff
from edgegw.config import GatewayConfig
from edgegw.mqttconn import NODELAY, AckClient, client_kwargs, until_disconnect
from edgegw.ratelimit import RateLimitedLog
from edgegw.records import AlarmEvent, Alert, AlertState, HopResult, Rollup
from edgegw.runtime import Link, LinkStats, supervise

log = structlog.get_logger("edgegw.sinks.local")
_TOPIC_UNSAFE = str.maketrans({"/": "_", "+": "_", "#": "_"})


def alert_topic(template: str, alert: Alert) -> str:
    return template.format(
        site=alert.site,
        gateway=alert.gateway,
        asset=alert.asset,
        kind=alert.kind,
        source=alert.source.translate(_TOPIC_UNSAFE),
    )


_Item = tuple[str, bytes, int, bool]
RESTORE_QUIET_S = 1.0  # the retained read ends this long after the last message if the marker never comes
RESTORE_MAX_S = 15.0


class LocalStats(LinkStats):
    published: int
    queued: int
    dropped: int  # everything dropped from a full queue
    dropped_alerts: int  # of those, alerts and status (only when nothing else was left to drop)


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
        self.first_connect = asyncio.Event()
        self.link = Link("local broker", f"{cfg.mqtt.host}:{cfg.mqtt.port}")
        self.backoff = Backoff(0.5, 30.0)
        self._urgent: deque[_Item] = deque()  # alerts, status
        self._bulk: deque[_Item] = deque()  # rollups, metrics
        self._max_queue = max_queue
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._active: dict[str, bytes] = {}  # topic -> retained payload of active alarms
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._rl = RateLimitedLog(log)
        self.dropped = 0
        self.dropped_alerts = 0
        self.published = 0
        self.restored: list[dict[str, Any]] = []
        self.restore_done = False
        self.on_restored: Callable[[list[dict[str, Any]]], None] | None = None  # called once, when the read ends

    @property
    def connected(self) -> bool:
        return self.link.connected

    # -- taking work (synchronous, from the engine)

    def _put(self, topic: str, payload: bytes, qos: int, retain: bool, urgent: bool = True) -> None:
        if self.depth >= self._max_queue:  # a long outage: the oldest rollups and metrics go first
            self._drop_oldest()
        (self._urgent if urgent else self._bulk).append((topic, payload, qos, retain))
        self._wake.set()

    def _drop_oldest(self) -> None:
        self.dropped += 1
        if self._bulk:
            self._bulk.popleft()
            self._rl.warning(
                "drop-bulk", "local queue full: oldest rollup or metrics dropped", dropped=self.dropped, queued=self.depth
            )
            return
        topic = self._urgent.popleft()[0]  # only alerts are left: the oldest goes, loudly
        self.dropped_alerts += 1
        self._rl.warning(
            "drop-alert",
            "local queue full of alerts: oldest alert dropped",
            topic=topic,
            dropped_alerts=self.dropped_alerts,
            queued=self.depth,
        )

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

    def hop(self, result: HopResult) -> None:
        """Hops are not published here."""

    def event(self, event: AlarmEvent) -> None:
        """Alarm events are journaled by history, not sent from here."""

    def rollup(self, rollup: Rollup) -> None:
        topic = self.cfg.rollups.topic.format(site=rollup.site, gateway=rollup.gateway, asset=rollup.asset)
        self._put(topic, orjson.dumps(rollup.to_dict()), 1, False, urgent=False)

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> None:
        """For metrics: queued behind alerts."""
        self._put(topic, payload, qos, retain, urgent=False)

    @property
    def depth(self) -> int:
        return len(self._urgent) + len(self._bulk)

    def stats(self) -> LocalStats:
        return LocalStats(
            **self.link.stats(),
            published=self.published,
            queued=self.depth,
            dropped=self.dropped,
            dropped_alerts=self.dropped_alerts,
        )

    # -- connection

    async def _restore(self, client: AckClient) -> None:
        """Learn which alarms this gateway had active before it stopped (retained messages).

        The broker sends the retained messages right after SUBACK, before anything published later;
        so the read ends when a marker this client publishes after SUBACK comes back (or after a
        quiet second, should the broker not route it back)."""
        flt = "/".join(
            "+" if "{" in lv else lv
            for lv in self.cfg.alerts.topic.format(
                site=self.cfg.gateway.site, gateway=self.cfg.gateway.id, asset="{a}", kind="{k}", source="{s}"
            ).split("/")
        )
        marker = f"{self.status_topic}/restore/{uuid.uuid4().hex}"
        got: list[tuple[str, bytes]] = []
        await client.subscribe([(flt, 1), (marker, 1)])
        await client.publish(marker, b"", qos=1)
        t0 = time.monotonic()
        messages = aiter(client.messages)
        while time.monotonic() - t0 < RESTORE_MAX_S:
            try:
                m = await asyncio.wait_for(anext(messages), RESTORE_QUIET_S)
            except TimeoutError:
                log.warning("restore marker did not come back; retained alarms read until a quiet second", retained=len(got))
                break
            if m.topic.value == marker:
                break
            if m.retain and isinstance(m.payload, bytes) and m.payload:
                got.append((m.topic.value, m.payload))
        await client.unsubscribe([flt, marker])
        for topic, payload in got:
            try:
                d = orjson.loads(payload)
            except orjson.JSONDecodeError:
                continue
            if isinstance(d, dict) and d.get("gateway") == self.cfg.gateway.id and d.get("state") == "raised":
                self._active.setdefault(topic, payload)
                self.restored.append(d)
        self.restore_done = True
        log.info("active alarms restored from the broker", alarms=len(self.restored))
        if self.on_restored is not None:
            self.on_restored(self.restored)

    async def run(self) -> None:
        self._task = asyncio.current_task()
        await supervise(
            self.link,
            self._session,
            self.backoff,
            stopping=lambda: self._closing,
            stop=self._stop,
            expected=(aiomqtt.MqttError, OSError),
            context=lambda: {"queued": self.depth},
        )

    async def _session(self, link: Link) -> None:
        b = self.cfg.mqtt
        will = aiomqtt.Will(self.status_topic, b"offline", qos=1, retain=True)
        ident = f"{b.client_id or 'edgegw-' + self.cfg.gateway.id}-pub"
        async with AckClient(
            **client_kwargs(b), identifier=ident, will=will, socket_options=NODELAY, max_queued_outgoing_messages=0
        ) as client:
            if not self.restore_done:
                await self._restore(client)
            await client.publish(self.status_topic, b"online", qos=1, retain=True)
            for topic, payload in list(self._active.items()):
                await client.publish(topic, payload, qos=self.cfg.alerts.qos, retain=True)
            link.up(queued=self.depth, active_alarms=len(self._active))
            self.first_connect.set()
            if not await until_disconnect(client, self._pump(client, link)):
                raise aiomqtt.MqttError("local broker connection ended")

    async def _pump(self, client: AckClient, link: Link) -> None:
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
                link.progress()
            if self._closing:
                await client.publish(self.status_topic, b"offline", qos=1, retain=True)
                return
            self._wake.clear()
            await self._wake.wait()

    async def close(self, timeout: float = 2.0) -> None:
        """Deliver what is queued and publish offline, within `timeout`; the run task ends with it."""
        self._closing = True
        self._wake.set()
        self._stop.set()
        if self._task is not None and not self._task.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
