"""OPC UA source (asyncua client): one endpoint, one subscription, one monitored item per node.

Each connection is a fresh client and session: connect (security policy and mode, client
certificate, pinned server certificate, user name or anonymous), resolve every node (NodeId or
browse path), create the subscription and every monitored item, then take the publish responses
straight into the intake. asyncua's own reconnect is off on purpose: when the connection is lost
(its watchdog probe fails, the socket closes, or publish responses - data or keep-alives - stop for
twice the keep-alive) the whole client is dropped and built again after a capped, jittered backoff,
so every monitored item is created anew on the new session. Nothing is resumed from a session the
server may have forgotten, and a node that fails does not stop the others.

The publish callback goes through asyncua's raw service layer (`client.uaclient`): one call per
publish response, no per-value task or queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from typing import Any

import structlog
from asyncua import Client, ua
from asyncua.crypto import security_policies

from edgegw.backoff import Backoff
from edgegw.certs import application_uri_of
from edgegw.config import GatewayConfig, OpcuaSource
from edgegw.intake import Intake
from edgegw.records import Quality
from edgegw.runtime import Link, LinkStats, supervise

log = structlog.get_logger("edgegw.sources.opcua")

_POLICIES: dict[str, Any] = {
    "Basic256Sha256": security_policies.SecurityPolicyBasic256Sha256,
    "Aes128_Sha256_RsaOaep": security_policies.SecurityPolicyAes128Sha256RsaOaep,
    "Aes256_Sha256_RsaPss": security_policies.SecurityPolicyAes256Sha256RsaPss,
}
_NETWORK_ERRORS = (OSError, TimeoutError, ConnectionError, ua.UaError)
_NAN = float("nan")


class ConnectionLost(ConnectionError):
    """The session is gone or silent; the client is rebuilt."""


class OpcuaTelemetrySource:
    """One OPC UA endpoint and its monitored nodes."""

    def __init__(self, spec: OpcuaSource, cfg: GatewayConfig, intake: Intake, name: str) -> None:
        self.name = name
        self.spec = spec
        self.intake = intake
        self.link = Link(name, spec.endpoint)
        self.backoff = Backoff(initial=0.5, cap=spec.reconnect_max_s)
        # client handle h (1-based) -> (asset, signal) of spec.nodes[h - 1]
        self.targets: list[tuple[str, str]] = [(n.asset, n.signal) for n in spec.nodes]
        self.assets = frozenset(a for a, _ in self.targets)
        self.ts_mode = spec.timestamp
        self.items_created = 0  # monitored items created, over all sessions
        self.changes = 0  # data changes taken
        self.last_publish = 0.0  # monotonic time of the last publish response (data or keep-alive)
        self._lost: asyncio.Event | None = None

    # ---------------------------------------------------------------- hot path

    def on_publish(self, result: ua.PublishResult) -> None:
        """asyncua's publish-loop callback: every data change of one publish response."""
        self.last_publish = time.monotonic()
        data = result.NotificationMessage.NotificationData
        if not data:
            return  # keep-alive
        self.intake.message()
        now = time.time()
        for notif in data:
            if type(notif) is ua.DataChangeNotification:
                for item in notif.MonitoredItems:
                    self.take(item.ClientHandle, item.Value, now)
            elif type(notif) is ua.StatusChangeNotification:
                # the subscription died on the server (timeout) or the client saw the link go (BadShutdown)
                log.warning("subscription status change", source=self.name, status=notif.Status.name)
                if self._lost is not None:
                    self._lost.set()

    def take(self, handle: int, dv: ua.DataValue | None, now: float) -> None:
        intake = self.intake
        if dv is None or not 0 < handle <= len(self.targets):
            intake.reject("opcua_unknown_handle", source=self.name, handle=handle)
            return
        asset, signal = self.targets[handle - 1]
        ts: Any = None
        if self.ts_mode == "source":
            ts = dv.SourceTimestamp or dv.ServerTimestamp
        elif self.ts_mode == "server":
            ts = dv.ServerTimestamp
        t = ts.timestamp() if ts is not None else now
        if not intake.ts_ok(t, now):
            return
        self.changes += 1
        status = dv.StatusCode
        severity = (status.value >> 30) if status is not None else 0
        if severity >= 2:  # Bad: a quality problem, not a number
            intake.put(asset, signal, t, _NAN, Quality.BAD)
            return
        v = dv.Value.Value if dv.Value is not None else None
        tv = type(v)
        if tv is float or tv is int or tv is bool:
            x = float(v)  # type: ignore[arg-type]
        else:
            intake.reject("wrong_type", asset=asset, signal=signal, detail=tv.__name__)
            return
        if not math.isfinite(x):
            intake.put(asset, signal, t, x, Quality.BAD)
        else:
            intake.put(asset, signal, t, x, Quality.UNCERTAIN if severity == 1 else Quality.GOOD)

    # ---------------------------------------------------------------- connection

    @property
    def connected(self) -> bool:
        return self.link.connected

    @property
    def sessions(self) -> int:
        """Sessions that got as far as a running subscription."""
        return self.link.connects

    @property
    def attempts(self) -> int:
        """Connection attempts: sessions plus failures (the one under way counts once it ends)."""
        return self.link.connects + self.link.failures

    def stats(self) -> LinkStats:
        return self.link.stats()

    async def run(self) -> None:
        await supervise(self.link, self._session, self.backoff, expected=_NETWORK_ERRORS)

    async def _client(self) -> Client:
        spec = self.spec
        client = Client(spec.endpoint, timeout=spec.timeout_s, watchdog_intervall=spec.watchdog_s)
        client.name = client.description = f"edgegw {self.name}"
        client.session_timeout = max(60_000, int(spec.keepalive_s * 4000))
        sec = spec.security
        if sec.policy != "None":
            assert sec.certificate and sec.private_key  # the config model guarantees both
            uri = sec.application_uri or application_uri_of(sec.certificate)
            if uri:
                client.application_uri = uri
            await client.set_security(
                _POLICIES[sec.policy],
                certificate=sec.certificate,
                private_key=sec.private_key,
                server_certificate=sec.server_certificate,
                mode=ua.MessageSecurityMode[sec.mode],
            )
        if spec.username:
            client.set_user(spec.username)
            if spec.password is not None:
                client.set_password(spec.password.get_secret_value())
        return client

    async def _session(self, link: Link) -> None:
        spec = self.spec
        lost = self._lost = asyncio.Event()
        async with asyncio.timeout(spec.timeout_s * 2):
            client = await self._client()

        async def on_lost(exc: Exception) -> None:
            lost.set()

        client.connection_lost_callback = on_lost
        async with asyncio.timeout(spec.timeout_s * 2):
            await client.connect()
        try:
            silence = await self._subscribe(client)
            link.up(source=self.name, items=self.items_created)
            changes = self.changes
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(silence / 2, 1.0)):
                        await lost.wait()
                if time.monotonic() - self.last_publish > silence:
                    raise ConnectionLost(f"no publish response for {silence:.1f} s")
                if self.changes != changes:
                    link.progress()
            raise ConnectionLost("connection lost")
        finally:
            self._lost = None
            with contextlib.suppress(Exception):  # the server may be gone: closing is best effort
                async with asyncio.timeout(spec.timeout_s):
                    await client.disconnect()

    async def _resolve(self, client: Client) -> list[ua.NodeId | None]:
        """NodeIds of every configured node, None where one cannot be found (logged, skipped)."""
        out: list[ua.NodeId | None] = []
        objects = client.nodes.objects
        for n in self.spec.nodes:
            try:
                if n.node:
                    nid = ua.NodeId.from_string(n.node)
                    uri = getattr(nid, "NamespaceUri", None)
                    if uri:  # nsu=<uri>;... : the index is the server's business, looked up per session
                        index = ua.Int16(await client.get_namespace_index(uri))
                        nid = ua.NodeId(nid.Identifier, index, nid.NodeIdType)
                    out.append(nid)
                else:
                    assert n.browse_path
                    node = await objects.get_child(n.browse_path.strip("/").split("/"))
                    out.append(node.nodeid)
            except (ua.UaError, ValueError) as e:  # refused, not found, unknown namespace URI
                log.warning("opcua node not found", source=self.name, node=n.node or n.browse_path, error=str(e))
                self.intake.reject("opcua_node_unknown", source=self.name)
                out.append(None)
        return out

    async def _subscribe(self, client: Client) -> float:
        """Create the subscription and every monitored item; return the silence that means 'lost'."""
        spec = self.spec
        nodeids = await self._resolve(client)
        params = ua.CreateSubscriptionParameters()
        params.RequestedPublishingInterval = spec.publishing_ms
        params.RequestedMaxKeepAliveCount = max(1, math.ceil(spec.keepalive_s * 1000 / spec.publishing_ms))
        params.RequestedLifetimeCount = params.RequestedMaxKeepAliveCount * 6
        params.MaxNotificationsPerPublish = 0  # no limit
        params.PublishingEnabled = True
        params.Priority = 0
        self.last_publish = time.monotonic()
        res = await client.uaclient.create_subscription(params, self.on_publish)
        keepalive_s = res.RevisedPublishingInterval * res.RevisedMaxKeepAliveCount / 1000
        flt = None
        if spec.deadband:
            flt = ua.DataChangeFilter()
            flt.Trigger = ua.DataChangeTrigger.StatusValue
            flt.DeadbandType = ua.DeadbandType.Absolute if spec.deadband_type == "absolute" else ua.DeadbandType.Percent
            flt.DeadbandValue = spec.deadband
        requests = []
        for handle, nodeid in enumerate(nodeids, start=1):
            if nodeid is None:
                continue
            rv = ua.ReadValueId()
            rv.NodeId = nodeid
            rv.AttributeId = ua.AttributeIds.Value
            mp = ua.MonitoringParameters()
            mp.ClientHandle = handle
            mp.SamplingInterval = spec.sampling_ms
            mp.QueueSize = spec.queue_size
            mp.DiscardOldest = True
            if flt is not None:
                mp.Filter = flt
            req = ua.MonitoredItemCreateRequest()
            req.ItemToMonitor = rv
            req.MonitoringMode = ua.MonitoringMode.Reporting
            req.RequestedParameters = mp
            requests.append(req)
        created = 0
        if requests:
            cp = ua.CreateMonitoredItemsParameters()
            cp.SubscriptionId = res.SubscriptionId
            cp.ItemsToCreate = requests
            cp.TimestampsToReturn = ua.TimestampsToReturn.Both
            results = await client.uaclient.create_monitored_items(cp)
            for req, r in zip(requests, results, strict=True):
                if r.StatusCode.is_good():
                    created += 1
                else:
                    n = spec.nodes[req.RequestedParameters.ClientHandle - 1]
                    log.warning(
                        "opcua monitored item refused", source=self.name, node=n.node or n.browse_path, status=r.StatusCode.name
                    )
                    self.intake.reject("opcua_item_refused", source=self.name)
        self.items_created += created
        log.info(
            "opcua subscribed",
            source=self.name,
            endpoint=spec.endpoint,
            items=created,
            of=len(spec.nodes),
            publishing_ms=res.RevisedPublishingInterval,
            keepalive_s=round(keepalive_s, 2),
        )
        return 2 * keepalive_s + spec.timeout_s


def build(spec: OpcuaSource, cfg: GatewayConfig, intake: Intake, name: str) -> OpcuaTelemetrySource:
    return OpcuaTelemetrySource(spec, cfg, intake, name)
