"""OPC UA and CoAP intake rates with CPU use: what the gateway's sources take from real peers.

    python benchmarks/bench_opcua_coap.py [--seconds 10] [--only opcua|coap]

Each peer runs in a process of its own (an asyncua server writing its variables, an aiocoap
device notifying its observers); the measuring process runs the real source, intake and engine
(threshold rules on, models off) and counts what reaches the engine. CPU is the measuring
process's own user+system time over the window, as a share of one core; the peer's CPU is
reported too because on a small box the peer is usually the limit.

Scenarios:
  opcua_40_items_100ms  one server, 40 monitored items, sampling and publishing 100 ms, each
                        variable written every 100 ms (400 changes/s offered)
  opcua_40_items_max    the same 40 items, sampling 0 (fastest), publishing 50 ms, queue 100,
                        the server writing as fast as it can
  coap_observe_800      8 observed resources, each notified every 10 ms (800 notifications/s
                        offered, SenML packs of 5 values; aiocoap sends them confirmable)
  coap_observe_max      the same, the device notifying as fast as it can

Prints a table and writes benchmarks/results/opcua_coap.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write
from tests.peers import free_port

SIGNALS = ("vibration", "pressure", "temperature", "flow", "current")
HERE = Path(__file__).resolve()


def cpu_of(pid: int) -> float:
    """User+system CPU seconds of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- peers (child processes)


async def opcua_peer(port: int, assets: int, interval_s: float) -> None:
    import logging

    from asyncua import Server, ua

    logging.getLogger("asyncua").setLevel(logging.ERROR)
    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/pumps")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    ns = await server.register_namespace("urn:bench:pumps")
    nodeids = []
    for i in range(assets):
        obj = await server.nodes.objects.add_object(ua.NodeId(f"pump-{i}", ns), ua.QualifiedName(f"pump-{i}", ns))
        for s in SIGNALS:
            var = await obj.add_variable(ua.NodeId(f"pump-{i}.{s}", ns), ua.QualifiedName(s, ns), 0.0)
            nodeids.append(var.nodeid)
    await server.start()
    print("ready", flush=True)
    k = 0
    next_t = time.monotonic()
    while True:
        k += 1
        now = dt.datetime.now(dt.UTC)
        for j, nid in enumerate(nodeids):
            v = 3.0 + ((k + j) % 50) * 0.01  # always a change, never an alarm
            await server.write_attribute_value(nid, ua.DataValue(ua.Variant(v, ua.VariantType.Double), SourceTimestamp=now))
        if interval_s > 0:
            next_t += interval_s
            await asyncio.sleep(max(0.0, next_t - time.monotonic()))
        else:
            await asyncio.sleep(0)


async def coap_peer(port: int, resources: int, interval_s: float) -> None:
    import aiocoap
    from aiocoap import resource

    class Pack(resource.ObservableResource):
        def __init__(self, asset: str) -> None:
            super().__init__()
            self.asset = asset
            self.payload = b"[]"

        async def render_get(self, request: Any) -> aiocoap.Message:
            return aiocoap.Message(payload=self.payload, content_format=110)

    site = resource.Site()
    packs = [Pack(f"pump-{i}") for i in range(resources)]
    for p in packs:
        site.add_resource(("pumps", p.asset), p)
    await aiocoap.Context.create_server_context(site, bind=("127.0.0.1", port), transports=["udp6"])
    print("ready", flush=True)
    k = 0
    while True:
        k += 1
        t = time.time()
        for p in packs:
            vals = [{"bn": f"{p.asset}/", "bt": t, "n": "vibration", "v": 3.0 + (k % 50) * 0.01}]
            vals += [{"n": s, "v": 10.0 + (k % 7)} for s in SIGNALS[1:]]
            p.payload = json.dumps(vals).encode()
            p.updated_state()
        await asyncio.sleep(interval_s)


# ---------------------------------------------------------------- the measuring side


def config(assets: int, source: dict[str, Any]) -> Any:
    from edgegw.config import GatewayConfig

    signals = {
        "vibration": {"hi": 7.1, "hihi": 11.0},
        "pressure": {"lo": 2.0},
        "temperature": {"hi": 80},
        "flow": {"lo": 5},
        "current": {"hi": 45},
    }
    return GatewayConfig.model_validate(
        {
            "profiles": {"pump": {"window_s": 30, "hop_s": 1, "max_rate_hz": 100, "signals": signals}},
            "assets": [{"id": f"pump-{i}", "profile": "pump"} for i in range(assets)],
            "sources": [source],
            "rollups": {"enabled": False},
        }
    )


def spawn(*args: str) -> subprocess.Popen[str]:
    p = subprocess.Popen([sys.executable, str(HERE), *args], stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None
    line = p.stdout.readline()
    if line.strip() != "ready":
        p.kill()
        raise RuntimeError(f"peer {args} did not start: {line!r}")
    return p


async def measure(
    sources: list[Any], engine: Any, counter: Any, started: Any, warmup: float, seconds: float, peer: subprocess.Popen[str]
) -> dict[str, Any]:
    """Run the sources; after warm-up, count what reaches the engine and the CPU it costs."""
    tasks = [asyncio.create_task(s.run(), name=s.name) for s in sources]
    try:
        deadline = time.monotonic() + 60
        while not all(started(s) for s in sources):
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {sum(map(started, sources))} of {len(sources)} sources started in 60 s")
            await asyncio.sleep(0.05)
        await asyncio.sleep(warmup)
        n0, r0 = counter(), engine.readings_in
        c0, p0, t0 = time.process_time(), cpu_of(peer.pid), time.monotonic()
        await asyncio.sleep(seconds)
        n1, r1 = counter(), engine.readings_in
        c1, p1, t1 = time.process_time(), cpu_of(peer.pid), time.monotonic()
    finally:
        for t in tasks:
            t.cancel()
        _, stuck = await asyncio.wait(tasks, timeout=10)
        if stuck:
            print(f"{len(stuck)} source task(s) did not stop within 10 s of cancel", file=sys.stderr, flush=True)
            for t in stuck:
                t.print_stack(file=sys.stderr)
    wall = t1 - t0
    rate = (n1 - n0) / wall
    cpu = (c1 - c0) / wall
    return {
        "seconds": round(wall, 2),
        "events_per_s": round(rate, 1),
        "readings_per_s": round((r1 - r0) / wall, 1),
        "gateway_cpu_pct_of_one_core": round(cpu * 100, 1),
        "gateway_cpu_us_per_event": round(cpu / rate * 1e6, 1) if rate else None,
        "peer_cpu_pct_of_one_core": round((p1 - p0) / wall * 100, 1),
        "rejected": dict(engine.rejected),
    }


async def bench_opcua(
    name: str, sampling_ms: float, publishing_ms: float, queue: int, write_interval_s: float, warmup: float, seconds: float
) -> dict[str, Any]:
    from edgegw.engine.engine import Engine
    from edgegw.intake import Intake
    from edgegw.sources.opcua import build

    print(f"{time.strftime('%H:%M:%S')} {name} ...", file=sys.stderr, flush=True)
    port, assets = free_port(), 8
    peer = spawn("--peer", "opcua", "--port", str(port), "--assets", str(assets), "--interval", str(write_interval_s))
    try:
        spec = {
            "type": "opcua",
            "endpoint": f"opc.tcp://127.0.0.1:{port}/pumps",
            "sampling_ms": sampling_ms,
            "publishing_ms": publishing_ms,
            "queue_size": queue,
            "nodes": [
                {"node": f"ns=2;s=pump-{i}.{s}", "asset": f"pump-{i}", "signal": s} for i in range(assets) for s in SIGNALS
            ],
        }
        cfg = config(assets, spec)
        alerts: list[Any] = []
        engine = Engine(cfg, alerts.append)
        intake = Intake(engine, cfg.ingest)
        src = build(cfg.sources[0], cfg, intake, "opcua-0")
        out = await measure([src], engine, lambda: src.changes, lambda s: s.sessions > 0, warmup, seconds, peer)
        out["sessions"] = src.sessions
    finally:
        peer.kill()
        peer.wait()
    offered = f"{len(SIGNALS) * assets / write_interval_s:.0f}/s" if write_interval_s > 0 else "as fast as possible"
    return {
        "scenario": name,
        "items": len(SIGNALS) * assets,
        "sampling_ms": sampling_ms,
        "publishing_ms": publishing_ms,
        "queue_size": queue,
        "offered": offered,
        **out,
    }


async def bench_coap(name: str, interval_s: float, warmup: float, seconds: float, resources: int = 8) -> dict[str, Any]:
    from edgegw.engine.engine import Engine
    from edgegw.intake import Intake
    from edgegw.sources.coap import build

    print(f"{time.strftime('%H:%M:%S')} {name} ...", file=sys.stderr, flush=True)
    port = free_port(socket.SOCK_DGRAM)
    peer = spawn("--peer", "coap", "--port", str(port), "--assets", str(resources), "--interval", str(interval_s))
    try:
        specs = [
            {"type": "coap", "mode": "observe", "uri": f"coap://127.0.0.1:{port}/pumps/pump-{i}", "observe_timeout_s": 5}
            for i in range(resources)
        ]
        cfg = config(resources, specs[0])
        alerts: list[Any] = []
        engine = Engine(cfg, alerts.append)
        intake = Intake(engine, cfg.ingest)
        from edgegw.config import CoapSource

        srcs = [build(CoapSource.model_validate(s), cfg, intake, f"coap-{i}") for i, s in enumerate(specs)]
        out = await measure(
            srcs, engine, lambda: sum(s.notifications for s in srcs), lambda s: s.registrations > 0, warmup, seconds, peer
        )
        out["registrations"] = sum(s.registrations for s in srcs)
    finally:
        peer.kill()
        peer.wait()
    offered = f"{resources / interval_s:.0f}/s" if interval_s > 0 else "as fast as possible"
    return {"scenario": name, "resources": resources, "values_per_notification": len(SIGNALS), "offered": offered, **out}


async def main_async(a: argparse.Namespace) -> None:
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    logging.getLogger("asyncua").setLevel(logging.ERROR)
    results = []
    if a.only in (None, "opcua"):
        results.append(await bench_opcua("opcua_40_items_100ms", 100, 100, 10, 0.1, a.warmup, a.seconds))
        results.append(await bench_opcua("opcua_40_items_max", 0, 50, 100, 0.0, a.warmup, a.seconds))
    if a.only in (None, "coap"):
        results.append(await bench_coap("coap_observe_800", 0.01, a.warmup, a.seconds))
        results.append(await bench_coap("coap_observe_max", 0.0, a.warmup, a.seconds))
    print(f"{'scenario':24} {'events/s':>10} {'readings/s':>11} {'gw CPU %':>9} {'us/event':>9} {'peer CPU %':>11}")
    for r in results:
        print(
            f"{r['scenario']:24} {r['events_per_s']:>10} {r['readings_per_s']:>11} "
            f"{r['gateway_cpu_pct_of_one_core']:>9} {r['gateway_cpu_us_per_event']!s:>9} "
            f"{r['peer_cpu_pct_of_one_core']:>11}"
        )
    path = write(
        "opcua_coap",
        {
            "results": results,
            "note": "events: OPC UA data changes or CoAP notifications taken by the source; readings: values the engine accepted",
        },
    )
    print(f"wrote {path}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--only", choices=["opcua", "coap"])
    p.add_argument("--peer", choices=["opcua", "coap"], help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--assets", type=int, default=8, help=argparse.SUPPRESS)
    p.add_argument("--interval", type=float, default=0.1, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.peer == "opcua":
        asyncio.run(opcua_peer(a.port, a.assets, a.interval))
    elif a.peer == "coap":
        asyncio.run(coap_peer(a.port, a.assets, a.interval))
    else:
        asyncio.run(main_async(a))


if __name__ == "__main__":
    main()
