"""`edgegw retrain`: a model per asset (or profile) from the gateway's own history, in a process
of its own (nice 19, idle scheduling, a memory cap), so the daemon never loads scikit-learn.

The rows are the engine's own feature rows as the historian kept them (no replay). Only normal
ones are learned from: none inside an alarm's span (raised to cleared, whatever acks or shelves
happened meanwhile; quality and stale alarms included), none in `learn.margin_s` before a raise,
none with a missing feature or too few samples (bad or silent data). The fit and the threshold's
calibration are `edgegw train`'s (ml/train.py, ml/anomaly.py, ml/export.py); a learned model is
anomaly-only (a classifier needs labelled faults).

A candidate serves only when it passes, on the latest held-out normal rows, next to the current
model: its time in alarm there is no worse (or within a small floor), it still alarms on every
model alarm span the current model caught, and (trend guard) the rows it would newly absorb show
no steady creep of the current model's score or of a signal. Then it is written (model.json
last) and `current` is switched atomically (learn/store.py); the daemon loads it on its next check.
Prints one JSON verdict per asset on stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgegw.config import ConfigError, GatewayConfig, Profile
from edgegw.config.learn import LearnConfig, TrendGuard
from edgegw.engine.features import feature_names
from edgegw.engine.models import ModelError, ModelSet, load_model_set
from edgegw.learn.store import ModelStore

MAX_FIT_ROWS = 20000  # more normal rows are thinned evenly in time: neighbours at a 1 s hop say the same
ALLOWED_ALARM_SHARE = 0.01  # a candidate may always be in alarm this share of held-out normal time
# a model alarm span this long (in hops) was a condition, not a blip: the candidate must still catch it
CAUGHT_HOPS = 30
MODEL_KINDS = ("anomaly", "failure_risk")


@dataclass
class Rows:
    """One asset's feature rows in time order, and its alarm spans (start, end, kind)."""

    asset: str
    ends: np.ndarray
    x: np.ndarray  # (n, n_features) in the profile's feature order
    names: list[str]
    spans: list[tuple[float, float, str]] = field(default_factory=list)


RowReader = Callable[[GatewayConfig, Path, str, str], Rows]


# ---------------------------------------------------------------- what is learned from


def normal_mask(rows: Rows, window_s: float, margin_s: float, min_samples: np.ndarray | None = None) -> np.ndarray:
    """Rows a model may learn from: every feature present, enough samples per signal, and a window
    that overlaps no alarm span nor the margin before one."""
    ok = np.isfinite(rows.x).all(axis=1)
    if min_samples is not None:
        ok &= (np.nan_to_num(rows.x[:, _count_cols(rows.names)]) >= min_samples).all(axis=1)
    for start, end, _ in rows.spans:
        ok &= ~((rows.ends > start - margin_s) & (rows.ends - window_s < end))
    return ok


def typical_min_samples(rows: Rows, usable: np.ndarray) -> np.ndarray:
    """As `edgegw train` judges: a window with less than half the usual samples is too sparse."""
    cols = _count_cols(rows.names)
    counts = rows.x[usable][:, cols]
    typical = np.median(counts, axis=0) if len(counts) else np.zeros(len(cols))
    return np.maximum(3, np.ceil(0.5 * typical)).astype(int)


def _count_cols(names: list[str]) -> list[int]:
    return [i for i, n in enumerate(names) if n.endswith(".count")]


# ---------------------------------------------------------------- the guards


def alarm_share(hot: np.ndarray, ends: np.ndarray, delays: tuple[float, float]) -> float:
    """Share of rows in alarm after the model's delays, as the engine debounces them."""
    from edgegw.ml.train import _debounced_share

    return _debounced_share(hot, ends, delays[0], delays[1])


def trend(t: np.ndarray, v: np.ndarray, ref: np.ndarray, guard: TrendGuard) -> tuple[float, float]:
    """(drift, r2): how far a line through the binned medians of v over time t moves from the first
    to the last row, in robust spreads of ref, and how well the line fits the medians; no drift
    when the line ends inside the range ref spanned (1st to 99th percentile)."""
    if len(v) < guard.bins * 3 or len(ref) < 20:
        return 0.0, 0.0
    edges = np.linspace(t[0], t[-1], guard.bins + 1)
    b = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, guard.bins - 1)
    tm, vm = [], []
    for k in range(guard.bins):
        m = b == k
        if m.sum() >= 3:
            tm.append(float(np.median(t[m])))
            vm.append(float(np.median(v[m])))
    if len(tm) < 6:
        return 0.0, 0.0
    tt, vv = np.array(tm), np.array(vm)
    slope, icpt = np.polyfit(tt - tt[0], vv, 1)
    resid = vv - (slope * (tt - tt[0]) + icpt)
    ss = float(((vv - vv.mean()) ** 2).sum())
    r2 = 1.0 - float((resid**2).sum()) / ss if ss > 0 else 0.0
    q1, q3 = np.percentile(ref, [25, 75])
    spread = max((q3 - q1) / 1.349, float(np.std(ref)) * 0.1, 1e-9 * max(abs(float(np.median(ref))), 1.0))
    end = icpt + slope * (tt[-1] - tt[0])
    lo, hi = np.percentile(ref, [1, 99])
    if lo <= end <= hi:  # still where normal history went: a swing, not a creep toward a limit
        return 0.0, r2
    return float(slope * (t[-1] - t[0]) / spread), r2


@dataclass
class Creep:
    """What the trend guard found: why, and what must come back into range before a later retrain
    may absorb the stretch (`name`: a signal, or "" for the current model's score; `side` +1 up,
    -1 down; `bound`: the edge of the range the older normal rows spanned)."""

    why: str
    name: str
    side: int
    bound: float

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "side": self.side, "bound": self.bound, "why": self.why}


def trend_guard(
    rows: Rows, normal: np.ndarray, since: float, current: ModelSet | None, signals: Sequence[str], guard: TrendGuard
) -> Creep | None:
    """Why the normal rows after `since` (those a new model would newly absorb) must not become
    normal: a steady creep up of the current model's score, or of a signal's window mean, larger
    than `guard.limit` robust spreads of the rows before and out of their range; None if none."""
    if not guard.enabled:
        return None
    new = rows.ends[normal & (rows.ends > since)]
    if not len(new):
        return None
    # the whole new stretch, and its latest half: a creep that began late is steady there
    for start in (since, float(new[0] + (new[-1] - new[0]) / 2)):
        found = _creep(rows, normal & (rows.ends > start), normal & (rows.ends <= since), current, signals, guard)
        if found:
            return found
    return None


def _values(rows: Rows, mask: np.ndarray, name: str, current: ModelSet | None) -> np.ndarray:
    if not name:
        assert current is not None
        return np.asarray(current.score(_model_x(rows, current, mask)).anomaly)
    return rows.x[mask, rows.names.index(f"{name}.mean")]


def _creep(
    rows: Rows, recent: np.ndarray, ref: np.ndarray, current: ModelSet | None, signals: Sequence[str], guard: TrendGuard
) -> Creep | None:
    if recent.sum() < guard.bins * 3 or ref.sum() < 20:
        return None
    t = rows.ends[recent]
    for name in ([""] if current is not None else []) + list(signals):
        ref_v = _values(rows, ref, name, current)
        drift, r2 = trend(t, _values(rows, recent, name, current), ref_v, guard)
        if (drift >= guard.limit or (name and drift <= -guard.limit)) and r2 >= guard.steadiness:
            side = 1 if drift > 0 else -1
            what = f"{name} crept {'up' if side > 0 else 'down'}" if name else "the current model's score crept up"
            bound = float(np.percentile(ref_v, 99 if side > 0 else 1))
            return Creep(f"{what} {abs(drift):.1f} spreads (R2 {r2:.2f}) over the new rows", name, side, bound)
    return None


def still_beyond(rows: Rows, normal: np.ndarray, current: ModelSet | None, creep: dict[str, Any]) -> bool:
    """A creep the guard refused earlier has not come back: the latest tenth of the normal rows
    (their median) is still beyond the bound of the range normal history had spanned."""
    idx = np.flatnonzero(normal)
    if len(idx) < 10 or (not creep.get("name") and current is None):
        return False
    latest = np.zeros(len(normal), dtype=bool)
    latest[idx[-max(3, len(idx) // 10) :]] = True
    try:
        v = float(np.median(_values(rows, latest, str(creep.get("name", "")), current)))
    except ValueError:  # a signal no longer in the profile
        return False
    return (v - float(creep["bound"])) * int(creep["side"]) > 0


def _model_x(rows: Rows, model: ModelSet, mask: np.ndarray) -> np.ndarray:
    cols = [rows.names.index(n) for n in model.feature_names]
    return np.ascontiguousarray(rows.x[mask][:, cols], dtype=np.float32)


def caught_spans_missed(
    rows: Rows, current: ModelSet, cand_hot: Callable[[np.ndarray], np.ndarray], min_s: float = 0.0
) -> list[str]:
    """Model alarm spans (lasting min_s at least) the current model alarms on that the candidate
    would not alarm on at all."""
    missed = []
    finite = np.isfinite(rows.x).all(axis=1)
    for start, end, kind in rows.spans:
        if kind not in MODEL_KINDS or end - start < min_s:  # a blip is no fault the candidate must catch
            continue
        m = finite & (rows.ends >= start) & (rows.ends <= end)
        if not m.any():
            continue
        if current.score(_model_x(rows, current, m)).hot.any() and not cand_hot(rows.x[m]).any():
            missed.append(f"{kind} from {start:.0f} to {end:.0f}")
    return missed


def learned_range(model: ModelSet) -> dict[str, Any]:
    """{asset, first_end, last_end} of the rows a learned model was fitted on ({} for another model)."""
    meta = getattr(model, "meta", None)
    data = getattr(meta, "data", None) or {}
    got = data.get("learned", {})
    return got if isinstance(got, dict) else {}


# ---------------------------------------------------------------- the fit


@dataclass
class Candidate:
    meta: Any  # ModelMeta
    protos: dict[str, Any]
    hot: Callable[[np.ndarray], np.ndarray]  # rows in profile order -> anomaly condition
    delays: tuple[float, float]
    figures: dict[str, Any]


def fit_candidate(
    key: str, profile: Profile, lcfg: LearnConfig, rows: Rows, fit_mask: np.ndarray, min_samples: np.ndarray, seed: int = 0
) -> Candidate:
    """`edgegw train`'s anomaly fit and calibration on the rows of fit_mask (in time order: the
    latest share calibrates the threshold)."""
    from edgegw.ml import anomaly as am
    from edgegw.ml import train as tr
    from edgegw.ml.datasets import History

    signals = list(profile.signals)
    names = feature_names(signals)
    x = rows.x[fit_mask]
    ends = rows.ends[fit_mask]
    assets = np.array([key] * len(x), dtype=object)
    normal = np.ones(len(x), dtype=bool)
    held = am.calibration_split(assets, normal)
    if (~held).sum() < 50 or held.sum() < 20:
        raise tr.TrainError(f"too few normal windows ({len(x)}) to fit and calibrate")
    w = tr.Windows(x, ends, assets, np.array(["0"] * len(x), dtype=object), names, min_samples, 0, held, ~held, held)
    args = argparse.Namespace(
        features=",".join(lcfg.features),
        trees=100,
        seed=seed,
        envelope_margin=am.ENVELOPE_MARGIN,
        false_alarm_rate=lcfg.false_alarm_rate,
        on_hops=None,
        off_hops=None,
    )
    counts = x[:, _count_cols(names)]
    interval = profile.window_s / max(float(np.median(counts)), 1.0)
    digest = hashlib.sha256(np.ascontiguousarray(x).tobytes() + ends.tobytes()).hexdigest()
    h = History(signals, [key], ends, np.zeros(len(x), dtype=np.int64), np.empty((len(x), 0)), [], None, digest, ["history"])
    plan = tr.Plan(key, profile, tr._model_alarms(args, profile, interval, profile.model_alarms.model_dump()), h, interval, False)
    fit = tr._fit_anomaly(args, plan, w)
    # A few days of history have not shown the whole tail of normal: the threshold is at least the
    # highest score any row it learned from gets (those rows are normal by the exclusion rules).
    tail = fit.threshold
    fit.threshold = max(tail, float(fit.scores(x).max()))
    fit.held_rate = float((fit.cal_scores > fit.threshold).mean())
    meta, protos = tr._model(args, plan, w, fit, None)
    learned = {"asset": key, "first_end": float(ends[0]), "last_end": float(ends[-1])}
    meta = dataclasses.replace(meta, data={**(meta.data or {}), "learned": learned})
    delays = (plan.alarms["on_delay_s"], plan.alarms["off_delay_s"])

    def hot(rows_x: np.ndarray) -> np.ndarray:
        return np.asarray(fit.scores(rows_x) > fit.threshold)

    figures = {
        "threshold": round(fit.threshold, 4),
        "tail_threshold": round(tail, 4),
        "calibration_above": round(fit.held_rate, 4),
        "fit_rows": len(x),
    }
    return Candidate(meta, protos, hot, delays, figures)


# ---------------------------------------------------------------- one asset


def retrain_one(
    key: str,
    pname: str,
    profile: Profile,
    lcfg: LearnConfig,
    rows: Rows,
    store: ModelStore,
    seed: int = 0,
    now: float | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Fit, validate, guard and install one asset's model; the verdict (also kept as last.json)."""
    from edgegw.ml.train import TrainError

    t0 = time.monotonic()
    verdict: dict[str, Any] = {"asset": key, "profile": pname, "at": time.time() if now is None else now}
    current: ModelSet | None = None
    cur_path = store.current(key)
    if cur_path is not None:
        try:
            current = load_model_set(cur_path, pname, profile)
        except ModelError as e:
            verdict["current_error"] = str(e)
    verdict["previous"] = current.version if current is not None else ""
    try:
        verdict.update(_decide(key, pname, profile, lcfg, rows, store, current, seed, force))
    except TrainError as e:  # too little normal history: an armed asset keeps its model
        verdict.update(outcome="kept" if current is not None else "learning", reason=str(e))
    verdict["took_s"] = round(time.monotonic() - t0, 2)
    held = store.last(key).get("creep")
    if held and "creep" not in verdict and verdict.get("outcome") not in ("armed", "replaced"):
        verdict["creep"] = held  # a try with too little history does not forget a refused creep
    store.set_last(key, verdict)
    return verdict


def _decide(
    key: str,
    pname: str,
    profile: Profile,
    lcfg: LearnConfig,
    rows: Rows,
    store: ModelStore,
    current: ModelSet | None,
    seed: int,
    force: bool = False,
) -> dict[str, Any]:
    from edgegw.ml.train import TrainError

    usable = normal_mask(rows, profile.window_s, lcfg.margin_s)
    min_samples = typical_min_samples(rows, usable)
    normal = normal_mask(rows, profile.window_s, lcfg.margin_s, min_samples)
    idx = np.flatnonzero(normal)
    span_s = float(rows.ends[idx[-1]] - rows.ends[idx[0]]) if len(idx) else 0.0
    out: dict[str, Any] = {"normal_rows": len(idx), "normal_span_s": round(span_s, 1), "rows": len(rows.ends)}
    if len(idx) < lcfg.min_windows or span_s < lcfg.min_history_s * 0.98:
        raise TrainError(
            f"{len(idx)} normal windows over {span_s:.0f} s of event time; {lcfg.min_windows} over "
            f"{lcfg.min_history_s:.0f} s needed"
        )
    n_val = max(20, round(len(idx) * lcfg.validate_share))
    val = np.zeros(len(normal), dtype=bool)
    val[idx[-n_val:]] = True
    fit_mask = normal & ~val
    fit_idx = np.flatnonzero(fit_mask)
    if len(fit_idx) > MAX_FIT_ROWS:
        fit_mask = np.zeros(len(normal), dtype=bool)
        fit_mask[fit_idx[np.linspace(0, len(fit_idx) - 1, MAX_FIT_ROWS).round().astype(int)]] = True
    cand = fit_candidate(key, profile, lcfg, rows, fit_mask, min_samples, seed)
    out["version"] = cand.meta.version
    out.update(cand.figures)
    xv, tv = rows.x[val], rows.ends[val]
    cand_share = alarm_share(cand.hot(xv), tv, cand.delays)
    out["candidate_in_alarm"] = round(cand_share, 4)
    allowed = ALLOWED_ALARM_SHARE
    if current is not None:
        cur_share = alarm_share(current.score(_model_x(rows, current, val)).hot, tv, cand.delays)
        out["current_in_alarm"] = round(cur_share, 4)
        allowed = max(allowed, cur_share)
    if cand_share > allowed:
        return {
            **out,
            "outcome": "refused",
            "reason": f"in alarm {cand_share:.1%} of the held-out normal rows (at most {allowed:.1%})",
        }
    if current is not None:
        missed = caught_spans_missed(rows, current, cand.hot, CAUGHT_HOPS * profile.hop_s)
        if missed:
            return {
                **out,
                "outcome": "refused",
                "reason": f"misses alarm spans the current model caught: {', '.join(missed[:3])}",
            }
        learned = learned_range(current)
        since = float(learned.get("last_end", rows.ends[idx[-1]] - lcfg.every_s))
        if not force and lcfg.trend.enabled:
            prev = store.last(key)
            held = prev.get("creep")  # a refused creep holds until a model is accepted
            if isinstance(held, dict) and still_beyond(rows, normal, current, held):
                what = held.get("name") or "the current model's score"
                return {**out, "outcome": "refused", "creep": held, "reason": f"trend guard: {what} is still beyond "
                        f"the range normal history spanned since it was refused ({held.get('why', '')})"}  # fmt: skip
            creep = trend_guard(rows, normal, since, current, list(profile.signals), lcfg.trend)
            if creep is not None:
                return {**out, "outcome": "refused", "reason": f"trend guard: {creep.why}", "creep": creep.to_dict()}
        if cand.meta.version == current.version:
            return {**out, "outcome": "kept", "reason": "the same data and settings give the same model"}
    from edgegw.ml import export

    staged = store.staging(key, cand.meta.version)
    export.write_model_dir(staged, cand.meta, cand.protos)
    store.install(key, staged, cand.meta.version, lcfg.keep)
    return {**out, "outcome": "replaced" if current is not None else "armed"}


# ---------------------------------------------------------------- the command


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", required=True, help="the gateway's YAML config")
    p.add_argument(
        "--asset", action="append", default=[], help="asset(s) to retrain, comma-separated or repeated (default: all learned)"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed of the fit")
    p.add_argument("--no-limits", action="store_true", help="do not lower the priority or cap the memory")
    p.add_argument("--force", action="store_true", help="skip the trend guard: the recent history is the new normal")
    p.add_argument("--due", action="store_true", help="only assets without a model or whose model is learn.every_s old")


def limit_self(lcfg: LearnConfig) -> None:
    """Lower priority and cap memory: training must never starve the daemon beside it. Under
    systemd (edgegw-retrain.service) the unit sets them instead: its filter refuses these calls."""
    import resource

    if os.environ.get("EDGEGW_RETRAIN_LIMITS") == "systemd":
        return
    try:
        os.nice(max(0, lcfg.nice - os.nice(0)))
        if hasattr(os, "SCHED_IDLE"):
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except OSError:
        pass  # best effort: a container may refuse the scheduler change
    # RLIMIT_DATA (heap and private mappings), not RLIMIT_AS: shared libraries' address space
    # alone is past 400 MiB once scikit-learn and onnxruntime are mapped
    cap = lcfg.memory_mb * 2**20
    try:
        hard = resource.getrlimit(resource.RLIMIT_DATA)[1]
        if hard == resource.RLIM_INFINITY or hard > cap:
            resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))
    except (OSError, ValueError) as e:
        print(f"edgegw retrain: memory cap not set: {e}", file=sys.stderr)


def is_due(store: ModelStore, key: str, rows: Rows, lcfg: LearnConfig) -> bool:
    """For `--due` (the timer): a key without a model is always worth a try (the rules decide);
    one with a model once its history has grown `every_s` past what the model learned from."""
    path = store.current(key)
    if path is None or not len(rows.ends):
        return True
    from edgegw.engine.models import read_model_meta

    try:
        learned = (read_model_meta(path).data or {}).get("learned", {})
    except ModelError:
        return True
    return float(rows.ends[-1]) - float(learned.get("last_end", -math.inf)) >= lcfg.every_s


def targets(cfg: GatewayConfig, per: str, only: Sequence[str]) -> list[tuple[str, str, list[str]]]:
    """(key, profile, assets) to train: one per asset, or one per profile over its assets."""
    learned = cfg.learned_profiles
    out = []
    for pname in learned:
        members = [a.id for a in cfg.assets if a.profile == pname]
        if per == "profile":
            if not only or pname in only or set(members) & set(only):
                out.append((pname, pname, members))
        else:
            out += [(a, pname, [a]) for a in members if not only or a in only]
    return out


def main(args: argparse.Namespace) -> int:
    from edgegw.config import load_config
    from edgegw.preflight import state_dir_of

    try:  # not the daemon's whole preflight: the running daemon holds the history and queue locks
        cfg = load_config(args.config)
    except ConfigError as e:
        print(e, file=sys.stderr)
        return 78
    state_dir = state_dir_of(cfg)[0]
    lcfg = cfg.learning
    if lcfg is None or state_dir is None:
        print(f"edgegw retrain: {args.config}: no profile learns its model (model: learn) or no state directory", file=sys.stderr)
        return 78
    if not args.no_limits:
        limit_self(lcfg)
    import sklearn.ensemble  # noqa: F401 - its OpenMP runtime first, so the limit below applies to it
    from threadpoolctl import threadpool_limits

    only = [a for v in args.asset for a in v.split(",") if a]
    unknown = [a for a in only if a not in {x.id for x in cfg.assets} and a not in cfg.profiles]
    if unknown:
        print(f"edgegw retrain: unknown asset(s) {unknown}", file=sys.stderr)
        return 2
    store = ModelStore(state_dir)
    read = history_reader()
    rc = 0
    with threadpool_limits(limits=1):
        for key, pname, members in targets(cfg, lcfg.per, only):
            try:
                parts = [read(cfg, state_dir, a, pname) for a in members]
                rows = _merge(parts, key, cfg.profiles[pname].window_s, lcfg.margin_s)
                if args.due and not is_due(store, key, rows, lcfg):
                    continue
                verdict = retrain_one(key, pname, cfg.profiles[pname], lcfg, rows, store, args.seed, force=args.force)
            except (ConfigError, OSError, ValueError, MemoryError) as e:
                why = f"{type(e).__name__}: {e}"
                verdict = {"asset": key, "profile": pname, "outcome": "error", "reason": why, "at": time.time()}
                store.set_last(key, verdict)
                rc = 1
            print(json.dumps(verdict), flush=True)
    return rc


def _merge(parts: list[Rows], key: str, window_s: float, margin_s: float) -> Rows:
    """Several assets' rows as one key's (per profile): each asset's alarm spans blank its own
    rows first (NaN: never learned from), so one asset's alarm does not exclude the others."""
    if len(parts) == 1:
        return parts[0]
    xs = []
    for r in parts:
        x = r.x.copy()
        x[~normal_mask(Rows(r.asset, r.ends, np.zeros((len(r.ends), 0)), [], r.spans), window_s, margin_s)] = np.nan
        xs.append(x)
    order = np.argsort(np.concatenate([r.ends for r in parts]), kind="stable")
    return Rows(key, np.concatenate([r.ends for r in parts])[order], np.vstack(xs)[order], parts[0].names, [])


def history_reader() -> RowReader:
    """Feature rows and alarm spans of one asset from the historian (history/query.py)."""
    return read_history_rows


def read_history_rows(cfg: GatewayConfig, state_dir: Path, asset: str, pname: str) -> Rows:
    """The asset's sampled feature rows (history.features_every_hops) and every alarm span it had
    (history's journal: raised to cleared, acked or shelved meanwhile or not) over the feature
    rows' retention, in the profile's feature order."""
    from edgegw.history.query import HistoryUnavailable, features, query

    names = feature_names(list(cfg.profiles[pname].signals))
    until = time.time() + 86400.0  # rows stamped a little ahead of the clock count too
    since = 0.0
    try:
        ends, x, have = features(cfg, asset, since, until)
        trend = query(cfg, asset, since=since, until=until, tier="hour", points=10)
    except HistoryUnavailable:  # nothing kept yet: still learning
        return Rows(asset, np.zeros(0), np.zeros((0, len(names))), names, [])
    if not len(ends):
        return Rows(asset, np.zeros(0), np.zeros((0, len(names))), names, [])
    missing = [n for n in names if n not in have]
    if missing:
        raise ValueError(f"{asset}: history's feature rows lack {missing[:3]} (the profile changed?)")
    cols = [have.index(n) for n in names]
    spans = [(s.start, math.inf if s.end is None else s.end, s.kind) for s in trend.alarms]
    return Rows(asset, np.asarray(ends, dtype=float), np.asarray(x[:, cols], dtype=np.float64), names, spans)


__all__ = ["Rows", "alarm_share", "caught_spans_missed", "fit_candidate", "normal_mask", "retrain_one", "trend", "trend_guard"]
