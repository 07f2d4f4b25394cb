"""Engine-only figures, no network: ingest rate with threshold rules on, and the cost of one hop.

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
from edgegw.engine.features import window_features

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

    # one hop, one asset, 5 signals x 1000 samples
    ts = np.arange(1000) * 0.03
    windows = [[(ts, rng.normal(3, 0.3, 1000)) for _ in SIGNALS]]
    times = []
    for _ in range(2000):
        s = time.perf_counter()
        window_features(windows, 1000)
        times.append(time.perf_counter() - s)
    # one batched hop for 50 assets of 5 signals x 300 samples (30 s at 10 Hz)
    ts300 = np.arange(300) * 0.1
    w50 = [[(ts300, rng.normal(3, 0.3, 300)) for _ in SIGNALS] for _ in range(50)]
    t50 = []
    for _ in range(300):
        s = time.perf_counter()
        window_features(w50, 300)
        t50.append(time.perf_counter() - s)
    res = {
        "ingest_readings_per_s": round(rate),
        "ingest_us_per_reading": round(1e6 / rate, 2),
        "hops_run": eng.hops,
        "features_1x5x1000_us": {"p50": round(pct(times, 50), 1), "p99": round(pct(times, 99), 1)},
        "features_50x5x300_us": {"p50": round(pct(t50, 50), 1), "p99": round(pct(t50, 99), 1)},
    }
    print("| figure | value |\n|---|---|")
    print(f"| engine ingest (rules on, hops as due) | {res['ingest_readings_per_s']:,} readings/s "
          f"({res['ingest_us_per_reading']} µs each) |")
    print(f"| features, 1 asset x 5 signals x 1000 samples | p50 {res['features_1x5x1000_us']['p50']} µs, "
          f"p99 {res['features_1x5x1000_us']['p99']} µs |")
    print(f"| features, 50 assets x 5 signals x 300 samples | p50 {res['features_50x5x300_us']['p50']} µs, "
          f"p99 {res['features_50x5x300_us']['p99']} µs |")
    print(f"wrote {write('engine', res)}")


if __name__ == "__main__":
    main()
