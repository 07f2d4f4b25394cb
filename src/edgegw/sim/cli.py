"""`edgegw simulate`: a pump house with injected faults, live over MQTT / OPC UA / CoAP, or as a
labelled CSV history for `edgegw train` and `edgegw backtest`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import numpy as np

from edgegw.records import iso
from edgegw.sim.faults import MODES, PUMP_MODES, Fault, parse_fault, random_faults
from edgegw.sim.fleet import Fleet
from edgegw.sim.history import write_history
from edgegw.watch import host_port

DEFAULT_HISTORY_START = "2026-01-01T00:00:00Z"


def asset_names(pumps: int, assets: str | None) -> list[str]:
    if assets:
        return [a.strip() for a in assets.split(",") if a.strip()]
    return [f"pump-{i}" for i in range(1, pumps + 1)]


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pumps", type=int, default=4, help="number of pumps, named pump-1..pump-N (default 4)")
    p.add_argument("--assets", help="comma-separated pump names instead of --pumps")
    p.add_argument("--rate", type=float, default=2.0, help="samples per second per pump (default 2)")
    p.add_argument("--duration", type=float, help="seconds to run (live: default forever; --csv: default 3600)")
    p.add_argument("--seed", type=int, default=0, help="random seed: same seed, same history (default 0)")
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help=f"ASSET:MODE@START[,ramp=S][,for=S][,signal=NAME], e.g. pump-1:bearing_wear@60,ramp=90; "
        f"modes: {', '.join(MODES)}; pump performance: {', '.join(PUMP_MODES)}",
    )
    p.add_argument("--random-faults", type=int, default=0, metavar="N", help="inject N faults at random times")
    p.add_argument("--broker", metavar="HOST:PORT", help="publish JSON telemetry to this MQTT broker")
    p.add_argument("--topic", default="plant/pumps/{asset}/telemetry", help="MQTT topic template")
    p.add_argument("--opcua-port", type=int, help="serve Objects/Pumps/<id>/<signal> over OPC UA on this port")
    p.add_argument("--coap-port", type=int, help="serve observable SenML resources /pumps/<id> over CoAP (UDP)")
    p.add_argument("--bind", default="127.0.0.1", help="address the OPC UA and CoAP servers listen on")
    p.add_argument("--csv", metavar="FILE", help="write labelled history to FILE (as fast as it computes)")
    p.add_argument("--truth", action="store_true", help="--csv: add the true pump figures (true_head_m, true_hydraulic_kw, ...)")
    p.add_argument(
        "--start", default=DEFAULT_HISTORY_START, help=f"--csv: time of the first row (default {DEFAULT_HISTORY_START})"
    )


def build_fleet(args: argparse.Namespace, duration: float) -> tuple[Fleet, list[Fault]]:
    assets = asset_names(args.pumps, args.assets)
    faults = [parse_fault(s) for s in args.fault]
    if args.random_faults:
        rng = np.random.default_rng([args.seed, 0xFA017])
        faults += random_faults(assets, args.random_faults, duration, rng)
    return Fleet(assets, faults, seed=args.seed, rate_hz=args.rate), faults


def main(args: argparse.Namespace) -> int:
    live = bool(args.broker or args.opcua_port or args.coap_port)
    if not live and not args.csv:
        print("edgegw simulate: nothing to do: give --broker, --opcua-port, --coap-port or --csv", file=sys.stderr)
        return 2
    if live and args.csv:
        print("edgegw simulate: --csv writes history offline; run it without --broker/--opcua-port/--coap-port", file=sys.stderr)
        return 2
    duration = args.duration if args.duration is not None else (3600.0 if args.csv else None)
    try:
        fleet, faults = build_fleet(args, duration or 3600.0)
        broker = host_port(args.broker) if args.broker else None
    except ValueError as e:
        print(f"edgegw simulate: {e}", file=sys.stderr)
        return 2
    for f in faults:
        extra = f", ramp {f.ramp_s:g} s" if f.ramp_s else ""
        until = f", for {f.duration_s:g} s" if f.duration_s is not None else ""
        print(f"fault at {f.start_s:g} s: {f.describe()}{extra}{until}")
    if args.csv:
        start = datetime.fromisoformat(args.start.replace("Z", "+00:00")).timestamp()
        t0 = time.perf_counter()
        rows = write_history(args.csv, fleet, duration or 3600.0, start, truth=args.truth)
        print(
            f"wrote {rows} rows ({len(fleet.assets)} pumps x {duration:g} s at {args.rate:g} Hz) to {args.csv} "
            f"in {time.perf_counter() - t0:.1f} s"
        )
        return 0
    return asyncio.run(_live(args, fleet, duration, broker))


async def _live(args: argparse.Namespace, fleet: Fleet, duration: float | None, broker: tuple[str, int] | None) -> int:
    from edgegw.sim.clock import LiveClock, Output

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    outputs: list[Output] = []
    closers = []
    tasks: list[asyncio.Task[None]] = []
    publisher = None
    if broker:
        from edgegw.sim.mqtt_out import MqttPublisher

        publisher = MqttPublisher(broker[0], broker[1], args.topic)
        tasks.append(asyncio.create_task(publisher.run(), name="mqtt-publisher"))
        outputs.append(publisher.update)
        print(f"MQTT: publishing to {broker[0]}:{broker[1]} {args.topic}")
    servers: list[tuple[Any, Callable[[], str]]] = []  # (server, what it says once started)
    if args.opcua_port:
        from edgegw.sim.opcua_server import OpcuaPumpServer

        ua = OpcuaPumpServer(fleet.assets, args.opcua_port, args.bind)
        servers.append((ua, lambda: f"OPC UA: {ua.endpoint}  Objects/Pumps/<id>/<signal>, NodeId ns={ua.ns};s=<id>.<signal>"))
    if args.coap_port:
        from edgegw.sim.coap_server import CoapPumpServer

        coap = CoapPumpServer(fleet.assets, args.coap_port, args.bind)
        servers.append((coap, lambda: f"CoAP: {coap.uri('<id>')}  (observe, SenML JSON or CBOR)"))
    for srv, says in servers:
        await srv.start()
        outputs.append(srv.update)
        closers.append(srv.stop)
        print(says())
    clock = LiveClock(fleet, outputs, duration)
    announced: set[Fault] = set()

    def announce(ts: float, _samples: object) -> None:
        for f in fleet.active_faults(ts - clock.start_ts):
            if f not in announced:
                announced.add(f)
                print(f"{iso(ts)}  fault injected: {f.describe()}", flush=True)

    outputs.append(announce)
    print(
        f"simulating {len(fleet.assets)} pumps at {args.rate:g} Hz, seed {args.seed}"
        f"{f' for {duration:g} s' if duration else ' (Ctrl-C to stop)'}",
        flush=True,
    )
    try:
        await clock.run(stop)
        if publisher is not None:
            await publisher.drain()
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        for close in closers:
            await close()
    if publisher is not None:
        print(
            f"MQTT: {publisher.sent} messages sent, {publisher.dropped} dropped"
            f"{f' (last error: {publisher.last_error})' if publisher.last_error else ''}"
        )
    return 0
