"""`edgegw train`: history in, a model directory the gateway can load out.

Windows and features come from replaying the history through the daemon's own engine, so a
model is fitted on exactly the rows it will score. Without window options the window and hop
follow the history's sampling interval. The anomaly model (ml/anomaly.py) is an IsolationForest
on the principal axes of robust-scaled normal windows plus a bounded out-of-envelope term; its
threshold is calibrated on the latest stretch of normal history to a target false-alarm rate,
and its alarm delays, in hops, go into the model. With labels, a calibrated classifier (ml/classifier.py)
learns the fault classes. Everything is deterministic for a given --seed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import ValidationError

from edgegw.config import ConfigError, Profile, load_config
from edgegw.engine.features import FEATURES, feature_names
from edgegw.engine.modelmeta import (
    ANOMALY_FILE,
    FAILURE_FILE,
    OFF_HOPS,
    ON_HOPS,
    AnomalyMeta,
    FailureMeta,
    ModelAlarms,
    ModelMeta,
    Relations,
    TrainingStats,
)
from edgegw.engine.rules import Debounce
from edgegw.ml import anomaly as am
from edgegw.ml.classifier import fit_classifier
from edgegw.ml.datasets import DataError, History, read_history
from edgegw.ml.replay import features_of

if TYPE_CHECKING:
    from edgegw.ml.classifier import FailureClassifier

DEFAULT_FEATURES = tuple(f for f in FEATURES if f != "count")  # count follows the sample rate, not the machine
GATE_QUANTILE = 0.95  # failure_risk needs an anomaly score above this share of held-out normal windows
WINDOW_SAMPLES = 30  # a derived window holds this many samples, unless that is longer than an hour ...
MIN_WINDOW_SAMPLES = 6  # ... when it spans an hour but at least this many
MIN_SAMPLES = 3  # fewer samples per window cannot give a spread, let alone a skew
SPARSE_SAMPLES = 10  # windows of at most this many samples: one odd sample dominates each it is in


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data", action="append", default=[], metavar="FILE", help="historian CSV (wide or long form) or Parquet; repeatable"
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="model directory to write")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same data: same model)")
    parser.add_argument("-c", "--config", metavar="FILE", help="take window, hop and signals from this config")
    parser.add_argument("--profile", metavar="NAME", help="profile of --config (default: the only one)")
    parser.add_argument(
        "--window-s",
        type=float,
        help="feature window in seconds (default: from the sampling "
        f"interval: {WINDOW_SAMPLES} samples, or an hour but at least {MIN_WINDOW_SAMPLES} samples "
        "for slow data; 30 s at 1 Hz)",
    )
    parser.add_argument("--hop-s", type=float, help="hop between windows (default: the sampling interval, at least 1 s)")
    parser.add_argument(
        "--on-hops",
        type=int,
        help=f"model alarm raises after its condition held this many hops (default {ON_HOPS}; a sparse window's length in hops)",
    )
    parser.add_argument(
        "--off-hops", type=int, help=f"... and clears after it was gone this many (default {OFF_HOPS}; a sparse window's length)"
    )
    parser.add_argument(
        "--envelope-margin",
        type=float,
        default=am.ENVELOPE_MARGIN,
        help=f"range widths beyond what training saw before a feature raises the score on its own (default {am.ENVELOPE_MARGIN})",
    )
    parser.add_argument("--signals", help="comma-separated signal columns (default: every numeric column)")
    parser.add_argument(
        "--label-column",
        help="column marking fault periods: 0 normal, else a fault class (default: a column named 'label' if present)",
    )
    parser.add_argument("--no-labels", action="store_true", help="ignore any label column")
    parser.add_argument("--delimiter", help="CSV delimiter (default: sniffed)")
    parser.add_argument("--timestamp-column", help="timestamp column (default: 'timestamp', 'time', ... or the first)")
    parser.add_argument("--timestamp-format", help="strptime format (default: ISO 8601 or epoch numbers)")
    parser.add_argument(
        "--timestamp-unit", choices=["s", "ms", "us", "ns"], default="s", help="unit of numeric timestamps (default s)"
    )
    parser.add_argument("--asset", help="asset name for wide files without an 'asset' column")
    parser.add_argument("--name", help="model name (default: the profile name, else 'model')")
    parser.add_argument(
        "--false-alarm-rate",
        type=float,
        default=0.005,
        help="share of held-out normal windows above the anomaly threshold (default 0.005)",
    )
    parser.add_argument(
        "--features",
        default=",".join(DEFAULT_FEATURES),
        help=f"per-signal features the anomaly model uses (default: {','.join(DEFAULT_FEATURES)})",
    )
    parser.add_argument("--trees", type=int, default=100, help="isolation trees (default 100)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads for fitting (default 1: on a small shared box more threads only contend)",
    )
    parser.add_argument(
        "--synthetic", type=int, metavar="SECONDS", help="train on a generated pump history of this length instead of --data"
    )
    parser.add_argument("--save-data", metavar="FILE", help="with --synthetic: also keep the generated CSV here")


def main(args: argparse.Namespace) -> int:
    import sklearn.ensemble  # noqa: F401 - load its OpenMP runtime first, so the limit below applies to it
    from threadpoolctl import threadpool_limits

    try:
        with threadpool_limits(limits=args.threads):
            report = train(args)
    except (ConfigError, DataError, TrainError) as e:
        print(f"edgegw train: {e}", file=sys.stderr)
        return 78 if isinstance(e, ConfigError) else 1
    print(report)
    return 0


class TrainError(Exception):
    """Training cannot produce a usable model (too little data, unknown signals ...)."""


# ---------------------------------------------------------------------------------------------


def sampling_interval(h: History) -> float:
    """The typical spacing of samples (median over assets of each asset's median positive step)."""
    steps = []
    for k in range(len(h.assets)):
        d = np.diff(h.ts[h.asset == k])
        d = d[d > 0]
        if len(d):
            steps.append(float(np.median(d)))
    return float(np.median(steps)) if steps else 1.0


def derived_window(interval_s: float) -> tuple[float, float]:
    """(window_s, hop_s) for data sampled every interval_s: a hop per sample (at least 1 s, whole
    seconds), a window of WINDOW_SAMPLES hops, or of an hour when that is shorter, but never fewer
    than MIN_WINDOW_SAMPLES hops. 1 Hz data gets 30 s / 1 s; 10-minute samples get 1 h / 10 min."""
    hop = max(1.0, float(round(interval_s)))
    hops = min(WINDOW_SAMPLES, max(MIN_WINDOW_SAMPLES, round(3600.0 / hop)))
    return hop * hops, hop


def default_delays(window_s: float, hop_s: float, interval_s: float) -> tuple[int, int]:
    """(on_hops, off_hops): ON_HOPS / OFF_HOPS, but a window of at most SPARSE_SAMPLES samples must
    stay over the threshold for its whole length (a lone odd sample is in every window for that
    long) and clears as fast."""
    if window_s / interval_s <= SPARSE_SAMPLES:
        hops = max(ON_HOPS, round(window_s / hop_s))
        return hops, hops
    return ON_HOPS, OFF_HOPS


def check_density(window_s: float, interval_s: float) -> None:
    """A window must hold MIN_SAMPLES samples at the data's sampling interval."""
    per = window_s / interval_s
    if per < MIN_SAMPLES:
        raise TrainError(
            f"the data is sampled every {interval_s:g} s: a {window_s:g} s window holds {per:.2g} samples "
            f"(at least {MIN_SAMPLES} needed); give --window-s >= {MIN_SAMPLES * interval_s:g} with a --hop-s "
            "that divides it, or leave both out to derive them from the data"
        )


def _profile(
    args: argparse.Namespace, history_signals: list[str] | None, interval_s: float | None = None
) -> tuple[str, Profile, dict[str, Any]]:
    """The profile to train for, and the model alarm defaults to store with the model."""
    if args.config:
        cfg = load_config(args.config)
        name = args.profile or (next(iter(cfg.profiles)) if len(cfg.profiles) == 1 else None)
        if name is None:
            raise TrainError(f"{args.config} has several profiles {sorted(cfg.profiles)}: pick one with --profile")
        if name not in cfg.profiles:
            raise TrainError(f"{args.config}: no profile {name!r} (have {sorted(cfg.profiles)})")
        return name, cfg.profiles[name], cfg.profiles[name].model_alarms.model_dump()
    if args.profile:
        raise TrainError("--profile needs -c CONFIG")
    signals = [s.strip() for s in args.signals.split(",")] if args.signals else (history_signals or [])
    if not signals:
        raise TrainError("no signals: give --signals or data with numeric columns")
    window_s, hop_s = args.window_s, args.hop_s
    if window_s is None or hop_s is None:
        auto_w, auto_h = derived_window(interval_s or 1.0)
        if window_s is None and hop_s is None:
            window_s, hop_s = auto_w, auto_h
        elif window_s is None:
            window_s = hop_s * max(1, round(auto_w / hop_s))
        else:
            hop_s = auto_h if window_s / auto_h == round(window_s / auto_h) else window_s
    try:
        p = Profile(window_s=window_s, hop_s=hop_s, signals={s: {} for s in signals})
    except ValidationError as e:  # e.g. a window that is not a whole number of hops
        raise TrainError("; ".join(str(err["msg"]).removeprefix("Value error, ") for err in e.errors())) from None
    return args.name or "model", p, p.model_alarms.model_dump()


def _model_alarms(args: argparse.Namespace, profile: Profile, interval_s: float, base: dict[str, Any]) -> dict[str, Any]:
    """The model's alarm delays in hops (from --on-hops/--off-hops, else the config profile's,
    else default_delays) and in seconds at the profile's hop, with the failure threshold."""
    on, off = default_delays(profile.window_s, profile.hop_s, interval_s)
    if base.get("on_delay_s") is not None:  # the config's profile sets them
        on = round(base["on_delay_s"] / profile.hop_s)
    if base.get("off_delay_s") is not None:
        off = round(base["off_delay_s"] / profile.hop_s)
    on = on if args.on_hops is None else args.on_hops
    off = off if args.off_hops is None else args.off_hops
    if on < 0 or off < 0:
        raise TrainError("--on-hops and --off-hops must be >= 0")
    return {
        "on_hops": on,
        "off_hops": off,
        "on_delay_s": on * profile.hop_s,
        "off_delay_s": off * profile.hop_s,
        "failure_threshold": base["failure_threshold"],
    }


def _read(args: argparse.Namespace, signals: list[str] | None) -> History:
    paths = list(args.data)
    if args.synthetic:
        from edgegw.ml.synthetic import write_csv

        target = Path(args.save_data) if args.save_data else Path(args.out) / ".synthetic-history.csv"
        write_csv(target, args.synthetic, args.seed)
        paths.append(str(target))
    if not paths:
        raise TrainError("no data: give --data FILE (or --synthetic SECONDS)")
    h = read_history(
        paths,
        delimiter=args.delimiter,
        timestamp_column=args.timestamp_column,
        timestamp_format=args.timestamp_format,
        timestamp_unit=args.timestamp_unit,
        signals=signals,
        label_column=args.label_column,
        asset=args.asset,
    )
    if args.no_labels:
        h.labels = None
    if args.synthetic and not args.save_data:
        Path(paths[-1]).unlink(missing_ok=True)
    return h


def _window_labels(h: History, rec_assets: list[str], ends: np.ndarray, window_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Per window: the label of its newest sample, and whether any sample in it is a fault."""
    label = np.array(["0"] * len(ends), dtype=object)
    dirty = np.zeros(len(ends), dtype=bool)
    if h.labels is None:
        return label, dirty
    fault = h.fault
    labels = np.array(h.labels, dtype=object)
    for k, a in enumerate(h.assets):
        rows = np.flatnonzero(h.asset == k)
        ts = h.ts[rows]
        cum = np.concatenate([[0], np.cumsum(fault[rows])])
        win = np.flatnonzero(np.array(rec_assets) == a)
        if not len(win):
            continue
        e = ends[win]
        j = np.searchsorted(ts, e, side="left")  # samples < end
        i = np.searchsorted(ts, e - window_s, side="left")
        dirty[win] = (cum[j] - cum[i]) > 0
        last = np.clip(j - 1, 0, len(rows) - 1)
        label[win] = np.where(j > i, labels[rows[last]], "0")
    return label, dirty


def _debounced_share(cond: np.ndarray, ends: np.ndarray, on_s: float, off_s: float) -> float:
    """Share of hops in alarm after the on/off delays, as the engine would debounce them."""
    if not len(cond):
        return 0.0
    db = Debounce(on_s, off_s)
    on = 0
    for c, t in zip(cond.tolist(), ends.tolist(), strict=True):
        db.update(t, 1 if c else 0)
        on += db.active != 0
    return on / len(cond)


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import skl2onnx
    import sklearn

    from edgegw import __version__

    return {
        "edgegw": __version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "skl2onnx": skl2onnx.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "python": platform.python_version(),
    }


@dataclass
class Plan:
    """What to train for: the profile (signals, window, hop), the model's alarm delays and the history."""

    name: str
    profile: Profile
    alarms: dict[str, Any]  # model_alarms: on/off hops and seconds, failure threshold
    history: History
    interval_s: float  # the history's sampling interval
    derived: bool  # window and hop derived from the sampling interval

    @property
    def signals(self) -> list[str]:
        return list(self.profile.signals)


@dataclass
class Windows:
    """The usable feature rows the engine computed, with their labels and the fit/held-out split."""

    x: np.ndarray  # (n, n_features) in `names` order
    ends: np.ndarray
    assets: np.ndarray
    label: np.ndarray  # per window: the label of its newest sample
    names: list[str]
    min_samples: np.ndarray  # per signal: fewer samples in a window is too sparse to judge
    n_sparse: int  # windows left out as too sparse
    held: np.ndarray  # the latest stretch of each asset's normal windows
    fit_rows: np.ndarray  # normal windows to fit on
    cal_rows: np.ndarray  # normal windows held out to calibrate on


@dataclass
class AnomalyFit:
    """The fitted anomaly model, its envelope, and its threshold calibrated on held-out windows."""

    model: Any  # the IsolationForest pipeline
    envelope: am.Envelope
    kinds: list[str]  # per-signal features it uses
    used: list[int]  # their columns
    n_comp: int
    stats: TrainingStats  # of the fitted windows
    relations: dict[str, Any] | None
    cal_scores: np.ndarray
    threshold: float
    held_rate: float  # held-out normal windows above the threshold
    held_alarm: float  # ... in alarm after the delays

    def scores(self, x: np.ndarray) -> np.ndarray:
        return am.score(self.model, self.envelope, x)


def train(args: argparse.Namespace) -> str:
    """Train from the command line's arguments, write the model directory, return the report."""
    t0 = time.monotonic()
    plan = _plan(args)
    w = _windows(plan)
    fit = _fit_anomaly(args, plan, w)
    failure = _fit_failure(args, plan, w, fit)
    meta, protos = _model(args, plan, w, fit, failure)
    from edgegw.ml import export

    out = Path(args.out)
    export.write_model_dir(out, meta, protos)
    return _report(plan, w, fit, failure, meta, out, time.monotonic() - t0)


def _plan(args: argparse.Namespace) -> Plan:
    """The profile (from the config, the options or the history's sampling), the delays and the history."""
    cfg_signals = None
    if args.config:
        name, profile, alarm_defaults = _profile(args, None)
        cfg_signals = list(profile.signals)
    h = _read(args, cfg_signals or ([s.strip() for s in args.signals.split(",")] if args.signals else None))
    interval = sampling_interval(h)
    derived = not args.config and args.window_s is None and args.hop_s is None
    if not args.config:
        name, profile, alarm_defaults = _profile(args, h.signals, interval)
    check_density(profile.window_s, interval)
    alarms = _model_alarms(args, profile, interval, alarm_defaults)
    missing = [s for s in profile.signals if s not in h.signals]
    if missing:
        raise TrainError(f"the data has no values for signal(s) {missing} (columns: {h.signals})")
    return Plan(name, profile, alarms, h, interval, derived)


def _windows(plan: Plan) -> Windows:
    """Replay the history through the daemon's engine; keep the windows it would judge, split the
    normal ones into fit and held-out."""
    h, profile, signals = plan.history, plan.profile, plan.signals
    rec, _ = features_of(h, plan.name, profile)  # the same engine as the daemon: every sample of a window counts
    if not rec.rows:
        raise TrainError("the data produced no windows (too short for one window?)")
    x_all = rec.matrix()
    ends = np.array(rec.ends)
    assets = np.array(rec.assets, dtype=object)
    usable = np.array(rec.warm) & ~np.isnan(x_all).any(axis=1)
    label, dirty = _window_labels(h, rec.assets, ends, profile.window_s)
    names = feature_names(signals)
    count_cols = [names.index(f"{s}.count") for s in signals]
    # a window holding less than half the usual samples (just after a gap) is too sparse to judge,
    # in training as in serving
    typical = np.median(x_all[usable][:, count_cols], axis=0) if usable.any() else np.zeros(len(signals))
    min_samples = np.maximum(3, np.ceil(0.5 * typical)).astype(int)
    sparse = (np.nan_to_num(x_all[:, count_cols]) < min_samples).any(axis=1)
    n_sparse = int((usable & sparse).sum())
    usable &= ~sparse
    x, ends, assets, label, dirty = x_all[usable], ends[usable], assets[usable], label[usable], dirty[usable]
    normal = ~dirty & (label == "0")
    held = am.calibration_split(assets, normal)
    fit_rows, cal_rows = normal & ~held, normal & held
    if fit_rows.sum() < 50 or cal_rows.sum() < 20:
        raise TrainError(
            f"too few normal windows ({int(fit_rows.sum())} to fit, {int(cal_rows.sum())} held out) at a "
            f"{profile.window_s:g} s window and {profile.hop_s:g} s hop: give more history (at least "
            f"~{90 * profile.hop_s / 60:.0f} min of normal operation per asset)"
        )
    return Windows(x, ends, assets, label, names, min_samples, n_sparse, held, fit_rows, cal_rows)


def _fit_anomaly(args: argparse.Namespace, plan: Plan, w: Windows) -> AnomalyFit:
    """Fit the IsolationForest and the envelope on the fit rows; calibrate the threshold on the held-out ones."""
    kinds = [k.strip() for k in args.features.split(",") if k.strip()]
    bad = [k for k in kinds if k not in FEATURES]
    if bad or not kinds:
        raise TrainError(f"unknown feature(s) {bad} (have {list(FEATURES)})")
    names, x = w.names, w.x
    used = [i for i, n in enumerate(names) if n.split(".", 1)[1] in kinds]
    xf = x[w.fit_rows]
    mean = xf.mean(axis=0)
    std = xf.std(axis=0)
    center, scale = am.robust_scale(xf)
    n_comp = am.kept_components(((xf - center) / scale)[:, used])
    anomaly = am.fit(
        am.pipeline(used, center[used], scale[used], n_comp, args.trees, min(256, len(xf)), args.seed), xf.astype(np.float32)
    )
    envelope = am.Envelope.of(xf, used, scale[used], args.envelope_margin)
    cal_scores = am.score(anomaly, envelope, x[w.cal_rows])
    threshold = am.tail_threshold(cal_scores, args.false_alarm_rate)
    held_rate = float((cal_scores > threshold).mean())
    held_alarm = 0.0
    for a in np.unique(w.assets[w.cal_rows]):
        m = w.cal_rows & (w.assets == a)
        held_alarm += (
            _debounced_share(
                am.score(anomaly, envelope, x[m]) > threshold,
                w.ends[m],
                plan.alarms["on_delay_s"],
                plan.alarms["off_delay_s"],
            )
            * m.sum()
        )
    held_alarm /= max(int(w.cal_rows.sum()), 1)
    return AnomalyFit(
        model=anomaly,
        envelope=envelope,
        kinds=kinds,
        used=used,
        n_comp=n_comp,
        stats=TrainingStats(mean=mean.tolist(), std=std.tolist(), center=center.tolist(), scale=scale.tolist()),
        relations=am.fit_relations(xf, names, plan.signals, center, scale),
        cal_scores=cal_scores,
        threshold=threshold,
        held_rate=held_rate,
        held_alarm=held_alarm,
    )


def _fit_failure(args: argparse.Namespace, plan: Plan, w: Windows, fit: AnomalyFit) -> FailureClassifier | None:
    """With labels of more than one class: the classifier over all labelled windows, speaking only
    past the anomaly gate."""
    if plan.history.labels is None or len(set(w.label.tolist())) <= 1:
        return None
    gate = _gate(fit)
    return fit_classifier(
        w.x,
        w.label,
        w.assets,
        w.ends,
        w.held,
        w.names,
        plan.signals,
        args.seed,
        served=lambda rows: fit.scores(rows) >= gate,
        risk_threshold=plan.alarms["failure_threshold"],
    )


def _gate(fit: AnomalyFit) -> float:
    """A fault class is named only for windows that are also somewhat unusual: a classifier that
    saw few machines must not call a healthy machine it never saw faulty."""
    return float(np.quantile(fit.cal_scores, GATE_QUANTILE))


def _graphs(w: Windows, fit: AnomalyFit, failure: FailureClassifier | None) -> dict[str, Any]:
    """The ONNX graphs by file name: the compacted anomaly graph with its envelope, and the classifier's."""
    from edgegw.ml import export

    probe = w.x[w.cal_rows][:4000].astype(np.float32)  # the compact graphs must give the same numbers here
    anomaly_graph = export.compacted(export.anomaly_onnx(fit.model, len(w.names)), probe)
    protos = {ANOMALY_FILE: am.add_envelope(anomaly_graph, fit.envelope)}
    if failure is not None:
        protos[FAILURE_FILE] = export.failure_onnx(failure, len(w.names))
    return protos


def _model(
    args: argparse.Namespace, plan: Plan, w: Windows, fit: AnomalyFit, failure: FailureClassifier | None
) -> tuple[ModelMeta, dict[str, Any]]:
    """The ONNX graphs and the metadata that describes them; the version names their content."""
    h, profile, signals, names = plan.history, plan.profile, plan.signals, w.names
    params = {
        "features": fit.kinds,
        "trees": args.trees,
        "false_alarm_rate": args.false_alarm_rate,
        "seed": args.seed,
        "window_s": profile.window_s,
        "hop_s": profile.hop_s,
        "signals": signals,
        "envelope_margin": args.envelope_margin,
        "model_alarms": plan.alarms,
    }
    protos = _graphs(w, fit, failure)
    # the version names the content: same data, settings and graphs, same version
    digest = hashlib.sha256(json.dumps([h.fingerprint, params], sort_keys=True).encode())
    for proto in protos.values():
        digest.update(proto.graph.SerializeToString())
    anomaly = AnomalyMeta(
        file=ANOMALY_FILE,
        score="isolation forest score 2^(-E[h]/c(n)) in (0, 1] plus the envelope term e/(1+e) in [0, 1), "
        "e = range widths beyond the fitted envelope past the margin; higher is more unusual",
        output=am.OUTPUT,
        score_sign=1.0,
        threshold=fit.threshold,
        false_alarm_target=args.false_alarm_rate,
        heldout_false_alarm=fit.held_rate,
        min_samples=dict(zip(signals, w.min_samples.tolist(), strict=True)),
        features_used=[names[i] for i in fit.used],
        training_stats=fit.stats,
        envelope=fit.envelope.to_meta(),
        relations=Relations(**fit.relations) if fit.relations else None,
    )
    failure_meta = None if failure is None else _failure_meta(failure, plan, fit)
    meta = ModelMeta(
        name=plan.name,
        version=f"{plan.name}-{digest.hexdigest()[:12]}",
        signals=signals,
        units={s: profile.signals[s].unit for s in signals},
        window_s=profile.window_s,
        hop_s=profile.hop_s,
        feature_names=names,
        anomaly=anomaly,
        failure_risk=failure_meta,
        model_alarms=ModelAlarms(**plan.alarms),
        data={
            "fingerprint": h.fingerprint,
            "files": [Path(f).name for f in h.files],
            "rows": len(h),
            "assets": h.assets,
            "rate_hz": round(h.rate_hz(), 3),
            "interval_s": plan.interval_s,
            "windows": len(w.x),
            "normal_windows_fit": int(w.fit_rows.sum()),
            "normal_windows_heldout": int(w.cal_rows.sum()),
            "labelled": h.labels is not None,
            "classes": sorted(set(w.label.tolist())),
        },
        params=params,
        library_versions=_versions(),
        trained_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    return meta, protos


def _failure_meta(failure: FailureClassifier, plan: Plan, fit: AnomalyFit) -> FailureMeta:
    fm = failure.meta()
    return FailureMeta(
        file=FAILURE_FILE,
        output="probabilities",
        classes=failure.classes,
        normal_class="0",
        threshold=plan.alarms["failure_threshold"],
        anomaly_gate=_gate(fit),
        features=fm.pop("features"),
        calibration=fm.pop("calibration"),
        cause_threshold=fm.pop("cause_threshold"),
        unknown_class=fm.pop("unknown_class"),
        extra=fm,
    )


def _report(
    plan: Plan, w: Windows, fit: AnomalyFit, failure: FailureClassifier | None, meta: ModelMeta, out: Path, took_s: float
) -> str:
    """What `edgegw train` prints: the model, its window, the data, the threshold and held-out figures."""
    profile, interval, alarms, h = plan.profile, plan.interval_s, plan.alarms, plan.history
    how = "derived from the sampling interval" if plan.derived else "as given"
    far = meta.anomaly.false_alarm_target or 0.0
    lines = [
        f"model {meta.version} -> {out}/",
        f"  window {profile.window_s:g} s, hop {profile.hop_s:g} s ({how}: samples every ~{interval:g} s, "
        f"~{profile.window_s / interval:.3g} per window); model alarm delays {alarms['on_hops']} hops on, "
        f"{alarms['off_hops']} off",
        f"  data: {len(h)} rows, {len(h.assets)} asset(s), ~{h.rate_hz():.2g} Hz, {len(w.x)} windows "
        f"({int(w.fit_rows.sum())} normal to fit, {int(w.cal_rows.sum())} normal held out, "
        f"{w.n_sparse} too sparse after gaps)",
        f"  anomaly: IsolationForest on {len(fit.used)} features ({fit.n_comp} principal axes) + envelope "
        f"(margin {fit.envelope.margin:g} widths), threshold {fit.threshold:.4f} (latest {am.CALIBRATION_SHARE:.0%} of "
        "normal windows)",
        f"  held-out normal windows above threshold: {fit.held_rate:.2%} (target {far:.2%}); "
        f"in alarm after delays: {fit.held_alarm:.2%}",
    ]
    if failure is not None:
        lines.append(f"  failure_risk: relations + HistGradientBoosting over classes {sorted(set(w.label.tolist()))}")
        lines.extend(failure.report)
    lines.append(f"  took {took_s:.1f} s")
    return "\n".join(lines)
