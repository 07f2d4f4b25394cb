"""Model figures: features + both models per asset, one batched hop for 50 assets, and
scikit-learn per call vs onnxruntime (the compact IsolationForest graph and skl2onnx's stock one).

    python benchmarks/bench_models.py [--model models/pump] [--repeat 2000]

Uses the example config's pump profile (6 signals, 30 s window, up to 10 Hz) and the shipped
model; the scikit-learn side is fitted here on the same kind of features. Prints a table and
writes benchmarks/results/models.json. Budgets: one asset <= 1 ms p99, 50 assets <= 5 ms p99.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import pct, timed, write

from edgegw.config import load_config
from edgegw.engine.engine import Engine
from edgegw.engine.features import feature_names, row_features
from edgegw.engine.models import load_model_set
from edgegw.ml.replay import profile_config

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config" / "example.yaml"


def row(name: str, samples: list[float], budget_us: float | None = None) -> dict[str, float | str | None]:
    r = {"name": name, "p50_us": pct(samples, 50), "p99_us": pct(samples, 99), "budget_us": budget_us}
    ok = "" if budget_us is None else ("  ok" if r["p99_us"] <= budget_us else "  OVER BUDGET")
    print(f"{name:58s} p50 {r['p50_us']:9.1f} us  p99 {r['p99_us']:9.1f} us{ok}")
    return r


def engine_hop(n_assets: int, rate_hz: float, model_dir: Path, repeat: int) -> tuple[list[float], float]:
    """Time Engine.run_hops() with n_assets due at once, windows full at rate_hz, fed normal
    simulator history; returns the timings and the share of scored rows above threshold (in the
    warm-up hops). Every asset reports all its signals at the same instants (one message each),
    so all 50 cross a hop boundary together and are scored in one batch; the window upkeep the
    intake runs between hops (Engine.prepare) runs between timed hops, untimed.
    """
    from edgegw.sim.fleet import Fleet

    cfg = load_config(EXAMPLE)
    profile = cfg.profiles["pump"]
    ids = [f"pump-{i}" for i in range(n_assets)]
    ms = load_model_set(model_dir, "pump", profile)
    eng = Engine(profile_config("pump", profile, ids), lambda a: None, models={"pump": ms}, clock=lambda: 0.0)
    hot = [0, 0]

    def observe(_p: str, _ids: list[str], _e: np.ndarray, _x: np.ndarray, verdicts: list | None) -> None:
        for r in verdicts or []:
            if r:
                hot[0] += r[0].condition
                hot[1] += 1

    n_warm = 40  # hops before timing: windows full
    steps = int((n_warm + repeat + 5) * rate_hz) + 1
    signals = list(profile.signals)
    # normal operation from the simulator the shipped model was trained on (8 pumps, reused)
    fleet = Fleet([f"p{i}" for i in range(min(n_assets, 8))], seed=5, rate_hz=rate_hz)
    series = [np.empty((steps, len(signals))) for _ in fleet.assets]
    for k in range(steps):
        for i, sample in enumerate(fleet.step()):
            series[i][k] = [sample.values.get(s, np.nan) for s in signals]
    dt = 1.0 / rate_hz
    t = 1767600000.0
    k = 0

    def feed_until_due() -> None:
        nonlocal t, k
        while not eng.due:
            for i, a in enumerate(ids):
                row = series[i % len(series)][k]
                for j, s in enumerate(signals):
                    eng.ingest(a, s, t, float(row[j]))
            t += dt
            k += 1

    eng.hop_observer = observe
    for _ in range(n_warm):
        feed_until_due()
        eng.run_hops()
        eng.prepare()
    eng.hop_observer = None  # the daemon has none (verdict objects are built for observers only);
    out = []  # the share of rows above threshold is from the warm-up hops
    for _ in range(repeat):
        feed_until_due()
        t_start = time.perf_counter()
        eng.run_hops()
        out.append(time.perf_counter() - t_start)
        eng.prepare()  # window upkeep between hops, as the daemon's intake runs it (off the alert path)
    return out, hot[0] / max(hot[1], 1)


def sklearn_side(repeat: int) -> list[dict[str, float | str | None]]:
    """scikit-learn per call vs onnxruntime, on models fitted here from synthetic pump history."""
    import onnxruntime as ort
    from skl2onnx import to_onnx, update_registered_converter
    from skl2onnx.operator_converters.isolation_forest import convert_sklearn_isolation_forest
    from skl2onnx.shape_calculators.isolation_forest import calculate_isolation_forest_output_shapes
    from sklearn.ensemble import IsolationForest
    from threadpoolctl import threadpool_limits

    from edgegw.ml import anomaly as am
    from edgegw.ml import export, iforest_onnx
    from edgegw.ml.classifier import failure_pipeline
    from edgegw.ml.datasets import read_history
    from edgegw.ml.replay import features_of
    from edgegw.ml.synthetic import write_csv
    from edgegw.ml.train import DEFAULT_FEATURES

    cfg = load_config(EXAMPLE)
    profile = cfg.profiles["pump"]
    with tempfile.TemporaryDirectory() as d:
        h = read_history([write_csv(Path(d) / "h.csv", 4 * 3600, seed=5)])
    rec, _ = features_of(h, "pump", profile.model_copy(update={"max_rate_hz": 2.0}))
    x = rec.matrix()
    x = x[~np.isnan(x).any(axis=1)][60:].astype(np.float32)
    names = feature_names(list(profile.signals))
    used = [i for i, n in enumerate(names) if n.split(".", 1)[1] in DEFAULT_FEATURES]
    labels = np.array(["0"] * len(x), dtype=object)
    labels[: len(x) // 3 : 7] = "bearing_wear"  # any two classes will do for timing
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    one = x[:1]
    out = []
    with threadpool_limits(limits=1):
        center, scale = am.robust_scale(x)
        axes = am.kept_components(((x - center) / scale)[:, used])
        iso = am.fit(am.pipeline(used, center[used], scale[used], axes, 100, 256, 0), x)
        env = am.Envelope.of(x, used, scale[used], am.ENVELOPE_MARGIN)
        clf = failure_pipeline(used, 0).fit(x, labels)
        out.append(row("sklearn IsolationForest pipeline, 1 row", timed(lambda: iso.score_samples(one), repeat // 10)))
        compact = ort.InferenceSession(export.anomaly_onnx(iso, x.shape[1]).SerializeToString(), so)
        out.append(
            row(
                "onnxruntime compact IsolationForest (1 tree ensemble), 1 row",
                timed(lambda: compact.run(None, {"X": one}), repeat),
                100.0,
            )
        )
        served = ort.InferenceSession(
            am.add_envelope(export.compacted(export.anomaly_onnx(iso, x.shape[1]), x[:2000]), env).SerializeToString(), so
        )
        out.append(
            row(
                "onnxruntime served anomaly graph (compacted + envelope), 1 row",
                timed(lambda: served.run(None, {"X": one}), repeat),
                100.0,
            )
        )
        # skl2onnx's stock converter, for comparison
        alias = "SklearnIsolationForest"
        update_registered_converter(
            IsolationForest,
            alias,
            calculate_isolation_forest_output_shapes,
            convert_sklearn_isolation_forest,
            options={"score_samples": [True, False]},
        )
        stock_proto = to_onnx(iso, one, target_opset=export.TARGET_OPSET)
        stock = ort.InferenceSession(stock_proto.SerializeToString(), so)
        print(
            f"  (stock converter graph: {len(stock_proto.graph.node)} nodes; compact: "
            f"{len(export.anomaly_onnx(iso, x.shape[1]).graph.node)})"
        )
        out.append(
            row("onnxruntime stock skl2onnx IsolationForest, 1 row", timed(lambda: stock.run(None, {"X": one}), repeat // 10))
        )
        iforest_onnx.register()  # back to the compact converter
        out.append(row("sklearn HistGradientBoosting pipeline, 1 row", timed(lambda: clf.predict_proba(one), repeat // 10)))
        fsess = ort.InferenceSession(export.classifier_onnx(clf, x.shape[1]).SerializeToString(), so)
        out.append(row("onnxruntime HistGradientBoosting, 1 row", timed(lambda: fsess.run(None, {"X": one}), repeat), 100.0))
        batch = x[:50]
        out.append(row("sklearn IsolationForest pipeline, 50 rows", timed(lambda: iso.score_samples(batch), repeat // 10)))
        out.append(row("onnxruntime compact IsolationForest, 50 rows", timed(lambda: compact.run(None, {"X": batch}), repeat)))
        out.append(
            row(
                "onnxruntime served anomaly graph (compacted + envelope), 50 rows",
                timed(lambda: served.run(None, {"X": batch}), repeat),
            )
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(ROOT / "models" / "pump"))
    ap.add_argument("--repeat", type=int, default=2000)
    ap.add_argument("--no-sklearn", action="store_true", help="skip the scikit-learn comparison")
    args = ap.parse_args()
    model = Path(args.model)
    cfg = load_config(EXAMPLE)
    profile = cfg.profiles["pump"]
    ms = load_model_set(model, "pump", profile)
    names = feature_names(list(profile.signals))
    print(f"model {ms.version}: {len(names)} features, {'with' if ms._failure else 'no'} failure classifier")
    rows = []
    rng = np.random.default_rng(0)
    for rate in (1.0, 10.0):
        n = int(30 * rate)
        k = len(profile.signals)
        ts = np.tile(np.arange(n) / rate, (k, 1))
        xs = rng.normal(3.0, 0.3, (k, n))
        rows.append(
            row(f"features, one asset ({k} signals x {n} samples)", timed(lambda ts=ts, xs=xs: row_features(ts, xs), args.repeat))
        )
    mean = np.asarray(ms.meta.anomaly.training_stats.mean, dtype=np.float32).reshape(1, -1)
    rows.append(row("both models via ModelSet.evaluate, 1 row", timed(lambda: ms.evaluate(mean), args.repeat)))
    hot = mean.copy()
    hot[0, names.index("vibration.mean")] += 50
    rows.append(row("both models, 1 anomalous row (with explanation)", timed(lambda: ms.evaluate(hot), args.repeat)))
    for n_assets, budget, reps in ((1, 1000.0, args.repeat), (50, 5000.0, args.repeat // 4)):
        for rate in (1.0, 10.0):
            samples, hot = engine_hop(n_assets, rate, model, reps)
            what = "1 asset: features + both models + alarms" if n_assets == 1 else f"{n_assets} assets batched"
            rows.append(row(f"engine hop, {what}, {rate:g} Hz", samples, budget))
            rows[-1]["rows_above_threshold"] = hot
            print(f"  ({hot:.1%} of scored rows above the anomaly threshold)")
    if not args.no_sklearn:
        rows += sklearn_side(args.repeat)
    path = write("models", {"model": ms.version, "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
