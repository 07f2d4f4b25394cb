"""What pump performance costs a hop: the same 50 pumps, the same readings, through two engines
in one run, one with the example's pump description and one without (and both with and without
the shipped model, the daemon's usual hop). Derived signals, totals, rollup accumulators and the
pump alarms run once per profile per hop (engine/pump.py); the budget is +10 % CPU per hop.

    python benchmarks/bench_pump.py [--seconds S] [--assets N]

Prints a table and writes benchmarks/results/pump.json.
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
from edgegw.gateway import load_models

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "example.yaml"
BASE = {"vibration": 2.2, "pressure": 4.74, "temperature": 55.0, "flow": 60.0, "current": 31.0, "suction_pressure": 1.2}


def engines(n: int, model: bool) -> tuple[Engine, Engine]:
    assets = "assets=[" + ",".join(f"{{id: pump-{i}, profile: pump}}" for i in range(1, n + 1)) + "]"
    extra = [] if model else ["profiles.pump.model=null"]
    with_pump = load_config(EXAMPLE, [assets, *extra])
    assert with_pump.profiles["pump"].pump is not None, "the example config has no pump description"
    without = load_config(EXAMPLE, [assets, "profiles.pump.pump=null", *extra])
    models = load_models(with_pump, str(EXAMPLE)) if model else {}
    sink: list[object] = []
    return Engine(without, sink.append, dict(models)), Engine(with_pump, sink.append, dict(models))


def run(n: int, seconds: float, model: bool) -> dict[str, float]:
    plain, pump = engines(n, model)
    rng = np.random.default_rng(0)
    t0 = 1767600000.0
    names = list(BASE)
    base = np.array([BASE[s] for s in names])
    per_hop = {"plain": [], "pump": []}
    steps = int(seconds * 10)  # 10 Hz per signal: 10 readings a hop per signal
    for step in range(steps):
        ts = t0 + step * 0.1
        vals = base * (1.0 + 0.01 * rng.standard_normal((n, len(names))))
        for eng, key in ((plain, "plain"), (pump, "pump")):
            for i in range(n):
                row = vals[i].tolist()
                aid = f"pump-{i + 1}"
                for j, s in enumerate(names):
                    eng.ingest(aid, s, ts, row[j])
            if eng.due:
                t = time.perf_counter()
                eng.run_hops()
                per_hop[key].append(time.perf_counter() - t)
                eng.prepare()
    warm = 35  # the window fills (30 s) before the model scores
    out = {}
    for key, xs in per_hop.items():
        xs = xs[warm:]
        out[f"{key}_p50_us"] = pct(xs, 50)
        out[f"{key}_p99_us"] = pct(xs, 99)
        out[f"{key}_mean_us"] = float(np.mean(xs) * 1e6)
    out["extra_mean_pct"] = 100.0 * (out["pump_mean_us"] / out["plain_mean_us"] - 1.0)
    out["extra_p50_pct"] = 100.0 * (out["pump_p50_us"] / out["plain_p50_us"] - 1.0)
    out["hops"] = len(per_hop["pump"]) - warm
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=150.0, help="event-time seconds per case (hops of 1 s)")
    ap.add_argument("--assets", type=int, default=50)
    ap.add_argument("--name", default="pump")
    args = ap.parse_args()
    rows = []
    print(f"{args.assets} pumps, 6 signals at 10 Hz, hop 1 s; per hop (all assets), us")
    print(
        f"{'model':>6} {'plain p50':>10} {'pump p50':>10} {'plain mean':>11} {'pump mean':>10} {'extra mean':>11} {'budget':>7}"
    )
    for model in (True, False):
        r = run(args.assets, max(args.seconds, 40.0), model)
        rows.append({"model": model, **r})
        print(
            f"{'yes' if model else 'no':>6} {r['plain_p50_us']:10.0f} {r['pump_p50_us']:10.0f} {r['plain_mean_us']:11.0f} "
            f"{r['pump_mean_us']:10.0f} {r['extra_mean_pct']:10.1f}% {'+10%':>7}"
        )
    fc = forecast_cost(args.assets)
    print(
        f"forecast: {fc['rows']} series ({args.assets} pumps x each signal with a limit) of {fc['points']} points: "
        f"p50 {fc['p50_ms']:.2f} ms, p99 {fc['p99_ms']:.2f} ms per evaluation (at most once a minute; budget 2 ms)"
    )
    write(args.name, {"assets": args.assets, "rows": rows, "budget_extra_pct": 10.0, "forecast": fc})


def forecast_cost(n: int) -> dict[str, float]:
    """One forecast evaluation of a profile whose series are all full (the steady state)."""
    from edgegw.engine.forecast import forecasts

    assets = "assets=[" + ",".join(f"{{id: pump-{i}, profile: pump}}" for i in range(1, n + 1)) + "]"
    cfg = load_config(EXAMPLE, [assets, "profiles.pump.model=null", "profiles.pump.forecast={}"])
    pf = forecasts(cfg, {"pump": [a.id for a in cfg.assets]})["pump"]
    rng = np.random.default_rng(0)
    fc = pf.fc
    for k in range(len(fc.rows)):
        for p in range(fc.n):
            fc.add(k, 60.0 * p, float(rng.standard_normal()))
    times = []
    for i in range(200):
        t = time.perf_counter()
        fc.evaluate(1e6 + i)
        times.append(time.perf_counter() - t)
    return {"rows": len(fc.rows), "points": fc.n, "p50_ms": pct(times, 50) / 1e3, "p99_ms": pct(times, 99) / 1e3}


if __name__ == "__main__":
    main()
