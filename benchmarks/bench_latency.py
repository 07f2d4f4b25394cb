"""Latency: publish -> alert received, through a real mosquitto and the running gateway, while
background load runs at 10 %, 50 % and 90 % of the gateway's highest sustained rate.

    python benchmarks/bench_latency.py [--quick] [--rate R] [--probes 200]

R defaults to the gateway's max sustained rate in benchmarks/results/ingest.json (run
bench_ingest.py first), else 5000 msg/s. The load generator (own process) sends N pumps x 6
signals; one paho client publishes the probe asset's readings (vibration 12.5 / 3.0 in turn,
alarm delays 0, so each probe is a threshold raise or clear) and subscribes to alerts/#:
publish and receipt are stamped on one clock. The probe's readings queue behind the load in
the broker and in the gateway, exactly as a real alarm would. Probes are spaced 20-40 ms.

References, in the same run and at the same load: a bare aiomqtt relay (bare_sub.py --relay)
that republishes each probe reading of its own stream at once (the floor of this design);
gateway and relay take turns in blocks (4 per level; quick: 1), each under its own stream,
the other idle, so neither loads the other and the box's noise falls on both alike. Between
probes, a round trip through the broker alone (the measuring client publishing to a topic it
subscribes).

Writes benchmarks/results/latency.json (with every sample, for the CDF plot).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _rig
from _common import RESULTS, write

FMT = '{{"ts":{ts:.3f},"vibration":{v},"pressure":5.0,"temperature":55.0,"flow":60.0,"current":30.0,"suction_pressure":1.2}}'


def default_rate() -> float:
    try:
        d = json.loads((RESULTS / "ingest.json").read_text())
        r = float(d["max_sustained"]["gateway"])
        return r if r > 0 else 5000.0
    except (OSError, KeyError, ValueError, TypeError):
        return 5000.0


RELAY_PREFIX = "bench/relay-pumps"


def probe_level(w: _rig.Watcher, n: int, target: str) -> dict[str, Any]:
    """n probes to `target` ("gateway": a probe reading -> threshold alert; "relay": a probe
    reading -> the bare aiomqtt relay republishes it), each followed by one round trip through
    the broker alone (the same client publishing to a topic it subscribes). Latencies in ms."""
    got: dict[str, float] = {}
    ev = threading.Event()
    echo: list[float] = []
    relayed: list[float] = []

    def on_alert(t: float, d: dict[str, Any]) -> None:
        if d.get("asset") == _rig.PROBE and d.get("kind") == "threshold":
            got[str(d.get("state"))] = t
            ev.set()

    def on_echo(t: float) -> None:
        echo.append(t)
        ev.set()

    def on_relay(t: float) -> None:
        relayed.append(t)
        ev.set()

    w.on_alert, w.on_echo, w.on_relay = on_alert, on_echo, on_relay
    out: dict[str, Any] = {"lat": [], "broker": [], "missed": 0}
    prefix = "plant/pumps" if target == "gateway" else RELAY_PREFIX
    topic = f"{prefix}/{_rig.PROBE}/telemetry"
    state = "cleared"
    w.client.publish(topic, FMT.format(ts=time.time(), v=3.0), qos=1)  # start from normal
    time.sleep(0.2)
    for _ in range(n):
        want, v = ("raised", 12.5) if state == "cleared" else ("cleared", 3.0)
        got.pop(want, None)
        relayed.clear()
        ev.clear()
        t0 = time.perf_counter()
        w.client.publish(topic, FMT.format(ts=time.time(), v=v), qos=1)

        def done(want: str = want) -> bool:
            return want in got if target == "gateway" else bool(relayed)

        while not done() and time.perf_counter() - t0 < 3.0:
            ev.wait(0.005)
            ev.clear()
        if not done():
            out["missed"] += 1
        elif target == "gateway":
            out["lat"].append((got[want] - t0) * 1000)
            state = want
        else:
            out["lat"].append((relayed[0] - t0) * 1000)
            state = want
        time.sleep(random.uniform(0.01, 0.02))
        echo.clear()
        ev.clear()
        t0 = time.perf_counter()
        w.client.publish(_rig.ECHO, b"x", qos=1)
        while not echo and time.perf_counter() - t0 < 3.0:
            ev.wait(0.005)
            ev.clear()
        if echo:
            out["broker"].append((echo[0] - t0) * 1000)
        time.sleep(random.uniform(0.01, 0.02))
    w.on_alert = w.on_echo = w.on_relay = None
    return out


def level(w: _rig.Watcher, port: int, n_assets: int, rate: float, probes: int, blocks: int, pin: str | None) -> dict[str, Any]:
    """Gateway and relay take turns, block by block, each under its own stream at `rate` (the
    other one idle then), so the box's noise falls on both alike and neither loads the other."""
    acc: dict[str, dict[str, Any]] = {
        t: {"lat": [], "broker": [], "missed": 0, "sent": 0, "pub_rates": []} for t in ("gateway", "relay")
    }
    per = max(1, probes // blocks)
    for _ in range(blocks):
        for target in ("gateway", "relay"):
            seconds = per * 0.06 + 2.0
            lg = None
            if rate > 0:
                lg = _rig.loadgen(
                    port,
                    n_assets,
                    rate,
                    seconds,
                    sentinel=False,
                    pin=pin,
                    prefix="plant/pumps" if target == "gateway" else RELAY_PREFIX,
                )
                time.sleep(0.7)  # load flowing before the first probe
            pr = probe_level(w, per, target)
            a = acc[target]
            a["lat"] += pr["lat"]
            a["broker"] += pr["broker"]
            a["missed"] += pr["missed"]
            if lg is not None:
                pub = _rig.loadgen_result(lg, seconds + 60)
                a["sent"] += pub["sent"]
                a["pub_rates"].append(pub["achieved_rate"])
    g, r = acc["gateway"], acc["relay"]
    return {
        **summary(g["lat"]),
        "missed": g["missed"],
        "n": len(g["lat"]),
        "achieved_pub_rate": round(float(np.mean(g["pub_rates"]))) if g["pub_rates"] else 0,
        "messages_to_gateway": g["sent"],
        "bare_aiomqtt_relay": {**summary(r["lat"]), "missed": r["missed"]},
        "broker_round_trip": summary(g["broker"] + r["broker"]),
        "samples_ms": [round(x, 3) for x in g["lat"]],
        "relay_samples_ms": [round(x, 3) for x in r["lat"]],
        "broker_round_trip_samples_ms": [round(x, 3) for x in g["broker"] + r["broker"]],
    }


def show(label: str, row: dict[str, Any]) -> None:
    r, b = row["bare_aiomqtt_relay"], row["broker_round_trip"]
    print(
        f"{label:16s} gateway p50 {row['p50']} p99 {row['p99']} max {row['max']} ms (missed {row['missed']}) | "
        f"bare aiomqtt relay p50 {r['p50']} p99 {r['p99']} max {r['max']} ms | broker alone p50 {b['p50']} "
        f"p99 {b['p99']} ms",
        flush=True,
    )


def summary(lat: list[float]) -> dict[str, float | None]:
    if not lat:
        return {"p50": None, "p99": None, "max": None}
    a = np.asarray(lat)
    return {
        "p50": round(float(np.percentile(a, 50)), 2),
        "p99": round(float(np.percentile(a, 99)), 2),
        "max": round(float(a.max()), 2),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rate", type=float, help="100 %% load in msg/s (default: from ingest.json)")
    ap.add_argument("--assets", type=int, default=50)
    ap.add_argument("--probes", type=int, help="probes per level (default 200; quick 15)")
    ap.add_argument("--levels", default="0.1,0.5,0.9")
    ap.add_argument("--pin", help="taskset CPU list for gateway, broker and load, e.g. 0")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override for the gateway (edgegw run --set), repeatable",
    )
    ap.add_argument("--name", default="latency")
    args = ap.parse_args(argv)
    rate = args.rate or default_rate()
    probes = args.probes or (15 if args.quick else 200)
    levels = [float(x) for x in args.levels.split(",")]
    wd = _rig.workdir("latency")
    broker = _rig.broker(wd)
    if args.pin:
        subprocess.run(["taskset", "-pc", args.pin, str(broker.proc.pid)], capture_output=True)
    relay = subprocess.Popen(
        [
            _rig.PY,
            str(_rig.HERE / "bare_sub.py"),
            "--client",
            "aiomqtt",
            "--port",
            str(broker.port),
            "--prefix",
            RELAY_PREFIX,
            "--relay",
            _rig.RELAY,
            "--timeout",
            "3600",
        ],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert relay.stdout is not None
    relay.stdout.readline()
    if args.pin:
        subprocess.run(["taskset", "-pc", args.pin, str(relay.pid)], capture_output=True)
    w = _rig.Watcher(broker.port)
    gw = _rig.Gateway(
        _rig.gateway_config(wd, args.assets),
        broker.port,
        w,
        wd,
        *[x for kv in args.set for x in ("--set", kv)],
        argv_prefix=["taskset", "-c", args.pin] if args.pin else None,
    )
    blocks = 1 if args.quick else 4
    res: dict[str, Any] = {
        "assets": args.assets,
        "full_rate": rate,
        "probes_per_level": probes,
        "blocks": blocks,
        "pinned": args.pin,
        "levels": [],
    }
    try:
        time.sleep(1.0)
        res["idle"] = level(w, broker.port, args.assets, 0, max(10, probes // 4), 1, args.pin)
        show("no load", res["idle"])
        for f in levels:
            r = rate * f
            before = w.next_metrics(5.0) or {}
            n_alerts = len(w.alerts)
            row = level(w, broker.port, args.assets, r, probes, blocks, args.pin)
            time.sleep(0.5)
            after = w.next_metrics(5.0) or {}
            kinds: dict[str, int] = {}
            for _, d in w.alerts[n_alerts:]:
                k = f"{d.get('kind')}/{d.get('state')}"
                kinds[k] = kinds.get(k, 0) + 1
            row = {
                "level": f,
                "offered": round(r),
                **row,
                "messages_in": after.get("messages_in", 0) - before.get("messages_in", 0),
                "loop_lag_max_ms": (after.get("loop_lag_ms") or {}).get("max"),
                "hop_ms_p99": after.get("hop_ms_p99"),
                "alerts_seen": kinds,
            }
            res["levels"].append(row)
            show(f"{int(f * 100)} % ({round(r):,}/s)", row)
    finally:
        gw.close()
        relay.kill()
        relay.wait()
        w.close()
        broker.stop()
    mid = next((lv for lv in res["levels"] if abs(lv["level"] - 0.5) < 1e-9), None)
    res["p99_at_50pct_ms"] = mid["p99"] if mid else None
    print(f"wrote {write(args.name, res)}")
    return res


if __name__ == "__main__":
    main()
