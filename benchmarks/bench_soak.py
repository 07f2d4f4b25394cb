"""Soak: the daemon at 50 % of its highest sustained rate for a while, with the upstream
bridge on (its outbox on disk, a second local mosquitto as the "cloud"): does memory or the
outbox grow, is anything lost?

    python benchmarks/bench_soak.py [--seconds 600] [--quick] [--rate R]

R is the 100 % rate (default: the gateway's max sustained rate in results/ingest.json, else
5000 msg/s). Every 2 s: the daemon's RSS (/proc), its self-metrics (outbox depth, local queue,
loop lag) and the outbox file size. Rollups every 10 s so the bridge carries traffic. Slopes
are least-squares fits over the second half of the run (after windows and caches are warm),
in MB per hour and records per hour. Loss: messages the load generator sent vs messages_in.

Writes benchmarks/results/soak.json (with the samples, for a plot).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _rig
from _common import write
from bench_latency import default_rate


def slope_per_hour(t: list[float], y: list[float]) -> float | None:
    if len(t) < 3:
        return None
    return float(np.polyfit(np.asarray(t), np.asarray(y, dtype=float), 1)[0] * 3600)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seconds", type=float, help="length (default 600; quick 60)")
    ap.add_argument("--rate", type=float, help="100 %% load in msg/s (default: from ingest.json)")
    ap.add_argument("--level", type=float, default=0.5)
    ap.add_argument("--assets", type=int, default=50)
    ap.add_argument("--name", default="soak")
    args = ap.parse_args(argv)
    seconds = args.seconds or (60.0 if args.quick else 600.0)
    rate = (args.rate or default_rate()) * args.level
    wd = _rig.workdir("soak")
    broker = _rig.broker(wd)
    cloud = _rig.broker(wd)
    outbox = wd / "outbox.db"

    def mutate(d: dict[str, Any]) -> None:
        # nothing subscribes on the "cloud" broker: a 0x10 PUBACK counts as delivered, not held
        d["upstream"] = {"host": "127.0.0.1", "port": cloud.port, "outbox": {"path": str(outbox)}, "hold_unheard": False}
        d["rollups"]["interval_s"] = 10

    w = _rig.Watcher(broker.port)
    gw = _rig.Gateway(_rig.gateway_config(wd, args.assets, instant_alarms=False, mutate=mutate), broker.port, w, wd)
    samples: list[dict[str, Any]] = []
    res: dict[str, Any] = {"seconds": seconds, "offered_rate": round(rate), "assets": args.assets}
    try:
        time.sleep(1.0)
        before = w.next_metrics(5.0) or {}
        t0 = time.perf_counter()
        lg = _rig.loadgen(broker.port, args.assets, rate, seconds, sentinel=False)
        while lg.poll() is None:
            m = w.metrics[-1] if w.metrics else {}
            size = sum(p.stat().st_size for p in wd.glob("outbox.db*") if p.exists())
            samples.append(
                {
                    "t": round(time.perf_counter() - t0, 2),
                    "rss_mb": round(gw.rss_mb(), 2),
                    "outbox_depth": m.get("outbox_depth"),
                    "outbox_bytes": size,
                    "local_queue": m.get("local_queue"),
                    "loop_lag_max_ms": (m.get("loop_lag_ms") or {}).get("max"),
                    "messages_in": m.get("messages_in"),
                }
            )
            time.sleep(2.0)
        pub = _rig.loadgen_result(lg, 60)
        time.sleep(1.5)
        after = w.next_metrics(5.0) or {}
    finally:
        gw.close()
        w.close()
        cloud.stop()
        broker.stop()
    got = after.get("messages_in", 0) - before.get("messages_in", 0)
    half = [s for s in samples if s["t"] >= seconds / 2]
    rss_slope = slope_per_hour([s["t"] for s in half], [s["rss_mb"] for s in half])
    ob = [s for s in half if s["outbox_depth"] is not None]
    res.update(
        {
            "achieved_pub_rate": round(pub["achieved_rate"]),
            "messages_sent": pub["sent"],
            "messages_in": got,
            "lost": pub["sent"] - got,
            "readings_in": after.get("readings_in", 0) - before.get("readings_in", 0),
            "rejected": after.get("rejected_total", 0) - before.get("rejected_total", 0),
            "rss_start_mb": samples[0]["rss_mb"] if samples else None,
            "rss_end_mb": samples[-1]["rss_mb"] if samples else None,
            "rss_slope_mb_per_h": None if rss_slope is None else round(rss_slope, 2),
            "outbox_depth_max": max((s["outbox_depth"] or 0) for s in samples) if samples else None,
            "outbox_depth_slope_per_h": (
                round(slope_per_hour([s["t"] for s in ob], [s["outbox_depth"] for s in ob]) or 0, 1) if len(ob) >= 3 else None
            ),
            "outbox_bytes_end": samples[-1]["outbox_bytes"] if samples else None,
            "loop_lag_max_ms": max((s["loop_lag_max_ms"] or 0) for s in samples) if samples else None,
            "sinks": after.get("sinks"),
            "samples": samples,
        }
    )
    print(
        f"soak {seconds:.0f} s at {rate:,.0f} msg/s: lost {res['lost']} of {res['messages_sent']:,}, RSS "
        f"{res['rss_start_mb']} -> {res['rss_end_mb']} MB (slope {res['rss_slope_mb_per_h']} MB/h over the 2nd half), "
        f"outbox depth max {res['outbox_depth_max']} (slope {res['outbox_depth_slope_per_h']}/h), "
        f"loop lag max {res['loop_lag_max_ms']} ms"
    )
    print(f"wrote {write(args.name, res)}")
    return res


if __name__ == "__main__":
    main()
