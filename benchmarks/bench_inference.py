"""Inference per hop for 1, 10 and 50 assets: the gateway's way (features for all assets in one
vectorised pass, both models in one onnxruntime call each) next to the tutorial way (features
per asset and signal with numpy/scipy calls, scikit-learn called once per asset).

    python benchmarks/bench_inference.py [--quick] [--model models/pump]

Three figures per asset count, all in one run:
  naive      per asset: per-signal numpy/scipy features, sklearn IsolationForest pipeline
             score_samples + HistGradientBoosting predict_proba on that one row
  batched    row_features over all (asset, signal) windows at once + the same two fitted models
             exported to ONNX, one onnxruntime call each for all rows (like for like: same models)
  engine     Engine.run_hops() with the shipped model (features from the window parts + both
             models + alarm debounce), windows full of normal simulated operation at the rate the
             model was trained on (its model.json; 2 Hz for models/pump), all assets crossing the
             hop boundary together (bench_models.engine_hop; bench_models.py also times 1 and 10 Hz)

The scikit-learn models are fitted here (same pipeline shapes as `edgegw train`: scaler, PCA
whitening, 100-tree IsolationForest; 100-iteration HistGradientBoosting) on features of a
synthetic pump history; the comparison is about call cost, not accuracy. Windows: 6 signals x
300 samples (30 s at 10 Hz). One thread everywhere. --quick times the naive loop on at most 10 assets and scales it.

Writes benchmarks/results/inference.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import pct, timed, write

from edgegw.engine.features import N_FEATURES, row_features

ROOT = Path(__file__).resolve().parent.parent
SIGNALS = ("vibration", "pressure", "temperature", "flow", "current", "suction_pressure")
K = len(SIGNALS)
BASE = np.array([3.0, 6.5, 55.0, 60.0, 35.0, 1.2])
SPREAD = np.array([0.15, 0.05, 0.2, 1.0, 0.4, 0.01])
LENGTH = 300


def naive_features(ts: np.ndarray, x: np.ndarray) -> np.ndarray:
    """One asset's feature vector the way a notebook computes it: a loop over signals, one numpy
    or scipy call per statistic (same 12 features per signal as edgegw's)."""
    from scipy import stats

    out = []
    for t, v in zip(ts, x, strict=True):
        mean = np.mean(v)
        std = np.std(v)
        mn, mx = np.min(v), np.max(v)
        rms = np.sqrt(np.mean(v**2))
        slope = np.polyfit(t - t[0], v, 1)[0]
        peak = max(abs(mn), abs(mx))
        out += [mean, std, mn, mx, rms, mx - mn, slope, stats.skew(v), stats.kurtosis(v), peak / rms, v[-1], len(v)]
    return np.asarray(out, dtype=np.float32)


def fit_models(seed: int = 0) -> tuple[Any, Any, np.ndarray]:
    """IsolationForest and HistGradientBoosting pipelines on features of synthetic windows."""
    from sklearn.decomposition import PCA
    from sklearn.ensemble import HistGradientBoostingClassifier, IsolationForest
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    n = 1500
    ts = np.tile(np.arange(LENGTH) / 10.0, (n * K, 1))
    load = rng.uniform(0.6, 0.9, n).repeat(K)[:, None]
    x = BASE[np.tile(np.arange(K), n)][:, None] * (0.8 + 0.25 * load) + SPREAD[np.tile(np.arange(K), n)][
        :, None
    ] * rng.standard_normal((n * K, LENGTH))
    feats = row_features(ts, x).reshape(n, K * N_FEATURES).astype(np.float32)
    keep = [i for i in range(feats.shape[1]) if i % N_FEATURES != N_FEATURES - 1]  # count is constant
    feats = feats[:, keep]
    labels = np.where(np.arange(n) % 7 == 0, "bearing_wear", np.where(np.arange(n) % 11 == 0, "cavitation", "0"))
    feats[labels == "bearing_wear", 0] += 1.0
    feats[labels == "cavitation", 12] -= 1.0
    iso = Pipeline(
        [
            ("scale", StandardScaler()),
            ("whiten", PCA(whiten=True, n_components=0.999, random_state=seed)),
            ("iforest", IsolationForest(n_estimators=100, max_samples=256, random_state=seed)),
        ]
    ).fit(feats)
    clf = Pipeline(
        [("hgb", HistGradientBoostingClassifier(max_iter=100, max_leaf_nodes=15, early_stopping=False, random_state=seed))]
    ).fit(feats, labels)
    return iso, clf, np.asarray(keep)


def onnx_sessions(iso: Any, clf: Any, n_features: int) -> tuple[Any, Any]:
    import onnxruntime as ort

    from edgegw.ml import export

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    a = ort.InferenceSession(export.anomaly_onnx(iso, n_features).SerializeToString(), so, providers=["CPUExecutionProvider"])
    f = ort.InferenceSession(export.classifier_onnx(clf, n_features).SerializeToString(), so, providers=["CPUExecutionProvider"])
    return a, f


def row(name: str, samples: list[float]) -> dict[str, float]:
    return {"p50_us": round(pct(samples, 50), 1), "p99_us": round(pct(samples, 99), 1), "n": len(samples)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--name", default="inference")
    ap.add_argument("--model", default=str(ROOT / "models" / "pump"))
    ap.add_argument("--assets", default="1,10,50")
    args = ap.parse_args(argv)
    from threadpoolctl import threadpool_limits

    rep_fast = 200 if args.quick else 2000
    rep_slow = 10 if args.quick else 60  # naive calls per asset count: this many / assets, at least 1
    counts = [int(c) for c in args.assets.split(",")]
    rng = np.random.default_rng(1)
    res: dict[str, Any] = {"window": f"{K} signals x {LENGTH} samples", "rows": []}
    with threadpool_limits(limits=1):
        iso, clf, keep = fit_models()
        a_sess, f_sess = onnx_sessions(iso, clf, len(keep))
        a_in, f_in = a_sess.get_inputs()[0].name, f_sess.get_inputs()[0].name
        a_out = [o.name for o in a_sess.get_outputs() if "score_samples" in o.name] or [a_sess.get_outputs()[-1].name]
        f_out = [o.name for o in f_sess.get_outputs() if "prob" in o.name] or [f_sess.get_outputs()[-1].name]
        for n in counts:
            ts = np.tile(np.arange(LENGTH) / 10.0, (n * K, 1))
            x = BASE[np.tile(np.arange(K), n)][:, None] + SPREAD[np.tile(np.arange(K), n)][:, None] * rng.standard_normal(
                (n * K, LENGTH)
            )

            n_naive = min(n, 10) if args.quick else n  # quick: time 10 assets and scale (the loop is per asset)

            def naive(ts: np.ndarray = ts, x: np.ndarray = x, n: int = n_naive) -> None:
                for k in range(n):
                    f = naive_features(ts[k * K : (k + 1) * K], x[k * K : (k + 1) * K])[keep][None, :]
                    iso.score_samples(f)
                    clf.predict_proba(f)

            def batched(ts: np.ndarray = ts, x: np.ndarray = x, n: int = n) -> None:
                f = row_features(ts, x).reshape(n, K * N_FEATURES)[:, keep].astype(np.float32)
                a_sess.run(a_out, {a_in: f})
                f_sess.run(f_out, {f_in: f})

            r_naive = row("naive", timed(naive, max(1, rep_slow // n_naive), warm=1))
            if n_naive != n:
                r_naive = {k: (round(v * n / n_naive, 1) if k.endswith("_us") else v) for k, v in r_naive.items()}
                r_naive["scaled_from_assets"] = n_naive
            r_batch = row("batched", timed(batched, rep_fast, warm=20))
            entry: dict[str, Any] = {
                "assets": n,
                "naive_sklearn_per_asset": r_naive,
                "batched_onnx": r_batch,
                "speedup_p50": round(r_naive["p50_us"] / r_batch["p50_us"], 1),
            }
            if Path(args.model, "model.json").exists():
                from bench_models import engine_hop  # normal operation, at the rate the model was trained on

                meta = json.loads(Path(args.model, "model.json").read_text())
                rate = float((meta.get("data") or {}).get("rate_hz") or 2.0)
                samples, hot = engine_hop(n, rate, Path(args.model), max(50, rep_fast // (4 if n > 10 else 1)))
                entry["engine_hop_shipped_model"] = {
                    **row("engine", samples),
                    "rows_above_threshold": round(hot, 4),
                    "rate_hz": rate,
                }
            res["rows"].append(entry)
            eh = entry.get("engine_hop_shipped_model", {})
            print(
                f"{n:3d} assets: naive p50 {r_naive['p50_us']:>9,.0f} us | batched p50 {r_batch['p50_us']:>7,.0f} us "
                f"p99 {r_batch['p99_us']:>7,.0f} us | x{entry['speedup_p50']} | engine hop p50 "
                f"{eh.get('p50_us')} us p99 {eh.get('p99_us')} us",
                flush=True,
            )
    last = res["rows"][-1]
    res["speedup_at_max_assets"] = last["speedup_p50"]
    eh = last.get("engine_hop_shipped_model", {})
    res["p99_us_at_max_assets"] = eh.get("p99_us", last["batched_onnx"]["p99_us"])
    print(f"wrote {write(args.name, res)}")
    return res


if __name__ == "__main__":
    main()
