"""Engine-only figures, no network: ingest rate with threshold rules on, and the cost of features.

The engine keeps per-hop-bucket moments, not samples: a hop's features come from B = window_s /
hop_s buckets per signal (`bucket_features`), whatever the sample rate. For comparison, the
same features from raw samples (`row_features`, the reference implementation).

    python benchmarks/bench_engine.py [--readings N]

Prints a table and writes benchmarks/results/engine.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import pct, write

from edgegw.config import load_config
from edgegw.engine.engine import Engine
from edgegw.engine.features import bucket_features, row_features

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "example.yaml"
SIGNALS = ("vibration", "pressure", "temperature", "flow", "current")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--readings", type=int, default=500_000)
    args = ap.parse_args()
    cfg = load_config(EXAMPLE, ["profiles.pump.model=null"])
    alerts: list[object] = []
    eng = Engine(cfg, alerts.append)
    rng = np.random.default_rng(0)
    vals = rng.normal(3.0, 0.3, args.readings).tolist()
    # ingest: 4 pumps x 5 signals round robin at 10 Hz event time, rules on; hops run as due
    t0 = 1767600000.0
    assets = [a.id for a in cfg.assets]
    start = time.perf_counter()
    for i, v in enumerate(vals):
        eng.ingest(assets[i % 4], SIGNALS[(i // 4) % 5], t0 + (i // 20) * 0.1, v)
        if eng.due:
            eng.run_hops()
    dt = time.perf_counter() - start
    rate = args.readings / dt

    # features of full windows (30 s at 10 Hz) from the store the ingest above filled: 1 asset,
    # then 50 assets (the 4 pumps' rows tiled), as a hop computes them
    acc = eng._windows["pump"].acc
    k_end = float(max(a.hop_k for a in eng.assets.values()))
    rows = acc.shape[2]
    times = []
    for _ in range(2000):
        s = time.perf_counter()
        bucket_features(acc[:, :, :5], np.full(5, k_end), cfg.profiles["pump"].hop_s, masked=False)
        times.append(time.perf_counter() - s)
    big = np.ascontiguousarray(np.tile(acc, (1, 1, -(-250 // rows)))[:, :, :250])
    t50 = []
    for _ in range(1000):
        s = time.perf_counter()
        bucket_features(big, np.full(250, k_end), cfg.profiles["pump"].hop_s, masked=False)
        t50.append(time.perf_counter() - s)
    # the same from raw samples: 50 assets x 5 signals x 300 samples
    ts300 = np.tile(np.arange(300) * 0.1, (250, 1))
    x300 = rng.normal(3, 0.3, (250, 300))
    raw = []
    for _ in range(300):
        s = time.perf_counter()
        row_features(ts300, x300)
        raw.append(time.perf_counter() - s)
    res = {
        "ingest_readings_per_s": round(rate),
        "ingest_us_per_reading": round(1e6 / rate, 2),
        "hops_run": eng.hops,
        "bucket_features_1x5_us": {"p50": round(pct(times, 50), 1), "p99": round(pct(times, 99), 1)},
        "bucket_features_50x5_us": {"p50": round(pct(t50, 50), 1), "p99": round(pct(t50, 99), 1)},
        "raw_features_50x5x300_us": {"p50": round(pct(raw, 50), 1), "p99": round(pct(raw, 99), 1)},
    }
    print("| figure | value |\n|---|---|")
    print(f"| engine ingest (rules on, hops as due) | {res['ingest_readings_per_s']:,} readings/s "
          f"({res['ingest_us_per_reading']} µs each) |")
    for key, what in (("bucket_features_1x5_us", "features from buckets, 1 asset x 5 signals x 30 buckets"),
                      ("bucket_features_50x5_us", "features from buckets, 50 assets x 5 signals x 30 buckets"),
                      ("raw_features_50x5x300_us", "features from raw samples (reference), 50 x 5 x 300")):
        print(f"| {what} | p50 {res[key]['p50']} µs, p99 {res[key]['p99']} µs |")
    print(f"wrote {write('engine', res)}")


if __name__ == "__main__":
    main()
