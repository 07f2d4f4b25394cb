"""The learning budget: `edgegw retrain` of 4 pumps from 7 days of history at the historian's
default sampling (a feature row every 10 hops of 1 s: 60,480 rows per pump), its wall time and
the training process's peak RSS, next to the bare import of its libraries in the same run.
Budget (issue 21): <= 60 s, peak RSS <= 400 MB. With --latency, also the daemon's publish ->
alert latency at 10 % load (bench_latency.py --quick) with no training beside it, then with
`edgegw retrain` running over and over beside it (its nice 19, idle scheduling, one thread).

    python benchmarks/bench_retrain.py [--days 7] [--latency]

The history is the engine's own feature rows of two simulated hours per pump (edgegw simulate,
replayed through the engine), repeated with a little noise to fill the days, written by the
historian (history/store.py) into a state directory as the daemon would.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, write

EDGEGW = str(Path(sys.executable).with_name("edgegw"))
EVERY = 10  # history.features_every_hops default


def child_run(argv: list[str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MiB of this child alone, stdout) of one process."""
    import os

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2"}  # as the learner
        p = subprocess.Popen(argv, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(p.pid, 0)
        took = time.monotonic() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if p.returncode:
            sys.exit(f"{argv[:3]}: exit {p.returncode}: {err.read().decode()[-800:]}")
        return took, usage.ru_maxrss / 1024, out.read().decode()


def history(state: Path, cfg_path: Path, days: float) -> int:
    from edgegw.config import load_config
    from edgegw.history.store import Historian
    from edgegw.ml.datasets import read_history
    from edgegw.ml.replay import features_of
    from edgegw.records import HopResult

    cfg = load_config(cfg_path)
    prof = cfg.profiles["pump"]
    sim = state / "sim.csv"
    subprocess.run([EDGEGW, "simulate", "--csv", str(sim), "--pumps", "4", "--duration", "7200", "--seed", "5"], check=True,
                   capture_output=True)  # fmt: skip
    rec, ids = features_of(read_history([str(sim)], signals=list(prof.signals)), "pump", prof)
    x_all, assets, warm = rec.matrix(), np.array(rec.assets), np.array(rec.warm)
    names = [f"{s}.{f}" for s in prof.signals for f in __import__("edgegw.engine.features", fromlist=["FEATURES"]).FEATURES]
    blocks = {a: x_all[(assets == a) & warm][::EVERY] for a in ids}
    n_rows = int(days * 86400 / EVERY)
    end = time.time() - 600
    h = Historian(cfg, state / "history.db")
    assert h.writer.open()
    rng = np.random.default_rng(0)
    written = 0
    for start in range(0, n_rows, 2000):
        k = np.arange(start, min(start + 2000, n_rows))
        t = end - (n_rows - k) * EVERY * prof.hop_s
        for i in range(len(k)):
            feats = np.stack([blocks[a][k[i] % len(blocks[a])] for a in ids])
            feats = feats * (1 + 0.002 * rng.standard_normal(feats.shape))
            h.hop(HopResult("pump", ids, np.full(4, t[i]), prof.hop_s, list(prof.signals), feats, names))
        h.writer.write(h.take())
        written += len(k) * 4
    h.writer.shutdown()
    return written


def latency(cfg: Path) -> dict:
    """p99 publish -> alert at 10 % load: quiet, then while retrains run one after another."""
    import os
    import threading

    import bench_latency

    probe = ["--quick", "--levels", "0.1", "--probes", "60"]
    quiet = bench_latency.main([*probe, "--name", "latency-retrain-quiet"])
    stop = threading.Event()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2"}
    runs = [0]

    def loop() -> None:
        while not stop.is_set():
            subprocess.run([EDGEGW, "retrain", "-c", str(cfg)], capture_output=True, env=env)
            runs[0] += 1

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        busy = bench_latency.main([*probe, "--name", "latency-retrain-busy"])
    finally:
        stop.set()
        t.join()

    def p99(r: dict) -> float | None:
        return (r.get("levels") or [{}])[0].get("p99")

    def brief(r: dict) -> list[dict]:
        return [{k: v for k, v in lv.items() if not k.endswith("samples_ms")} for lv in r.get("levels") or []]

    print(f"publish -> alert at 10 % load: p99 {p99(quiet)} ms quiet, {p99(busy)} ms during {runs[0]} retrain(s) (budget 10 ms)")
    return {"quiet": brief(quiet), "busy": brief(busy), "retrains": runs[0]}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=float, default=7.0)
    ap.add_argument("--no-limits", action="store_true", help="run the training without its memory cap")
    ap.add_argument("--latency", action="store_true", help="also publish -> alert at 10 %% load, without and during retrains")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        text = (ROOT / "config" / "example.yaml").read_text().replace("model: models/pump", "model: learn")
        cfg = state / "edgegw.yaml"
        cfg.write_text(
            text.replace("  site: plant-a", f"  site: plant-a\n  state_dir: {state}") + "\nhistory: {features_every_hops: 1}\n"
        )
        extra = ["--no-limits"] if args.no_limits else []
        t0 = time.monotonic()
        rows = history(state, cfg, args.days)
        took = time.monotonic() - t0
        print(f"history: {rows:,} feature rows ({args.days:g} days x 4 pumps, every {EVERY} hops) written in {took:.0f} s")
        ref_s, ref_mb, _ = child_run([sys.executable, "-c", "import sklearn.ensemble, onnxruntime, skl2onnx, onnx"])
        took, peak, out = child_run([EDGEGW, "retrain", "-c", str(cfg), *extra])
        verdicts = [json.loads(line) for line in out.splitlines()]
        lat = latency(cfg) if args.latency else None
    outcomes = {v["asset"]: v["outcome"] for v in verdicts}
    print(f"reference (import scikit-learn, onnxruntime, skl2onnx, onnx): {ref_s:.1f} s, peak RSS {ref_mb:.0f} MB")
    print(f"edgegw retrain, 4 pumps: {took:.1f} s (budget 60 s), peak RSS {peak:.0f} MB (budget 400 MB); {outcomes}")
    print("  per pump: " + ", ".join(f"{v['asset']} {v.get('normal_rows')} rows {v.get('took_s')} s" for v in verdicts))
    res = {"days": args.days, "rows": rows, "retrain_s": took, "peak_rss_mb": peak, "import_s": ref_s, "import_rss_mb": ref_mb,
           "outcomes": outcomes, "latency": lat}  # fmt: skip
    print(f"wrote {write('retrain', res)}")
    return res


if __name__ == "__main__":
    main()
