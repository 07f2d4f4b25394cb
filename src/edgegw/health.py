"""Self-metrics: what the gateway is doing, for the people who run it for months without looking.

`Health.snapshot()` gathers counters the parts already keep (no per-reading work here): readings
in and rejected per reason, alerts raised, connection state per source and sink, hop (features +
batched inference) latency p50/p99, event-loop lag, outbox depth, RSS, uptime. `publish()` puts
it on `status/{gateway}/metrics` every `metrics.interval_s`; `run()` measures loop lag, keeps
systemd's STATUS= line current and, when configured, serves the same figures to Prometheus.
"""

from __future__ import annotations

import asyncio
import os
import resource
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import orjson
import structlog

from edgegw import sdnotify

if TYPE_CHECKING:
    from edgegw.gateway import Gateway

log = structlog.get_logger("edgegw.health")

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    """Resident memory of this process now, in MiB (0.0 where /proc is not there)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


def peak_rss_mb() -> float:
    """Highest resident memory so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentiles_ms(seconds: list[float], last: int = 512) -> dict[str, float] | None:
    """p50/p99/max in milliseconds over the most recent `last` durations; None before the first."""
    if not seconds:
        return None
    a = sorted(seconds[-last:])
    return {"p50": _ms(_pct(a, 50)), "p99": _ms(_pct(a, 99)), "max": _ms(a[-1]), "n": len(a)}


def _pct(a: list[float], q: float) -> float:
    """numpy's default (linear) percentile of sorted `a`, without numpy.percentile: that one
    imports numpy.ma on first use, ~1.2 MB resident for one figure a minute."""
    pos = (len(a) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(a) - 1)
    return a[lo] + (a[hi] - a[lo]) * (pos - lo)


def _ms(s: float) -> float:
    return round(s * 1000.0, 3)


def sink_depth(sink: object) -> int | None:
    """Messages a sink holds that are not delivered yet: its `depth` (int, property or method),
    else the size of its outbox (`outbox.count`); None when it keeps no queue we can see."""
    d = getattr(sink, "depth", None)
    if d is None:
        d = getattr(getattr(sink, "outbox", None), "count", None)
    if callable(d):
        try:
            d = d()
        except Exception as e:  # a metric must never take the daemon down
            log.warning("sink depth unavailable", sink=getattr(sink, "name", "?"), error=str(e))
            return None
    return int(d) if isinstance(d, int | float) else None


def part_stats(part: object) -> dict[str, Any]:
    """A source's or sink's own typed counters (`stats()`: the runtime's connection figures, the
    bridge's outbox, ...); `connected` always, from the part itself."""
    d: Any = {}
    f = getattr(part, "stats", None)
    if callable(f):
        try:
            d = f()
        except Exception as e:  # a metric must never take the daemon down
            log.warning("stats unavailable", part=getattr(part, "name", "?"), error=str(e))
    return {**(d if isinstance(d, dict) else {}), "connected": bool(getattr(part, "connected", False))}


class LoopLag:
    """How late a short sleep wakes up. A busy or blocked event loop shows here first, and it is
    what delays every alarm; systemd's watchdog catches the extreme case (a loop that never wakes)."""

    def __init__(self, period_s: float = 0.25) -> None:
        self.period_s = period_s
        self.last_s = 0.0
        self.max_s = 0.0  # since the last `take_max()`
        self.worst_s = 0.0  # since start

    def take_max(self) -> float:
        """The largest lag since the previous call (one metrics interval), then start again."""
        m, self.max_s = self.max_s, 0.0
        return m

    def record(self, lag_s: float) -> None:
        self.last_s = lag_s
        self.max_s = max(self.max_s, lag_s)
        self.worst_s = max(self.worst_s, lag_s)

    async def run(self, on_tick: Any = None) -> None:
        while True:
            t0 = time.monotonic()
            await asyncio.sleep(self.period_s)
            self.record(max(0.0, time.monotonic() - t0 - self.period_s))
            if on_tick is not None:
                on_tick()


class Health:
    """Self-metrics of one gateway. Reads the parts' own counters; owns the loop-lag probe."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.topic = f"status/{gw.cfg.gateway.id}/metrics"
        self.lag = LoopLag()
        self.published = 0
        self._status = ""
        self._status_checked = 0.0
        self._prom_server: Any = None
        self.prometheus_port: int | None = None  # the bound port once the endpoint is up
        self._last: dict[str, Any] | None = None  # the latest snapshot, for Prometheus scrapes

    # -- figures

    def snapshot(self, lag_max_s: float | None = None) -> dict[str, Any]:
        """One JSON-ready picture of the gateway. Cheap: counters only, plus a percentile over
        the last 512 hop durations."""
        gw = self.gw
        e = gw.engine
        now = time.time()
        sinks: dict[str, dict[str, Any]] = {}
        outbox: int | None = None
        for s in gw.sinks:
            depth = sink_depth(s)
            sinks[s.name] = {"depth": depth, "errors": gw.sink_errors.get(s.name, 0), **part_stats(s)}
            if s.name == "upstream" and depth is not None:
                outbox = depth
        local = sinks.get(gw.local.name, {})
        rejected = dict(e.rejected)
        hop = percentiles_ms(e.hop_seconds)
        return {
            "ts": round(now, 3),
            "gateway": gw.cfg.gateway.id,
            "site": gw.cfg.gateway.site,
            "uptime_s": round(now - gw.started, 1),
            "messages_in": gw.intake.messages_in,
            "bytes_in": gw.intake.bytes_in,
            "readings_in": e.readings_in,
            "clamped_future": e.clamped_future,
            "rejected": rejected,
            "rejected_total": sum(rejected.values()),
            "alerts_raised": gw.alerts_raised,
            "alarms": gw.alarm_stats(),
            "hops": e.hops,
            "windows_skipped": e.windows_skipped,
            "hop_ms": hop,  # one profile's features + batched model inference, per hop
            "hop_ms_p50": hop["p50"] if hop else None,
            "hop_ms_p99": hop["p99"] if hop else None,
            "loop_lag_ms": {
                "last": round(self.lag.last_s * 1000, 2),
                "max": round((self.lag.max_s if lag_max_s is None else lag_max_s) * 1000, 2),
            },
            "sources": {s.name: part_stats(s) for s in gw.sources},
            "sinks": sinks,
            "local_queue": local.get("depth"),
            "local_dropped": local.get("dropped", 0),
            "outbox_depth": outbox,
            "models": sorted(e.models),
            "rss_mb": round(rss_mb(), 1),
            "peak_rss_mb": round(peak_rss_mb(), 1),
        }

    def publish(self) -> None:
        """Put a snapshot on status/{gateway}/metrics (QoS 0, not retained)."""
        snap = self.snapshot(self.lag.take_max())
        self._last = snap
        self.gw.local.publish(self.topic, orjson.dumps(snap))
        self.published += 1

    def status_line(self) -> str:
        """The one-line state systemd shows in `systemctl status`: connections, not counters."""
        gw = self.gw
        up = sum(1 for s in gw.sources if s.connected)
        parts = [f"{up}/{len(gw.sources)} source(s) connected"]
        for s in gw.sinks:
            parts.append(f"{'local broker' if s is gw.local else s.name} {'up' if s.connected else 'down'}")
        parts.append(f"{len(gw.engine.assets)} asset(s)")
        if gw.engine.models:
            parts.append(f"models {','.join(sorted(gw.engine.models))}")
        learner = getattr(gw, "learner", None)
        if learner is not None:
            parts.append(learner.summary())
        return "running: " + ", ".join(parts)

    def _tick(self) -> None:
        now = time.monotonic()
        if now - self._status_checked < 1.0:
            return
        self._status_checked = now
        line = self.status_line()
        if line != self._status:
            self._status = line
            sdnotify.notify(f"STATUS={line}")
        if self._prom_server is not None:
            self._last = self.snapshot()

    # -- running

    async def run(self) -> None:
        """Loop-lag probe, STATUS= updates and (when configured) the Prometheus endpoint."""
        self.start_prometheus()
        try:
            await self.lag.run(self._tick)
        finally:
            self.stop_prometheus()

    def start_prometheus(self) -> None:
        """Serve /metrics on metrics.prometheus_port (off by default; localhost unless told)."""
        m = self.gw.cfg.metrics
        if m.prometheus_port is None:
            return
        try:
            from prometheus_client import start_http_server
            from prometheus_client.registry import CollectorRegistry
        except ImportError:
            log.error(
                "prometheus endpoint configured but prometheus-client is not installed", hint="pip install 'edgegw[metrics]'"
            )
            return
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_PrometheusView(self))
        self._last = self.snapshot()
        try:
            server, _thread = start_http_server(m.prometheus_port, addr=m.prometheus_bind, registry=registry)
        except OSError as e:
            log.error("prometheus endpoint not started", bind=m.prometheus_bind, port=m.prometheus_port, error=str(e))
            return
        self._prom_server = server
        self.prometheus_port = int(server.server_address[1])
        log.info("prometheus endpoint", url=f"http://{m.prometheus_bind}:{self.prometheus_port}/metrics")

    def stop_prometheus(self) -> None:
        if self._prom_server is not None:
            self._prom_server.shutdown()
            self._prom_server.server_close()
            self._prom_server = None


class _PrometheusView:
    """Turns the latest snapshot (refreshed each second on the event loop) into metric families.
    Scrapes run on the server's thread and only read that finished dict: no locks, no races."""

    def __init__(self, health: Health) -> None:
        self.health = health

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        s = self.health._last
        if s is None:
            return
        yield GaugeMetricFamily("edgegw_uptime_seconds", "Seconds since the gateway started.", value=s["uptime_s"])
        yield CounterMetricFamily("edgegw_messages_in", "Messages received from sources.", value=s["messages_in"])
        yield CounterMetricFamily("edgegw_bytes_in", "Payload bytes received from sources.", value=s["bytes_in"])
        yield CounterMetricFamily("edgegw_readings_in", "Values accepted into the engine.", value=s["readings_in"])
        yield CounterMetricFamily(
            "edgegw_clamped_future", "Readings stamped far ahead that took their arrival time.", value=s["clamped_future"]
        )
        rej = CounterMetricFamily("edgegw_rejected", "Inputs dropped, by reason.", labels=["reason"])
        for reason, n in sorted(s["rejected"].items()):
            rej.add_metric([reason], n)
        yield rej
        yield CounterMetricFamily("edgegw_alerts_raised", "Alarms raised.", value=s["alerts_raised"])
        yield CounterMetricFamily("edgegw_hops", "Asset windows turned into features.", value=s["hops"])
        hop = GaugeMetricFamily(
            "edgegw_hop_seconds", "Hop duration (features + inference), recent quantiles.", labels=["quantile"]
        )
        if s["hop_ms"]:
            hop.add_metric(["0.5"], s["hop_ms"]["p50"] / 1000)
            hop.add_metric(["0.99"], s["hop_ms"]["p99"] / 1000)
        yield hop
        lag = GaugeMetricFamily("edgegw_event_loop_lag_seconds", "How late a 250 ms sleep woke up.", labels=["which"])
        lag.add_metric(["last"], s["loop_lag_ms"]["last"] / 1000)
        lag.add_metric(["max"], s["loop_lag_ms"]["max"] / 1000)
        yield lag
        conn = GaugeMetricFamily("edgegw_connected", "1 when a source or sink is connected.", labels=["kind", "name"])
        for name, d in sorted(s["sources"].items()):
            conn.add_metric(["source", name], float(d["connected"]))
        for name, d in sorted(s["sinks"].items()):
            conn.add_metric(["sink", name], float(d["connected"]))
        yield conn
        connects = CounterMetricFamily("edgegw_connects", "Connections made, per source and sink.", labels=["kind", "name"])
        failures = CounterMetricFamily(
            "edgegw_connection_failures",
            "Connection attempts failed and connections lost, per source and sink.",
            labels=["kind", "name"],
        )
        for kind, parts in (("source", s["sources"]), ("sink", s["sinks"])):
            for name, d in sorted(parts.items()):
                if "connects" in d:
                    connects.add_metric([kind, name], d["connects"])
                    failures.add_metric([kind, name], d["failures"])
        yield connects
        yield failures
        q = GaugeMetricFamily("edgegw_sink_depth", "Messages held by a sink, not yet delivered.", labels=["sink"])
        for name, d in sorted(s["sinks"].items()):
            if d["depth"] is not None:
                q.add_metric([name], d["depth"])
        yield q
        errs = CounterMetricFamily("edgegw_sink_errors", "Alerts and rollups a sink raised on.", labels=["sink"])
        for name, d in sorted(s["sinks"].items()):
            errs.add_metric([name], d["errors"])
        yield errs
        if s["outbox_depth"] is not None:
            yield GaugeMetricFamily("edgegw_outbox_depth", "Messages in the upstream outbox.", value=s["outbox_depth"])
        yield from _history_metrics(s["sinks"].get("history"))
        yield GaugeMetricFamily("edgegw_resident_memory_bytes", "Resident memory.", value=s["rss_mb"] * 2**20)


def _history_metrics(h: dict[str, Any] | None) -> Iterator[Any]:
    """The historian's figures (sinks.history in the JSON metrics), when history is on."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    if not h:
        return
    rows = CounterMetricFamily("edgegw_history_rows_written", "Rows history wrote, by kind.", labels=["kind"])
    for kind in ("rows", "features", "journal", "raw"):
        rows.add_metric([kind], h.get(f"{kind}_written", 0))
    yield rows
    yield GaugeMetricFamily("edgegw_history_bytes", "Bytes of the history file and its WAL.", value=h.get("bytes", 0))
    for name, key, what in (
        ("edgegw_history_purged", "purged", "Rows deleted for their age."),
        ("edgegw_history_cut", "cut", "Rows deleted to stay under history.max_mb."),
        ("edgegw_history_write_errors", "write_errors", "History transactions that failed."),
        ("edgegw_history_lost", "lost", "Rows history could not write."),
    ):
        yield CounterMetricFamily(name, what, value=h.get(key, 0))
    if h.get("last_flush") is not None:
        yield GaugeMetricFamily(
            "edgegw_history_last_flush_timestamp_seconds", "When history last committed.", value=h["last_flush"]
        )
    oldest = GaugeMetricFamily("edgegw_history_oldest_timestamp_seconds", "The oldest row per tier.", labels=["tier"])
    for tier, t in sorted((h.get("oldest") or {}).items()):
        if t is not None:
            oldest.add_metric([tier], t)
    yield oldest
