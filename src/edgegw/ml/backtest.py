"""`edgegw backtest`: replay history through the exact engine (windows, features, rules, models,
delays) at full speed, with no broker, and write what the gateway would have said at each row.

Lean on purpose: standard library csv + numpy + onnxruntime, so it runs on the gateway itself.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgegw.config import ConfigError, GatewayConfig, Profile, load_config, resolve_path
from edgegw.config.learn import LEARN
from edgegw.engine.engine import Engine
from edgegw.engine.modelmeta import META_FILE, MODEL_KINDS, ModelMeta
from edgegw.engine.models import ModelError, ModelSet, Verdict, load_model_set, read_model_meta
from edgegw.ml.datasets import DataError, History, read_history
from edgegw.ml.replay import profile_config, replay
from edgegw.records import Alert, AlertState

COLUMNS = ("timestamp", "asset", "anomaly_score", "anomaly", "failure_probability", "failure", "threshold")


def configure(parser: argparse.ArgumentParser) -> None:
    src = parser.add_argument_group("what to replay through")
    src.add_argument("-c", "--config", metavar="FILE", help="gateway config: profiles, limits, model, delays")
    src.add_argument(
        "--asset",
        metavar="ID",
        help="with -c: the config asset the data belongs to (default: assets named in the data, else the config's first asset)",
    )
    src.add_argument("--model", metavar="DIR", help="model directory; alone, signals and window come from its metadata")
    parser.add_argument("--data", action="append", required=True, metavar="FILE", help="history CSV/Parquet; repeatable")
    parser.add_argument("--out", required=True, metavar="FILE", help="CSV: one row per input timestamp (and asset)")
    parser.add_argument(
        "--plot",
        metavar="FILE.png",
        help="draw each asset's signals (units, limits), score, threshold and alarms, a column per asset (needs matplotlib)",
    )
    parser.add_argument(
        "--lead-tolerance",
        type=float,
        metavar="S",
        help="an alarm starting at most this long before a labelled fault counts as early, not false "
        "(default: two windows; a fault starts before its label says so)",
    )
    parser.add_argument("--label-column", help="fault labels for precision/recall (default: a 'label' column)")
    parser.add_argument("--delimiter", help="CSV delimiter (default: sniffed)")
    parser.add_argument("--timestamp-column", help="timestamp column (default: 'timestamp', 'time', ... or the first)")
    parser.add_argument("--timestamp-format", help="strptime format (default: ISO 8601 or epoch numbers)")
    parser.add_argument("--timestamp-unit", choices=["s", "ms", "us", "ns"], default="s")
    from edgegw.ml import learnreplay

    learnreplay.configure(parser)


def _fail(msg: str, code: int = 1) -> int:
    print(f"edgegw backtest: {msg}", file=sys.stderr)
    return code


def main(args: argparse.Namespace) -> int:
    if getattr(args, "learn", False):
        from edgegw.ml.learnreplay import main as learn_main

        return learn_main(args)
    if not args.config and not args.model:
        return _fail("give -c CONFIG or --model DIR", 2)
    if args.plot:
        try:
            import matplotlib  # noqa: F401 - before the replay, not after it
        except ImportError:
            return _fail("--plot needs matplotlib (pip install 'edgegw[plot]')")
    try:
        setup = _setup(args)
    except ConfigError as e:
        return _fail(str(e), 78)
    except (DataError, ModelError, BacktestError) as e:
        return _fail(str(e))
    t0 = time.monotonic()
    result = run(setup)
    took = time.monotonic() - t0
    write_csv(Path(args.out), setup.history, result)
    print(summary(setup, result, took, args.lead_tolerance))
    if args.plot:
        plot(Path(args.plot), setup, result)
    return 0


class BacktestError(Exception):
    """The arguments do not make a runnable backtest."""


@dataclass
class Setup:
    cfg: GatewayConfig
    history: History
    asset_ids: list[str]  # engine asset for each history asset
    models: dict[str, ModelSet]
    profile_name: str


@dataclass
class Result:
    score: np.ndarray  # per row; NaN before the first scored window
    anomaly: np.ndarray  # per row, 0/1
    failure_p: np.ndarray
    failure: np.ndarray
    threshold: np.ndarray
    alerts: list[Alert] = field(default_factory=list)
    hops: int = 0
    skipped: int = 0
    sparse: int = 0


def _model_profile(directory: Path, meta: ModelMeta, rate_hz: float) -> tuple[str, Profile]:
    """A profile built from a model's metadata: its signals, units, window, hop and alarm delays."""
    threshold = meta.model_alarms.failure_threshold
    try:
        p = Profile(
            window_s=float(meta.window_s),
            hop_s=float(meta.hop_s),
            max_rate_hz=max(1.0, float(math.ceil(rate_hz))),
            model=str(directory),
            model_alarms={} if threshold is None else {"failure_threshold": threshold},
            signals={s: {"unit": meta.units.get(s)} for s in meta.signals},
        )
    except ValueError as e:
        raise ModelError(f"{directory / META_FILE}: incomplete model description: {e}") from None
    return meta.name, p


def _setup(args: argparse.Namespace) -> Setup:
    read = {
        "delimiter": args.delimiter,
        "timestamp_column": args.timestamp_column,
        "timestamp_format": args.timestamp_format,
        "timestamp_unit": args.timestamp_unit,
        "label_column": args.label_column,
    }
    if not args.config:
        directory = Path(args.model)
        if not (directory / META_FILE).is_file():
            raise ModelError(f"{directory}: not a model directory (no {META_FILE})")
        meta = read_model_meta(directory)
        h = read_history(args.data, signals=meta.signals or None, **read)
        name, profile = _model_profile(directory, meta, h.rate_hz())
        ids = list(h.assets)
        cfg = profile_config(name, profile, ids)
        models: dict[str, ModelSet] = {name: load_model_set(directory, name, profile)}
        return Setup(cfg, h, ids, models, name)
    cfg = load_config(args.config)
    by_id = {a.id: a for a in cfg.assets}
    if args.asset and args.asset not in by_id:
        raise BacktestError(f"{args.config}: no asset {args.asset!r} (have {sorted(by_id)})")
    first = by_id[args.asset] if args.asset else cfg.assets[0]
    h = read_history(args.data, signals=None, asset=args.asset, **read)
    if args.asset:
        if len(h.assets) > 1:
            if args.asset not in h.assets:
                raise BacktestError(f"the data holds assets {h.assets}, not {args.asset!r}")
            h = h.only(args.asset)
        ids = [args.asset]
    else:
        unknown = [a for a in h.assets if a not in by_id]
        if unknown and len(h.assets) > 1:
            raise BacktestError(f"the data's assets {unknown} are not in {args.config}: pick one with --asset")
        ids = [a if a in by_id else first.id for a in h.assets]
    pnames = {by_id[i].profile for i in ids}
    if len(pnames) != 1:
        raise BacktestError(f"the data's assets use several profiles {sorted(pnames)}: backtest one at a time (--asset)")
    pname = pnames.pop()
    profile = cfg.profiles[pname]
    missing = [s for s in profile.signals if s not in h.signals]
    if missing:
        raise DataError(f"the data has no column for signal(s) {missing} of profile {pname!r} (columns: {h.signals})")
    models = {}
    learned = profile.model == LEARN  # no file: with --learn the replay learns it, else thresholds only
    model_path = args.model or (str(resolve_path(profile.model, args.config)) if profile.model and not learned else None)
    if model_path:
        models[pname] = load_model_set(model_path, pname, profile)
    return Setup(cfg, h, ids, models, pname)


def run(setup: Setup) -> Result:
    """Replay the history; record, per row, the alarm states and the latest model outputs."""
    h = setup.history
    n = len(h)
    res = Result(
        score=np.full(n, np.nan),
        anomaly=np.zeros(n, dtype=np.int8),
        failure_p=np.full(n, np.nan),
        failure=np.zeros(n, dtype=np.int8),
        threshold=np.zeros(n, dtype=np.int8),
    )
    engine_ids = sorted(set(setup.asset_ids))
    state = {a: {"anomaly": 0, "failure_risk": 0, "score": math.nan, "failure_p": math.nan, "thr": set()} for a in engine_ids}

    def emit(alert: Alert) -> None:
        res.alerts.append(alert)
        st = state[alert.asset]
        on = alert.state == AlertState.RAISED
        if alert.kind in MODEL_KINDS:
            st[alert.kind] = 1 if on else 0
        elif alert.kind == "threshold":
            thr: set[str] = st["thr"]  # type: ignore[assignment]
            if on:
                thr.add(alert.source)
            else:
                thr.discard(alert.source)

    def observe(_: str, ids: list[str], ends: np.ndarray, x: np.ndarray, verdicts: list[list[Verdict]] | None) -> None:
        res.hops += len(ids)
        if verdicts is None:
            return
        for a, row in zip(ids, verdicts, strict=True):
            for v in row:
                if v.kind == "anomaly":
                    state[a]["score"] = v.score
                elif v.kind == "failure_risk":
                    state[a]["failure_p"] = v.score

    engine = Engine(setup.cfg, emit, models=setup.models, clock=lambda: 0.0)
    engine.hop_observer = observe
    aidx = h.asset.tolist()
    ids = setup.asset_ids
    score, anomaly, fp, failure, threshold = res.score, res.anomaly, res.failure_p, res.failure, res.threshold

    def after_row(i: int) -> None:
        st = state[ids[aidx[i]]]
        score[i] = st["score"]
        anomaly[i] = st["anomaly"]
        fp[i] = st["failure_p"]
        failure[i] = st["failure_risk"]
        threshold[i] = 1 if st["thr"] else 0

    replay(h, engine, ids, after_row)
    res.skipped = engine.windows_skipped
    res.sparse = sum(int(getattr(m, "sparse_rows", 0)) for m in setup.models.values())
    return res


def _fmt(v: float) -> str:
    return "" if v != v else f"{v:.6g}"


def write_csv(path: Path, h: History, res: Result) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        assets = h.assets
        for i, (text, a, s, an, p, fa, th) in enumerate(
            zip(
                h.ts_text,
                h.asset.tolist(),
                res.score.tolist(),
                res.anomaly.tolist(),
                res.failure_p.tolist(),
                res.failure.tolist(),
                res.threshold.tolist(),
                strict=True,
            )
        ):
            del i
            w.writerow((text, assets[a], _fmt(s), an, _fmt(p), fa, th))


def _episodes(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index runs where mask is true."""
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist(), strict=True))


def row_seconds(ts: np.ndarray, hop_s: float) -> np.ndarray:
    """Time each row stands for: until the asset's next row, but a gap (longer than three typical
    steps or a hop) counts only that long; the last row counts one typical step."""
    if len(ts) < 2:
        return np.zeros(len(ts))
    d = np.diff(ts)
    step = float(np.median(d[d > 0])) if (d > 0).any() else hop_s
    cap = max(3.0 * step, hop_s)
    return np.minimum(np.append(d, step), cap)


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def _rate(count: int, seconds: float, what: str) -> str:
    """`count` over a stretch of data: per day from a day on, else the count and the span alone
    (3 alarms in 1.4 h are not '51 per day')."""
    days = seconds / 86400
    if days >= 1:
        return f"{count} {what} in {days:.2f} days ({count / days:.2f} per day)"
    return f"{count} {what} in {_hours(seconds)} (less than a day: no daily rate)"


def summary(setup: Setup, res: Result, took: float, lead_tolerance_s: float | None = None) -> str:
    """What a reliability engineer judges a detector by: alarm episodes, faults detected and with
    what lead, false alarms per day, and how much of the time in alarm was right. An alarm that
    starts within `lead_tolerance_s` (default two windows) before a labelled fault is early, not
    false: labels mark a fault from when it shows, the fault itself starts before."""
    h = setup.history
    n = len(h)
    span = float(h.ts[-1] - h.ts[0]) if n > 1 else 0.0
    prof = setup.cfg.profiles[setup.profile_name]
    hop = prof.hop_s
    tol = 2 * prof.window_s if lead_tolerance_s is None else lead_tolerance_s
    raised: dict[str, int] = {}
    for alert in res.alerts:
        if alert.state == AlertState.RAISED:
            raised[alert.kind] = raised.get(alert.kind, 0) + 1
    lines = [
        f"replayed {n} rows ({span / 3600:.2f} h, {len(h.assets)} asset(s)) in {took:.1f} s: "
        f"{res.hops} hops, {res.skipped} windows not scored (not warm or a silent signal), "
        f"{res.sparse} too sparse to judge (after a gap)",
        "alarms raised: " + (", ".join(f"{k} {v}" for k, v in sorted(raised.items())) or "none"),
    ]
    dt = np.zeros(n)
    for k in range(len(h.assets)):
        idx = np.flatnonzero(h.asset == k)
        dt[idx] = row_seconds(h.ts[idx], hop)
    for kind, arr in (("anomaly", res.anomaly), ("failure_risk", res.failure), ("threshold", res.threshold)):
        secs = float((dt * (arr > 0)).sum())
        lines.append(f"time in {kind} alarm: {_hours(secs)} ({(arr > 0).mean():.1%} of rows)")
    alarm = (res.anomaly > 0) | (res.failure > 0)
    fault = h.fault
    labels = h.labels
    found = false_eps = early_eps = n_eps = 0
    leads: list[float] = []
    for k, aname in enumerate(h.assets):
        idx = np.flatnonzero(h.asset == k)
        faults = _episodes(fault[idx]) if labels is not None else []
        starts = np.array([h.ts[idx[a]] for a, _ in faults])
        for a, b in _episodes(alarm[idx]):
            n_eps += 1
            rows = idx[a:b]
            right = labels is not None and bool(fault[rows].any())
            t = h.ts[rows[0]]
            early = not right and bool(((starts > t) & (starts - t <= tol)).any())
            false_eps += not right and not early
            early_eps += early
            if n_eps <= 10:
                what = "" if labels is None else (" (during a fault)" if right else " (early)" if early else " (false)")
                lines.append(f"  alarm on {aname} from {h.ts_text[rows[0]]} for {_hours(float(dt[rows].sum()))}{what}")
        for a, b in faults:
            rows = idx[a:b]
            hit = np.flatnonzero(alarm[rows])
            t0, t1 = h.ts[rows[0]], h.ts[rows[-1]]
            if len(hit):
                found += 1
                leads.append(t1 - h.ts[rows[hit[0]]])
                how = (
                    f"detected after {h.ts[rows[hit[0]]] - t0:.0f} s, {_hours(leads[-1])} before its end, "
                    f"{alarm[rows].mean():.0%} of its rows in alarm"
                )
            else:
                how = "missed"
            assert labels is not None
            lines.append(f"  fault {labels[rows[0]]!r} on {aname} from {h.ts_text[rows[0]]} ({_hours(t1 - t0)}): {how}")
    if n_eps > 10:
        lines.append(f"  ... {n_eps - 10} more alarm episodes")
    in_alarm = float((dt * alarm).sum())
    if labels is None:
        lines.append(f"model alarm episodes: {_rate(n_eps, float(dt.sum()), 'episodes')}; no labels to tell right from false")
        return "\n".join(lines)
    normal_s = float(dt[~fault].sum())
    right_time = float((dt * (alarm & fault)).sum())
    n_faults = sum(len(_episodes(fault[h.asset == k])) for k in range(len(h.assets)))
    lead = f", lead before the fault's end {min(leads) / 3600:.2f}-{max(leads) / 3600:.2f} h" if leads else ""
    lines.append(f"faults detected: {found}/{n_faults}{lead}")
    lines.append(f"false alarms: {_rate(false_eps, normal_s, 'episodes')} of normal data")
    lines.append(f"early alarms (at most {_hours(tol)} before a labelled fault began, not counted false): {early_eps}")
    lines.append(
        f"correct time in alarm: {right_time / in_alarm:.1%} of {_hours(in_alarm)} in alarm was during faults"
        if in_alarm
        else "correct time in alarm: never in alarm"
    )
    tp = int((alarm & fault).sum())
    fp = int((alarm & ~fault).sum())
    fn = int((~alarm & fault).sum())
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    lines.append(
        f"model alarms vs labels (rows): precision {prec:.3f} recall {rec:.3f} F1 {f1:.3f} "
        f"false-alarm rate {fp / max(int((~fault).sum()), 1):.2%}"
    )
    return "\n".join(lines)


def plot(path: Path, setup: Setup, res: Result) -> None:
    import matplotlib.pyplot as plt

    fig = figure(setup, res)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def figure(setup: Setup, res: Result) -> Any:
    """A column per asset: each signal with its unit and limits, then the model outputs; shaded
    spans are the alarms (and the labelled faults), named in the legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    h = setup.history
    specs = setup.cfg.profiles[setup.profile_name].signals
    ns, na = len(h.signals), len(h.assets)
    fig, grid = plt.subplots(ns + 1, na, sharex="col", squeeze=False, figsize=(4 + 5 * na, 1.6 * (ns + 1) + 1.2))
    spans = [("anomaly alarm", res.anomaly, "tab:orange"), ("failure alarm", res.failure, "tab:red")]
    spans.append(("threshold alarm", res.threshold, "tab:purple"))
    model = setup.models.get(setup.profile_name)
    thr = getattr(model, "threshold", None)
    for k, aname in enumerate(h.assets):
        sel = h.asset == k
        t = (h.ts[sel] - h.ts[sel][0]) / 60.0
        axes = grid[:, k]
        for j, s in enumerate(h.signals):
            ax = axes[j]
            ax.plot(t, h.values[sel, j], lw=0.6, color="tab:blue")
            spec = specs.get(s)
            ax.set_ylabel(f"{s} [{spec.unit}]" if spec is not None and spec.unit else s, fontsize=8)
            for level, style in (("hihi", "-"), ("hi", "--"), ("lo", "--"), ("lolo", "-")):
                limit = getattr(spec, level, None) if spec is not None else None
                if limit is not None:
                    ax.axhline(limit, color="tab:red", ls=style, lw=0.7)
        ax = axes[-1]
        ax.plot(t, res.score[sel], lw=0.7, label="anomaly score")
        if thr is not None:
            ax.axhline(thr, color="k", ls="--", lw=0.8, label="score threshold")
        if np.isfinite(res.failure_p[sel]).any():
            ax.plot(t, res.failure_p[sel], lw=0.7, label="failure probability")
        ax.set_ylabel("model", fontsize=8)
        for _, arr, color in spans:
            for a, b in _episodes(arr[sel] > 0):
                for axis in axes:
                    axis.axvspan(t[a], t[min(b, len(t) - 1)], color=color, alpha=0.15, lw=0)
        if h.labels is not None:
            for a, b in _episodes(h.fault[sel]):
                axes[0].axvspan(t[a], t[min(b, len(t) - 1)], ymax=0.08, color="k", alpha=0.6, lw=0)
        axes[0].set_title(aname, fontsize=9)
        ax.set_xlabel(f"minutes since {h.ts_text[int(np.flatnonzero(sel)[0])]}", fontsize=8)
    handles, _ = grid[-1, 0].get_legend_handles_labels()
    handles += [Patch(color=c, alpha=0.3, label=name) for name, _, c in spans]
    handles.append(plt.Line2D([], [], color="tab:red", ls="--", lw=0.7, label="limit hi/lo (solid: hihi/lolo)"))
    if h.labels is not None:
        handles.append(Patch(color="k", alpha=0.6, label="labelled fault"))
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 4), fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


__all__ = ["COLUMNS", "configure", "main", "row_seconds", "run", "summary", "write_csv"]
