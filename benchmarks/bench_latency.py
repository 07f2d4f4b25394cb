"""Latency: publish -> alert received, through a real mosquitto and the running gateway, while
background load runs at 10 %, 50 % and 90 % of the gateway's highest sustained rate.

    python benchmarks/bench_latency.py [--quick] [--rate R] [--probes 200]

R defaults to the gateway's max sustained rate in benchmarks/results/ingest.json (run
bench_ingest.py first), else 5000 msg/s. The load generator (own process) sends N pumps x 5
signals; one paho client publishes the probe asset's readings (vibration 12.5 / 3.0 in turn,
alarm delays 0, so each probe is a threshold raise or clear) and subscribes to alerts/#:
publish and receipt are stamped on one clock. The probe's readings queue behind the load in
the broker and in the gateway, exactly as a real alarm would. Probes are spaced 20-40 ms.

Writes benchmarks/results/latency.json (with every sample, for the CDF plot).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _rig  # noqa: E402
from _common import RESULTS, write  # noqa: E402

FMT = '{{"ts":{ts:.3f},"vibration":{v},"pressure":5.0,"temperature":55.0,"flow":60.0,"current":30.0}}'


def default_rate() -> float:
    try:
        d = json.loads((RESULTS / "ingest.json").read_text())
        r = float(d["max_sustained"]["gateway"])
        return r if r > 0 else 5000.0
    except (OSError, KeyError, ValueError, TypeError):
        return 5000.0


def probe_level(w: _rig.Watcher, n: int) -> tuple[list[float], int]:
    """n probes; returns latencies in ms and the number that timed out."""
    got: dict[str, float] = {}
    ev = threading.Event()

    def on_alert(t: float, d: dict[str, Any]) -> None:
        if d.get("asset") == _rig.PROBE and d.get("kind") == "threshold":
            got[str(d.get("state"))] = t
            ev.set()

    w.on_alert = on_alert
    lat: list[float] = []
    missed = 0
    topic = f"plant/pumps/{_rig.PROBE}/telemetry"
    state = "cleared"
    w.client.publish(topic, FMT.format(ts=time.time(), v=3.0), qos=1)  # start from normal
    time.sleep(0.3)
    for _ in range(n):
        want, v = ("raised", 12.5) if state == "cleared" else ("cleared", 3.0)
        got.pop(want, None)
        ev.clear()
        t0 = time.perf_counter()
        w.client.publish(topic, FMT.format(ts=time.time(), v=v), qos=1)
        while want not in got and time.perf_counter() - t0 < 3.0:
            ev.wait(0.005)
            ev.clear()
        if want in got:
            lat.append((got[want] - t0) * 1000)
            state = want
        else:
            missed += 1
            state = "raised" if want == "raised" else state
        time.sleep(random.uniform(0.02, 0.04))
    w.on_alert = None
    return lat, missed


def summary(lat: list[float]) -> dict[str, float | None]:
    if not lat:
        return {"p50": None, "p99": None, "max": None}
    a = np.asarray(lat)
    return {"p50": round(float(np.percentile(a, 50)), 2), "p99": round(float(np.percentile(a, 99)), 2),
            "max": round(float(a.max()), 2)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rate", type=float, help="100 %% load in msg/s (default: from ingest.json)")
    ap.add_argument("--assets", type=int, default=50)
    ap.add_argument("--probes", type=int, help="probes per level (default 200; quick 40)")
    ap.add_argument("--levels", default="0.1,0.5,0.9")
    ap.add_argument("--pin", help="taskset CPU list for gateway, broker and load, e.g. 0")
    ap.add_argument("--name", default="latency")
    args = ap.parse_args(argv)
    rate = args.rate or default_rate()
    probes = args.probes or (40 if args.quick else 200)
    levels = [float(x) for x in args.levels.split(",")]
    wd = _rig.workdir("latency")
    broker = _rig.Broker(wd)
    if args.pin:
        import subprocess

        subprocess.run(["taskset", "-pc", args.pin, str(broker.proc.pid)], capture_output=True)
    w = _rig.Watcher(broker.port)
    gw = _rig.Gateway(_rig.gateway_config(wd, args.assets), broker.port, w, wd,
                      argv_prefix=["taskset", "-c", args.pin] if args.pin else None)
    res: dict[str, Any] = {"assets": args.assets, "full_rate": rate, "probes_per_level": probes,
                           "pinned": args.pin, "levels": []}
    try:
        time.sleep(1.0)
        # idle reference: no load at all
        lat, missed = probe_level(w, max(10, probes // 4))
        res["idle"] = {**summary(lat), "missed": missed, "samples_ms": [round(x, 3) for x in lat]}
        print(f"idle          p50 {res['idle']['p50']} ms  p99 {res['idle']['p99']} ms  max {res['idle']['max']} ms",
              flush=True)
        for f in levels:
            r = rate * f
            seconds = probes * 0.045 + 3.0
            before = w.next_metrics(5.0) or {}
            lg = _rig.loadgen(broker.port, args.assets, r, seconds, sentinel=False, pin=args.pin)
            time.sleep(1.0)  # load flowing before the first probe
            lat, missed = probe_level(w, probes)
            pub = _rig.loadgen_result(lg, seconds + 60)
            time.sleep(0.5)
            after = w.next_metrics(5.0) or {}
            got = after.get("messages_in", 0) - before.get("messages_in", 0)
            row = {"level": f, "offered": round(r), "achieved_pub_rate": round(pub["achieved_rate"]), **summary(lat),
                   "missed": missed, "n": len(lat), "messages_sent": pub["sent"] + probes + 1,
                   "messages_in": got, "loop_lag_max_ms": (after.get("loop_lag_ms") or {}).get("max"),
                   "hop_ms_p99": after.get("hop_ms_p99"), "samples_ms": [round(x, 3) for x in lat]}
            res["levels"].append(row)
            print(f"{int(f * 100):3d} % ({round(r):>6,}/s)  p50 {row['p50']} ms  p99 {row['p99']} ms  max {row['max']} ms"
                  f"  missed {missed}", flush=True)
    finally:
        gw.close()
        w.close()
        broker.close()
    mid = next((lv for lv in res["levels"] if abs(lv["level"] - 0.5) < 1e-9), None)
    res["p99_at_50pct_ms"] = mid["p99"] if mid else None
    print(f"wrote {write(args.name, res)}")
    return res


if __name__ == "__main__":
    main()
