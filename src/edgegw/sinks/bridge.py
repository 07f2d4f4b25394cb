"""The upstream bridge: alerts and rollups (optionally decimated readings) to a cloud broker,
through the durable outbox.

Every message goes into the outbox (committed) before it is published, and leaves it only when
the broker sends PUBACK. A window of QoS 1 publishes is kept in flight (one publish awaited at a
time would cap throughput at one round trip per message). After a reconnect two lanes run: live
messages (those committed after the connection came up) go at once, and the backlog is replayed
oldest first at `replay_rate`, so a long outage does not starve what happens now. Topics are the
local ones under `topic_prefix`; the bridge keeps its own retained online status and Last Will.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import ipaddress
import ssl
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import aiomqtt
import orjson
import structlog
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from edgegw.backoff import Backoff
from edgegw.config import ConfigError, GatewayConfig, TlsConfig
from edgegw.mqttconn import NODELAY, PERMANENT_REFUSALS, AckClient, packet_size, tls_context, until_disconnect
from edgegw.ratelimit import RateLimitedLog
from edgegw.records import AlarmEvent, Alert, AlertState, HopResult, Rollup, Severity, iso
from edgegw.runtime import Link, LinkStats, supervise
from edgegw.sinks.local import alert_topic
from edgegw.sinks.outbox import Kind, Outbox, OutboxBusy, OutboxStats, Row

if TYPE_CHECKING:
    from edgegw.engine.engine import Engine

log = structlog.get_logger("edgegw.sinks.bridge")

_BATCH = 256
RECONNECT_MAX_S = 30.0
REFUSED_RETRY_FIRST_S = 5.0  # a message the server refused (e.g. 0x87, 0x97) is offered again after this,
REFUSED_RETRY_CAP_S = 300.0  # doubling up to this,
REFUSED_GIVE_UP_S = 3600.0  # and dead-lettered once it has been refused for this long
UNSTORED_RETRY_S = 5.0  # while the disk is full, messages held in memory are offered to it this often
DEAD_LETTER_QUIET_S = 3600.0  # outbox_dead_letter clears after this long without a new dead letter
NO_MATCHING_SUBSCRIBERS = 0x10


class BridgeStats(LinkStats, OutboxStats):
    published: int
    replayed: int
    refused: dict[str, int]  # PUBACK reason codes >= 0x80 seen, by code
    refused_pending: int  # refused (or unheard) messages waiting for a retry
    unheard: int  # publishes acknowledged with 0x10 (no matching subscribers), kept and offered again
    server_limits: dict[str, int | None]  # Receive Maximum and Maximum Packet Size of the last CONNACK


@dataclass(slots=True)
class _Refused:
    since: float  # monotonic time of the first refusal
    attempts: int = 0
    due: float | None = None
    code: int = 0  # the last reason code  # monotonic time of the next offer; None: with the next backlog replay


def _short(topic: str, n: int = 120) -> str:
    return topic if len(topic) <= n else topic[:n] + f"...({len(topic)} chars)"


def _reason_name(code: int) -> str:
    try:
        return str(ReasonCode(PacketTypes.PUBACK, identifier=code))
    except Exception:  # a code the standard does not name
        return "unknown reason"


class SeqSource(Protocol):
    value: int

    def next(self) -> int: ...


class Bridge:
    """The upstream sink. Synchronous intake (into the outbox), one connection task."""

    def __init__(
        self,
        cfg: GatewayConfig,
        seq: SeqSource,
        on_alert: Callable[[Alert], None] | None = None,
        outbox: Outbox | None = None,
        engine: Engine | None = None,
    ) -> None:
        up = cfg.upstream
        assert up is not None
        self.name = "upstream"
        self.cfg = cfg
        self.up = up
        self.seq = seq
        self.on_alert = on_alert
        self.engine = engine
        known = {sig for prof in cfg.profiles.values() for sig in prof.signals}
        unknown = sorted(set(up.send.readings) - known)
        if unknown:
            raise ConfigError([f"upstream.send.readings: no profile has signal(s) {', '.join(unknown)}"])
        self._reading_sent: dict[tuple[str, str], float] = {}
        self._tls: ssl.SSLContext | None = None
        if up.use_tls:
            try:
                self._tls = tls_context(up.tls or TlsConfig())
            except (OSError, ssl.SSLError) as e:
                raise ConfigError([f"upstream.tls: {e}"]) from None
        gw = cfg.gateway.id
        self.prefix = up.topic_prefix.format(gateway=gw, site=cfg.gateway.site).rstrip("/")
        self.status_topic = f"{self.prefix}/status/{gw}"
        try:
            self.outbox = outbox or Outbox(up.outbox.path, int(up.outbox.max_mb * 2**20))
        except OutboxBusy as e:
            raise ConfigError([f"upstream.outbox.path: {e}"]) from None
        self.outbox.on_drop = self._dropped
        self.outbox.on_corrupt = lambda problem: self._raise("outbox_corrupt", problem, {"problem": problem})
        if self.outbox.seq_hwm > seq.value:
            seq.value = self.outbox.seq_hwm  # seq survives restarts: never reused
        self.published = 0
        self.replayed = 0
        self.link = Link("upstream", f"{up.host}:{up.port}")
        self.backoff = Backoff(0.5, RECONNECT_MAX_S)
        self.server_limits: dict[str, int | None] = {}
        self.refusals: dict[str, int] = {}
        self.refused_then_delivered = 0
        self.unheard = 0  # PUBACKs saying no subscriber matched (MQTT 5 0x10)
        self._refused: dict[int, _Refused] = {}  # message id -> its refusals (memory only: a restart retries)
        self._retry_heap: list[tuple[float, int]] = []  # (due, message id) of the refused ones
        self._last_dead_letter = time.monotonic()
        self._rl = RateLimitedLog(log)
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._closed = asyncio.Event()
        self._closing = False
        self._commit_pending = False
        self._pending_alerts: list[Alert] = []
        self._active: dict[str, float] = {  # gateway alarms raised and not yet cleared, across restarts
            k.removeprefix("alarm:"): float(v) for k, v in self.outbox.meta.items() if k.startswith("alarm:")
        }
        for problem in self.outbox.problems:
            self._raise("outbox_corrupt", problem, {"problem": problem})

    # ------------------------------------------------------------------ intake (synchronous)

    def alert(self, alert: Alert) -> None:
        if not self.up.send.alerts or self._gone():
            return
        topic = f"{self.prefix}/{alert_topic(self.cfg.alerts.topic, alert)}"
        payload = orjson.dumps(alert.to_dict())
        if self._too_large(Kind.ALERT, topic, payload, alert.seq):
            return
        self.outbox.put(Kind.ALERT, topic, payload, alert.seq)
        self._commit()  # alerts are rare and matter: durable (against a crash) right now

    def hop(self, result: HopResult) -> None:
        """Hops are not published here."""

    def event(self, event: AlarmEvent) -> None:
        """Alarm events are journaled by history, not sent from here."""

    def rollup(self, rollup: Rollup) -> None:
        if not self.up.send.rollups or self._gone():
            return
        local = self.cfg.rollups.topic.format(site=rollup.site, gateway=rollup.gateway, asset=rollup.asset)
        topic, payload = f"{self.prefix}/{local}", orjson.dumps(rollup.to_dict())
        if self._too_large(Kind.ROLLUP, topic, payload, rollup.seq):
            return
        self.outbox.put(Kind.ROLLUP, topic, payload, rollup.seq)
        self._commit_soon()  # one commit for the whole burst of rollups

    def _too_large(self, kind: Kind, topic: str, payload: bytes, seq: int) -> bool:
        """Above the Maximum Packet Size the server announced: a dead letter from the start, said at once."""
        limit = self.server_limits.get("maximum_packet_size")
        if limit is None or (size := packet_size(topic, payload, 1, str(self.up.protocol) == "5")) <= limit:
            return False
        msg_id = self.outbox.put(kind, topic, payload, seq)
        if msg_id:
            self._commit()
            self._undeliverable(
                Row(msg_id, topic, payload), f"packet of {size} bytes, the server takes at most {limit}", 0x95, at_once=True
            )
        return True

    def _gone(self) -> bool:
        """After the outbox closed (the very end of a stop) nothing can be stored: said, not hidden."""
        if self.outbox.closed:
            log.warning("upstream outbox already closed; message not stored")
            return True
        return False

    def sample_readings(self) -> int:
        """Decimation: the latest reading of each chosen signal of each asset, if newer than the last one sent."""
        if self.engine is None or self._closing:
            return 0
        n = 0
        gw, site = self.cfg.gateway.id, self.cfg.gateway.site
        for asset in self.engine.assets.values():
            for name in self.up.send.readings:
                sig = asset.signals.get(name)
                if sig is None:
                    continue
                t, v = sig.last_value_ts, sig.last_value  # -inf and NaN before the first value
                key = (asset.id, name)
                if t <= self._reading_sent.get(key, float("-inf")):
                    continue
                self._reading_sent[key] = t
                payload = orjson.dumps(
                    {
                        "gateway": gw,
                        "site": site,
                        "asset": asset.id,
                        "signal": name,
                        "ts": iso(t),
                        "value": v,
                        "unit": asset.profile.signals[name].unit,
                    }
                )
                self.outbox.put(Kind.READING, f"{self.prefix}/readings/{site}/{asset.id}/{name}", payload)
                n += 1
        if n:
            self._commit_soon()
        return n

    async def _sample(self) -> None:
        period = self.up.send.readings_every_s
        while True:
            await asyncio.sleep(period - time.time() % period)  # aligned to the wall clock, like rollups
            self.sample_readings()

    def _commit(self) -> None:
        self._commit_pending = False
        self.outbox.note_seq(self.seq.value)
        if self.outbox.commit():
            self._wake.set()

    def _commit_soon(self) -> None:
        if not self._commit_pending:
            self._commit_pending = True
            try:
                asyncio.get_running_loop().call_soon(self._commit)
            except RuntimeError:
                self._commit()

    # ------------------------------------------------------------------ self alerts

    def _gateway_alert(self, kind: str, message: str, evidence: dict[str, Any], state: AlertState = AlertState.RAISED) -> Alert:
        return Alert(
            asset=self.cfg.gateway.id,
            kind=kind,
            source="upstream",
            state=state,
            severity=Severity.WARNING,
            ts=time.time(),
            evidence=evidence,
            message=message,
        )

    def _emit(self, alert: Alert) -> None:
        if self.on_alert is not None:
            self.on_alert(alert)  # stamps it and fans it out to every sink, this one included
            return
        alert.id, alert.seq = uuid.uuid4().hex, self.seq.next()
        alert.gateway, alert.site = self.cfg.gateway.id, self.cfg.gateway.site
        self.alert(alert)

    def _raise(self, kind: str, message: str, evidence: dict[str, Any], at_once: bool = False) -> None:
        """Raise a gateway alarm once; its state is kept in the outbox so a restart can still clear it.

        `at_once` emits it before returning (from the bridge's own intake, so it reaches the local
        broker right behind the message it is about); else on the next loop turn."""
        if kind in self._active:
            return
        a = self._gateway_alert(kind, message, evidence)
        self._active[kind] = a.ts
        self.outbox.set_meta(f"alarm:{kind}", a.ts)
        if at_once:
            self._emit(a)
            return
        try:
            asyncio.get_running_loop().call_soon(self._emit, a)  # not from inside the outbox's put()
        except RuntimeError:
            self._pending_alerts.append(a)

    def _clear(self, kind: str, message: str, evidence: dict[str, Any]) -> None:
        raised = self._active.pop(kind, None)
        if raised is None:
            return
        self.outbox.set_meta(f"alarm:{kind}", None)
        a = self._gateway_alert(kind, message, evidence, AlertState.CLEARED)
        a.raised_at = raised
        self._emit(a)

    def _dropped(self, kind: Kind, n: int) -> None:
        """The size cap hit: counted by the outbox; outbox_full is raised on the first drop."""
        self._raise(
            "outbox_full",
            f"upstream outbox full ({self.up.outbox.max_mb:g} MB): oldest {kind.name.lower()}s dropped",
            {"dropped": dict(self.outbox.dropped), "max_mb": self.up.outbox.max_mb},
        )

    def _housekeeping_alerts(self) -> None:
        ob = self.outbox
        if ob.space_short or ob.unstored:
            self._raise(
                "outbox_disk_full",
                f"no room on disk for the upstream outbox ({ob.path}): {ob.last_write_error}; "
                f"{len(ob.unstored)} message(s) held in memory until it can write again",
                {
                    "path": ob.path,
                    "error": ob.last_write_error,
                    "held_in_memory": len(ob.unstored),
                    "write_errors": ob.write_errors,
                },
            )
        elif "outbox_disk_full" in self._active:
            self._clear(
                "outbox_disk_full",
                "the upstream outbox writes again; nothing held in memory",
                {"path": ob.path, "write_errors": ob.write_errors, "lost": ob.lost_unstored},
            )
        if "outbox_full" in self._active and self.outbox.bytes < self.outbox.max_bytes // 2:
            self._clear(
                "outbox_full",
                "upstream outbox below half full again",
                {"dropped": dict(self.outbox.dropped), "max_mb": self.up.outbox.max_mb},
            )
        if "outbox_corrupt" in self._active and self.connected and self.outbox.count == 0:
            self._clear("outbox_corrupt", "the fresh outbox delivered its backlog", {})
        if "upstream_refused" in self._active and all(r.code == NO_MATCHING_SUBSCRIBERS for r in self._refused.values()):
            self._clear(
                "upstream_refused",
                "upstream broker takes the refused messages again (or they were moved aside)",
                {"refused": dict(self.refusals), "dead_lettered": dict(self.outbox.dead_lettered)},
            )
        if "outbox_dead_letter" in self._active and time.monotonic() - self._last_dead_letter >= DEAD_LETTER_QUIET_S:
            self._clear(
                "outbox_dead_letter",
                f"no undeliverable message for {DEAD_LETTER_QUIET_S:.0f} s",
                {"dead_lettered": dict(self.outbox.dead_lettered)},
            )

    # ------------------------------------------------------------------ running

    def _client(self) -> AckClient:
        up = self.up
        v5 = str(up.protocol) == "5"
        kw: dict[str, Any] = {
            "hostname": up.host,
            "port": up.port,
            "keepalive": up.keepalive_s,
            "timeout": 10,
            "identifier": up.client_id or f"edgegw-{self.cfg.gateway.id}-up",
            "protocol": aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
            "will": aiomqtt.Will(self.status_topic, b"offline", qos=1, retain=True),
            "socket_options": NODELAY,
            "max_inflight_messages": up.outbox.inflight,
            "max_queued_outgoing_messages": 0,
        }
        if v5:
            kw["clean_start"] = True
        else:
            kw["clean_session"] = True
        if up.username:
            kw["username"] = up.username
            kw["password"] = up.password.get_secret_value() if up.password else None
        if self._tls is not None:
            kw["tls_context"] = self._tls
            kw["tls_insecure"] = (up.tls or TlsConfig()).insecure
        client = AckClient(**kw)
        client.pending_calls_threshold = up.outbox.inflight + 16  # a full window is normal, not a warning
        return client

    async def run(self) -> None:
        self._task = asyncio.current_task()
        pending, self._pending_alerts = self._pending_alerts, []
        for a in pending:
            self._emit(a)
        if self.up.username and not self.up.use_tls and not _loopback(self.up.host):
            log.warning("upstream credentials go without TLS", host=self.up.host)
        if str(self.up.protocol) != "5":
            log.info(
                "upstream speaks MQTT 3.1.1: a publish the broker refuses cannot be told from a delivered one (use protocol 5)"
            )
        helpers = [asyncio.create_task(self._keep(), name="upstream:outbox")]
        if self.up.send.readings and self.engine is not None:
            helpers.append(asyncio.create_task(self._sample(), name="upstream:readings"))
        try:
            await supervise(
                self.link,
                self._session,
                self.backoff,
                stopping=lambda: self._closing,
                stop=self._closed,
                expected=(aiomqtt.MqttError, OSError),
                context=lambda: {"queued": self.outbox.count},
            )
        finally:
            for t in helpers:
                t.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            self._commit()
            await asyncio.to_thread(self.outbox.sync)
            self.outbox.close()

    async def _keep(self) -> None:
        """Every commit_ms: commit acknowledgements, fsync the WAL off the loop thread, settle alerts."""
        period = max(self.up.outbox.commit_ms, 10) / 1000
        retry_at = 0.0
        while True:
            await asyncio.sleep(period)
            self._commit()
            await asyncio.to_thread(self.outbox.sync)
            if self.outbox.unstored and time.monotonic() >= retry_at:
                retry_at = time.monotonic() + (UNSTORED_RETRY_S if self.outbox.space_short else 0.0)
                self.outbox.retry_unstored()
                self._wake.set()
            self._housekeeping_alerts()

    async def _session(self, link: Link) -> None:
        """One connection: online status, then the outbox until the connection ends or the bridge closes."""
        async with self._client() as client:
            await client.publish(self.status_topic, b"online", qos=1, retain=True)
            self.server_limits = {"receive_maximum": client.receive_maximum, "maximum_packet_size": client.maximum_packet_size}
            link.up(
                tls=self.up.use_tls, queued=self.outbox.count, **{k: v for k, v in self.server_limits.items() if v is not None}
            )
            if not await until_disconnect(client, self._feed(client, link)):
                raise aiomqtt.MqttError("upstream connection ended")
            with contextlib.suppress(aiomqtt.MqttError):
                await client.publish(self.status_topic, b"offline", qos=1, retain=True, timeout=2)

    async def _feed(self, client: AckClient, link: Link) -> None:
        """Hand committed messages to the client: live first, then refused ones due for a retry, then the
        backlog at replay_rate; at most `inflight` (or the server's Receive Maximum) at once."""
        ob = self.outbox
        self._commit()  # acknowledgements of the last connection must not be sent again
        split = ob.committed_id  # what was committed before this connection is backlog
        backlog_after = ob.first_id() - 1
        live_after = split
        live: deque[Row] = deque()
        backlog: deque[Row] = deque()
        for r in self._refused.values():
            r.due = None  # queued before this connection: the backlog sends them again
        self._retry_heap.clear()
        rate = self.up.outbox.replay_rate
        burst = max(1.0, min(float(self.up.outbox.inflight), rate))
        tokens, refilled = burst, time.monotonic()
        window = asyncio.Semaphore(min(self.up.outbox.inflight, client.receive_maximum or self.up.outbox.inflight))
        inflight: set[asyncio.Task[None]] = set()
        failure: list[BaseException] = []
        replaying, replayed_before = split > backlog_after, self.replayed
        if replaying:
            log.info("upstream replaying backlog", messages=ob.count, rate_per_s=rate)

        def done(t: asyncio.Task[None]) -> None:
            inflight.discard(t)
            window.release()
            if not t.cancelled() and t.exception() is not None:
                failure.append(t.exception())  # type: ignore[arg-type]
                self._wake.set()

        try:
            while True:
                if failure:
                    raise failure[0]
                self._wake.clear()
                if not live and ob.committed_id > live_after:  # live lane: drained even when closing
                    live.extend(ob.read(live_after, limit=_BATCH))
                    if live:
                        live_after = live[-1].id
                row: Row | None = None
                if live:
                    row = live.popleft()
                elif not self._closing:
                    row = self._retry_due()
                    if row is None and not backlog and backlog_after < split:
                        backlog.extend(ob.read(backlog_after, split, limit=_BATCH))
                        backlog_after = backlog[-1].id if backlog else split
                        if not backlog and replaying:
                            replaying = False
                            log.info("upstream backlog replayed", messages=self.replayed - replayed_before)
                    if row is None and backlog:
                        now = time.monotonic()
                        tokens = min(burst, tokens + (now - refilled) * rate)
                        refilled = now
                        if tokens >= 1.0:
                            tokens -= 1.0
                            row = backlog.popleft()
                            self.replayed += 1
                        else:
                            with contextlib.suppress(TimeoutError):
                                await asyncio.wait_for(self._wake.wait(), (1.0 - tokens) / rate)
                            continue
                if row is None:
                    if self._closing:
                        if inflight:
                            await asyncio.wait(set(inflight))
                            continue
                        return
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._next_retry_in())
                    continue
                limit = client.maximum_packet_size
                if limit is not None and (size := client.packet_size(row.topic, row.payload)) > limit:
                    self._undeliverable(row, f"packet of {size} bytes, the server takes at most {limit}", 0x95)
                    continue
                await window.acquire()
                t = asyncio.create_task(self._send(client, row, link))
                inflight.add(t)
                t.add_done_callback(done)
        finally:
            for t in list(inflight):
                t.cancel()

    async def _send(self, client: AckClient, row: Row, link: Link) -> None:
        try:
            code = await client.publish_acked(row.topic, row.payload, qos=1)
        except ValueError as e:  # paho refuses the message itself (a topic with a wildcard, a huge payload)
            self._undeliverable(row, f"not a valid MQTT publish: {e}", None)
            return
        if code >= 0x80:
            self._refused_by_server(row, code)
            return
        if code == NO_MATCHING_SUBSCRIBERS and self.up.hold_unheard:
            self._unheard(row)
            return
        self.outbox.ack(row.id)  # PUBACK: deleted with the next commit
        self.published += 1
        link.progress()
        if self._refused.pop(row.id, None) is not None:
            self.refused_then_delivered += 1

    # ------------------------------------------------------------------ what the server will not take

    def _refused_by_server(self, row: Row, code: int) -> None:
        """A PUBACK >= 0x80: dead-lettered when no retry can help, else kept and retried with backoff
        until it has been refused for `REFUSED_GIVE_UP_S`."""
        name = _reason_name(code)
        self.refusals[f"0x{code:02x}"] = self.refusals.get(f"0x{code:02x}", 0) + 1
        if code in PERMANENT_REFUSALS:
            self._undeliverable(row, f"refused by the server: 0x{code:02x} {name}", code)
            return
        now = time.monotonic()
        r = self._refused.get(row.id)
        if r is None or r.code == NO_MATCHING_SUBSCRIBERS:
            r = self._refused[row.id] = _Refused(now)
        r.code = code
        if now - r.since >= REFUSED_GIVE_UP_S:
            self._undeliverable(row, f"refused by the server for {now - r.since:.0f} s, last 0x{code:02x} {name}", code)
            return
        r.attempts += 1
        r.due = now + min(REFUSED_RETRY_CAP_S, REFUSED_RETRY_FIRST_S * 2.0 ** min(r.attempts - 1, 16))
        heapq.heappush(self._retry_heap, (r.due, row.id))
        self._rl.warning(
            "refused",
            "upstream broker refused a message; kept and retried",
            topic=_short(row.topic),
            reason_code=f"0x{code:02x}",
            reason=name,
            refused_messages=len(self._refused),
            retry_in_s=round(r.due - now, 1),
        )
        self._raise(
            "upstream_refused",
            f"upstream broker refuses messages (0x{code:02x} {name}), e.g. {_short(row.topic)}: kept in the outbox and retried",
            {"reason_code": code, "reason": name, "topic": _short(row.topic)},
        )
        self._wake.set()

    def _unheard(self, row: Row) -> None:
        """PUBACK 0x10: the broker took the message but nobody, not even an offline persistent session,
        subscribes to it; it reached no one. Kept and offered again (no alarm: the outbox and its
        `unheard` count show it), so a consumer that subscribes after the broker restarted gets it."""
        self.unheard += 1
        now = time.monotonic()
        r = self._refused.get(row.id)
        if r is None:
            r = self._refused[row.id] = _Refused(now, code=NO_MATCHING_SUBSCRIBERS)
        r.attempts += 1
        r.due = now + min(REFUSED_RETRY_CAP_S, REFUSED_RETRY_FIRST_S * 2.0 ** min(r.attempts - 1, 16))
        heapq.heappush(self._retry_heap, (r.due, row.id))
        self._rl.warning(
            "unheard",
            "upstream broker has no subscriber for a message; kept and offered again",
            topic=_short(row.topic),
            unheard=self.unheard,
            retry_in_s=round(r.due - now, 1),
        )
        self._wake.set()

    def _retry_due(self) -> Row | None:
        """The refused message whose retry is due first, if one is (a heap: refusals may be many)."""
        heap, now = self._retry_heap, time.monotonic()
        while heap and heap[0][0] <= now:
            due, msg_id = heapq.heappop(heap)
            r = self._refused.get(msg_id)
            if r is None or r.due != due:
                continue  # delivered, dead-lettered, or rescheduled meanwhile
            r.due = None
            rows = self.outbox.read_ids([msg_id])
            if rows:
                return rows[0]
            self._refused.pop(msg_id, None)  # dropped by the size policy meanwhile
        return None

    def _next_retry_in(self) -> float | None:
        heap = self._retry_heap
        while heap:
            due, msg_id = heap[0]
            r = self._refused.get(msg_id)
            if r is not None and r.due == due:
                return max(0.0, due - time.monotonic())
            heapq.heappop(heap)  # delivered, dead-lettered, or rescheduled meanwhile
        return None

    def _undeliverable(self, row: Row, reason: str, code: int | None, at_once: bool = False) -> None:
        """Out of the queue into the dead-letter table, counted, and said with a gateway alarm."""
        self._refused.pop(row.id, None)
        kind = self.outbox.dead_letter(row.id, reason)
        if kind is None:
            return
        self._last_dead_letter = time.monotonic()
        what = f"{kind.name.lower()} {_short(row.topic)}"
        self._rl.warning(
            "dead",
            "upstream message undeliverable; moved to the dead-letter table",
            message=what,
            reason=reason,
            reason_code=None if code is None else f"0x{code:02x}",
            dead_lettered=dict(self.outbox.dead_lettered),
        )
        self._raise(
            "outbox_dead_letter",
            f"upstream cannot take a message, moved aside (dead letter): {what}: {reason}",
            {
                "topic": _short(row.topic),
                "message_kind": kind.name.lower(),
                "reason": reason,
                "reason_code": code,
                "dead_lettered": dict(self.outbox.dead_lettered),
            },
            at_once,
        )

    async def close(self, timeout: float = 2.0) -> None:
        """Stop taking work; what is unacknowledged stays in the outbox for the next start.

        Returns once the connection task has delivered what it could, or after `timeout`.
        """
        self._closing = True
        self._commit()
        self._closed.set()
        self._wake.set()
        if self._task is not None and not self._task.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._task), timeout)

    @property
    def connected(self) -> bool:
        return self.link.connected

    def stats(self) -> BridgeStats:
        return BridgeStats(
            **self.link.stats(),
            **self.outbox.stats(),
            published=self.published,
            replayed=self.replayed,
            refused=dict(self.refusals),
            refused_pending=len(self._refused),
            unheard=self.unheard,
            server_limits=dict(self.server_limits),
        )


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def build(
    cfg: GatewayConfig, seq: SeqSource, on_alert: Callable[[Alert], None] | None = None, engine: Engine | None = None
) -> Bridge:
    """The gateway's bridge: `on_alert` raises its own alerts through the gateway, `engine` feeds readings."""
    return Bridge(cfg, seq, on_alert, engine=engine)
