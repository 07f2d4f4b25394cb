"""Engine-only figures, no network: ingest rate with threshold rules on, and the cost of features.

The engine keeps per-hop-bucket moments and segment totals, not samples: a hop's features come
from three parts per signal (`window_features`: the previous segment's tail, the segment's
head, the open bucket), whatever the sample rate and window length; a signal out of step, and
every signal of a small hop (window.PARTS_MIN), takes the exact sum of its B = window_s / hop_s
buckets (`bucket_features`). For comparison, the same
features from raw samples (`row_features`, the reference implementation).

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
from edgegw.engine.features import bucket_features, row_features, window_features

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "example.yaml"
SIGNALS = ("vibration", "pressure", "temperature", "flow", "current", "suction_pressure")
K = len(SIGNALS)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--readings", type=int, default=500_000)
    args = ap.parse_args()
    pumps = [f"pump-{i}" for i in range(1, 51)]
    assets = "assets=[" + ",".join(f"{{id: {p}, profile: pump}}" for p in pumps) + "]"
    cfg = load_config(EXAMPLE, ["profiles.pump.model=null", assets])
    alerts: list[object] = []
    eng = Engine(cfg, alerts.append)
    rng = np.random.default_rng(0)
    vals = rng.normal(3.0, 0.3, args.readings).tolist()
    # ingest: 50 pumps x K signals round robin at 10 Hz event time, rules on; hops run as due
    t0 = 1767600000.0
    n = len(pumps) * len(SIGNALS)
    start = time.perf_counter()
    for i, v in enumerate(vals):
        eng.ingest(pumps[i % 50], SIGNALS[(i // 50) % K], t0 + (i // n) * 0.1, v)
        if eng.due:
            eng.run_hops()
            eng.prepare()
    dt = time.perf_counter() - start
    rate = args.readings / dt

    # features of full windows (30 s at 10 Hz) as the next hop computes them: 1 asset, 50 assets
    win = eng._windows["pump"]
    k_end = float(eng._ps["pump"].hop_k.max())
    hop_s = cfg.profiles["pump"].hop_s

    def parts(rows: np.ndarray, reps: int) -> list[float]:
        ks = np.full(len(rows), k_end)
        out = []
        for _ in range(reps):
            s = time.perf_counter()
            window_features(win, rows, ks)
            out.append(time.perf_counter() - s)
        return out

    times = parts(np.arange(K), 2000)
    t50 = parts(np.arange(50 * K), 1000)
    exact = []
    for _ in range(1000):
        s = time.perf_counter()
        bucket_features(win.acc[:, :, : 50 * K], np.full(50 * K, k_end), hop_s)
        exact.append(time.perf_counter() - s)
    # the same from raw samples: 50 assets x K signals x 300 samples
    ts300 = np.tile(np.arange(300) * 0.1, (50 * K, 1))
    x300 = rng.normal(3, 0.3, (50 * K, 300))
    raw = []
    for _ in range(300):
        s = time.perf_counter()
        row_features(ts300, x300)
        raw.append(time.perf_counter() - s)
    res = {
        "ingest_readings_per_s": round(rate),
        "ingest_us_per_reading": round(1e6 / rate, 2),
        "hops_run": eng.hops,
        f"window_features_1x{K}_us": {"p50": round(pct(times, 50), 1), "p99": round(pct(times, 99), 1)},
        f"window_features_50x{K}_us": {"p50": round(pct(t50, 50), 1), "p99": round(pct(t50, 99), 1)},
        f"exact_bucket_sum_50x{K}x30_us": {"p50": round(pct(exact, 50), 1), "p99": round(pct(exact, 99), 1)},
        f"raw_features_50x{K}x300_us": {"p50": round(pct(raw, 50), 1), "p99": round(pct(raw, 99), 1)},
    }
    print("| figure | value |\n|---|---|")
    print(
        f"| engine ingest (rules on, hops as due) | {res['ingest_readings_per_s']:,} readings/s "
        f"({res['ingest_us_per_reading']} µs each) |"
    )
    for key, what in (
        (f"window_features_1x{K}_us", f"features as a hop computes them, 1 asset x {K} signals (bucket sum)"),
        (f"window_features_50x{K}_us", f"features from window parts, 50 assets x {K} signals"),
        (f"exact_bucket_sum_50x{K}x30_us", f"exact sum of the 30 buckets (signals out of step), 50 x {K}"),
        (f"raw_features_50x{K}x300_us", f"features from raw samples (reference), 50 x {K} x 300"),
    ):
        print(f"| {what} | p50 {res[key]['p50']} µs, p99 {res[key]['p99']} µs |")
    print(f"wrote {write('engine', res)}")


if __name__ == "__main__":
    main()
