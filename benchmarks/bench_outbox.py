"""Outbox and bridge throughput: messages/s written to the SQLite outbox, messages/s published and
acknowledged (QoS 1 PUBACK) by a real mosquitto, and the time to replay a 100k backlog.

    .venv/bin/python benchmarks/bench_outbox.py [--replay 100000] [--live 30000]

Prints a table and writes benchmarks/results/outbox.json.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write
from tests.peers import Broker, free_port

from edgegw.config import load_config
from edgegw.gateway import Sequencer
from edgegw.sinks.bridge import Bridge
from edgegw.sinks.outbox import Kind, Outbox

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "example.yaml"


def rollup_payload(seq: int) -> bytes:
    """About the size of a real five-signal rollup."""
    sig = {
        "count": 600,
        "mean": 3.1,
        "min": 2.2,
        "max": 4.9,
        "std": 0.4,
        "first_ts": "2026-01-01T00:00:00.000Z",
        "last_ts": "2026-01-01T00:00:59.900Z",
        "last": 3.3,
    }
    return orjson.dumps(
        {
            "id": f"{seq:032x}",
            "seq": seq,
            "gateway": "gw-bench",
            "site": "plant-a",
            "asset": "pump-1",
            "start": "2026-01-01T00:00:00.000Z",
            "end": "2026-01-01T00:01:00.000Z",
            "signals": {s: sig for s in ("vibration", "pressure", "temperature", "flow", "current")},
            "anomaly_max": 0.4,
            "anomaly_mean": 0.2,
            "alarms_raised": 0,
        }
    )


def bench_writes(d: Path, n: int) -> dict[str, Any]:
    """put() as the bridge does: alerts commit one by one, rollups in batches; fsync every 200 ms."""
    payloads = [rollup_payload(i) for i in range(1000)]
    out: dict[str, Any] = {}
    for label, batch in (("per_message_commit", 1), ("batched_commit_100", 100), ("batched_commit_1000", 1000)):
        ob = Outbox(d / f"w-{batch}.db", 2**31)
        t0 = last_sync = time.perf_counter()
        for i in range(n):
            ob.put(Kind.ROLLUP, "edge/gw-bench/rollups/plant-a/pump-1", payloads[i % 1000], seq=i + 1)
            if i % batch == batch - 1:
                ob.commit()
                now = time.perf_counter()
                if now - last_sync >= 0.2:
                    ob.sync()
                    last_sync = now
        ob.commit()
        ob.sync()
        dt = time.perf_counter() - t0
        ob.close()
        out[label] = {"messages": n, "seconds": round(dt, 3), "per_s": round(n / dt)}
    return out


def bridge_cfg(port: int, db: Path, *extra: str) -> Any:
    return load_config(
        EXAMPLE,
        [
            "profiles.pump.model=null",
            "gateway.id=gw-bench",
            "upstream.host=127.0.0.1",
            f"upstream.port={port}",
            f"upstream.outbox.path={db}",
            "upstream.hold_unheard=false",  # nothing subscribes upstream here: a 0x10 PUBACK is delivered
            *extra,
        ],
    )


async def bench_replay(d: Path, port: int, n: int, inflight: int, rate: float) -> dict[str, Any]:
    """n messages queued while the uplink was down; time until all are acknowledged and delivered."""
    db = d / f"replay-{inflight}-{n}.db"
    cfg = bridge_cfg(port, db, f"upstream.outbox.inflight={inflight}", f"upstream.outbox.replay_rate={rate}")
    seq = Sequencer()
    bridge = Bridge(cfg, seq)
    payload = rollup_payload(1)
    for _ in range(n):
        bridge.outbox.put(Kind.ROLLUP, "edge/gw-bench/rollups/plant-a/pump-1", payload, seq=seq.next())
    bridge.outbox.commit()
    sub = subprocess.Popen(
        ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-t", "edge/+/rollups/#", "-C", str(n)],
        stdout=subprocess.DEVNULL,
    )
    await asyncio.sleep(0.5)
    t0 = time.perf_counter()
    task = asyncio.create_task(bridge.run())
    while bridge.outbox.count > 0 or bridge.published < n:
        await asyncio.sleep(0.01)
    acked = time.perf_counter() - t0
    while sub.poll() is None and time.perf_counter() - t0 < acked + 60:
        await asyncio.sleep(0.01)
    delivered = time.perf_counter() - t0
    await bridge.close(2.0)
    await asyncio.wait_for(task, 10)
    sub.kill()
    return {
        "messages": n,
        "inflight": inflight,
        "acked_s": round(acked, 2),
        "acked_per_s": round(n / acked),
        "delivered_to_consumer_s": round(delivered, 2),
    }


async def bench_live(d: Path, port: int, n: int) -> dict[str, Any]:
    """Connected bridge, messages produced as fast as the loop allows: written, published, acknowledged."""
    cfg = bridge_cfg(port, d / "live.db")
    seq = Sequencer()
    bridge = Bridge(cfg, seq)
    task = asyncio.create_task(bridge.run())
    while not bridge.connected:
        await asyncio.sleep(0.01)
    payload = rollup_payload(1)
    t0 = time.perf_counter()
    for i in range(n):
        bridge.outbox.put(Kind.ROLLUP, "edge/gw-bench/rollups/plant-a/pump-1", payload, seq=seq.next())
        if i % 100 == 99:
            bridge._commit()
            await asyncio.sleep(0)  # let the publisher run, as the gateway's loop would
    bridge._commit()
    written = time.perf_counter() - t0
    while bridge.outbox.count > 0:
        await asyncio.sleep(0.01)
    acked = time.perf_counter() - t0
    await bridge.close(2.0)
    await asyncio.wait_for(task, 10)
    return {"messages": n, "written_s": round(written, 2), "acked_s": round(acked, 2), "acked_per_s": round(n / acked)}


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-outbox-") as tmp:
        d = Path(tmp)
        res: dict[str, Any] = {"writes": bench_writes(d, args.writes)}
        broker = Broker(free_port(), d).start()
        port = broker.port
        try:
            res["window"] = [await bench_replay(d, port, args.window_n, w, 1e6) for w in (1, 8, 16, 32, 64, 128)]
            res["replay_100k"] = await bench_replay(d, port, args.replay, 32, 1e6)
            res["live"] = await bench_live(d, port, args.live)
        finally:
            broker.stop()
        res["replay_at_default_rate_s"] = round(args.replay / 500, 1)
        return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--writes", type=int, default=100_000)
    ap.add_argument("--window-n", type=int, default=10_000)
    ap.add_argument("--replay", type=int, default=100_000)
    ap.add_argument("--live", type=int, default=30_000)
    args = ap.parse_args()
    from edgegw.log import setup

    setup("warning")
    res = asyncio.run(main_async(args))
    print("outbox writes (rollup-sized payloads, ~1 KB):")
    for k, v in res["writes"].items():
        print(f"  {k:22s} {v['per_s']:>9,} msg/s  ({v['messages']:,} in {v['seconds']} s)")
    print("publish + PUBACK by window size (backlog replay, rate unlimited):")
    for w in res["window"]:
        print(f"  inflight {w['inflight']:>4}  {w['acked_per_s']:>9,} msg/s acknowledged")
    r = res["replay_100k"]
    print(
        f"replay {r['messages']:,} queued: acknowledged in {r['acked_s']} s ({r['acked_per_s']:,} msg/s), "
        f"all at the consumer in {r['delivered_to_consumer_s']} s"
    )
    lv = res["live"]
    print(
        f"live: {lv['messages']:,} written in {lv['written_s']} s, all acknowledged in {lv['acked_s']} s "
        f"({lv['acked_per_s']:,} msg/s end to end)"
    )
    print(f"at the default replay_rate of 500/s the same backlog takes {res['replay_at_default_rate_s']} s")
    print("results:", write("outbox", res))


if __name__ == "__main__":
    main()
