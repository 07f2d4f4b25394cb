"""`edgegw backtest --learn`: replay a history as a gateway that learns would have lived it.

Each asset starts with no model (or the given one) and runs thresholds only; its feature rows are
kept as the historian keeps them (every `history.features_every_hops` hop), its alarms as the
journal would; when the commissioning rule is met (`--learn-after` of event time of normal rows and
`learn.min_windows` of them) the retrain rules of `edgegw retrain` (ml/retrain.py: exclusions,
fit, validation, trend guard) arm a model for it, and every `--learn-every` after that they may
replace it. The engine judges each armed asset with its own model, as in the daemon.
"""

from __future__ import annotations

import argparse
import math
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgegw.config.learn import LearnConfig
from edgegw.engine.engine import Engine
from edgegw.engine.modelmeta import MODEL_KINDS
from edgegw.engine.models import load_model_set
from edgegw.learn.store import ModelStore
from edgegw.ml.backtest import Result, Setup
from edgegw.ml.replay import replay
from edgegw.ml.retrain import Rows, retrain_one
from edgegw.records import Alert, AlertState, HopResult

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def duration(text: str) -> float:
    """'90s', '30m', '12h', '3d', '1w' or plain seconds."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([smhdw]?)\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r}: a duration like 90s, 30m, 12h, 3d or 1w")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


def configure(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("learning replay (needs the train extra)")
    g.add_argument("--learn", action="store_true", help="start with no model and learn as a gateway with `learn:` would")
    g.add_argument(
        "--learn-after",
        type=duration,
        metavar="DUR",
        help="commissioning: normal history needed first (default learn.min_history_s)",
    )
    g.add_argument("--learn-every", type=duration, metavar="DUR", help="retrain period (default learn.every_s)")
    g.add_argument(
        "--learn-features", metavar="LIST", help="comma-separated features a learned model reads (default learn.features)"
    )
    g.add_argument(
        "--learn-every-hops",
        type=int,
        metavar="N",
        help="keep a feature row every N hops (default history.features_every_hops with -c, else 1)",
    )


@dataclass
class Learning:
    """What the replay learned: one line per retrain."""

    log: list[dict[str, Any]] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"learning: {len(self.log)} retrain(s)"]
        for v in self.log[:30]:
            why = f": {v['reason']}" if v.get("reason") else ""
            out.append(f"  {v['iso']} {v['asset']}: {v['outcome']}{' ' + v['version'] if v.get('version') else ''}{why}")
        if len(self.log) > 30:
            out.append(f"  ... {len(self.log) - 30} more")
        return out


class _Asset:
    def __init__(self) -> None:
        self.ends: list[float] = []
        self.x: list[np.ndarray] = []
        self.hops = 0
        self.spans: list[tuple[float, float, str]] = []
        self.open: dict[tuple[str, str], float] = {}
        self.first_normal = math.inf
        self.normal = 0
        self.learned_until = -math.inf
        self.next_try = -math.inf
        self.armed = False


def learn_run(setup: Setup, lcfg: LearnConfig, every_hops: int, start_model: str | None = None) -> tuple[Result, Learning]:
    """Replay setup.history, learning per asset; the per-row result as `backtest.run` gives it."""
    from edgegw.ml.backtest import Result

    h = setup.history
    n = len(h)
    pname = setup.profile_name
    profile = setup.cfg.profiles[pname]
    res = Result(
        score=np.full(n, np.nan),
        anomaly=np.zeros(n, dtype=np.int8),
        failure_p=np.full(n, np.nan),
        failure=np.zeros(n, dtype=np.int8),
        threshold=np.zeros(n, dtype=np.int8),
    )
    ids = setup.asset_ids
    assets = {a: _Asset() for a in set(ids)}
    state = {a: {"anomaly": 0, "score": math.nan, "thr": set()} for a in assets}
    learning = Learning()
    tmp = tempfile.TemporaryDirectory(prefix="edgegw-learn-")
    store = ModelStore(tmp.name)

    def emit(alert: Alert) -> None:
        res.alerts.append(alert)
        st, a = state[alert.asset], assets[alert.asset]
        on = alert.state == AlertState.RAISED
        k = (alert.kind, alert.source)
        if on and k not in a.open:
            a.open[k] = alert.ts
        elif not on and k in a.open:
            a.spans.append((a.open.pop(k), alert.ts, alert.kind))
        if alert.kind in MODEL_KINDS:
            st["anomaly"] = 1 if on else 0
        elif alert.kind == "threshold":
            thr: set[str] = st["thr"]  # type: ignore[assignment]
            (thr.add if on else thr.discard)(alert.source)

    def on_hop(r: HopResult) -> None:
        res.hops += len(r.assets)
        for i, aid in enumerate(r.assets):
            a = assets[aid]
            if r.anomaly is not None and r.judged is not None and r.judged[i]:
                state[aid]["score"] = float(r.anomaly[i])
            a.hops += 1
            if a.hops % every_hops:
                continue
            a.ends.append(float(r.ends[i]))
            a.x.append(r.features[i].astype(np.float64))
            if not a.open and not np.isnan(r.features[i]).any():
                a.normal += 1
                a.first_normal = min(a.first_normal, float(r.ends[i]))

    engine = Engine(setup.cfg, emit, models={}, clock=lambda: 0.0)
    engine.on_hop = on_hop
    if start_model:
        for aid in assets:
            staged = store.staging(aid, "given")
            import shutil

            shutil.rmtree(staged)
            shutil.copytree(start_model, staged)
            store.install(aid, staged, Path(start_model).name or "given", lcfg.keep)
            engine.asset_models[aid] = load_model_set(store.current(aid) or start_model, pname, profile)
            assets[aid].armed = True
            assets[aid].learned_until = h.ts[0]
    names = engine.feature_names(pname)
    aidx = h.asset.tolist()
    ts = h.ts.tolist()

    def maybe_learn(aid: str, t: float) -> None:
        a = assets[aid]
        if t < a.next_try or not a.ends:
            return
        if a.armed:
            due = t - a.learned_until >= lcfg.every_s
        else:
            due = a.normal >= lcfg.min_windows and a.ends[-1] - a.first_normal >= lcfg.min_history_s
        if not due:
            return
        spans = a.spans + [(s, math.inf, k[0]) for k, s in a.open.items()]
        rows = Rows(aid, np.array(a.ends), np.vstack(a.x), names, spans)
        v = retrain_one(aid, pname, profile, lcfg, rows, store, now=t)
        v["iso"] = _iso(t)
        learning.log.append(v)
        if v["outcome"] in ("armed", "replaced"):
            path = store.current(aid)
            assert path is not None
            engine.asset_models[aid] = load_model_set(path, pname, profile)
            a.armed = True
            a.learned_until = t
            a.next_try = -math.inf
        elif a.armed:  # refused or kept: the next try after another period
            a.learned_until = t
        else:  # still learning: try again after a tenth of the commissioning span
            a.next_try = t + max(lcfg.min_history_s / 10, profile.hop_s)

    score, anomaly, threshold = res.score, res.anomaly, res.threshold

    def after_row(i: int) -> None:
        aid = ids[aidx[i]]
        st = state[aid]
        score[i] = st["score"]
        anomaly[i] = st["anomaly"]
        threshold[i] = 1 if st["thr"] else 0
        maybe_learn(aid, ts[i])

    replay(h, engine, ids, after_row)
    res.skipped = engine.windows_skipped
    tmp.cleanup()
    return res, learning


def derived_setup(args: argparse.Namespace) -> Setup:
    """Without -c or --model: every numeric column a signal, window and hop from the sampling
    interval, as `edgegw train` derives them."""
    from edgegw.config import Profile
    from edgegw.ml import train as tr
    from edgegw.ml.datasets import read_history
    from edgegw.ml.replay import profile_config

    h = read_history(
        args.data,
        delimiter=args.delimiter,
        timestamp_column=args.timestamp_column,
        timestamp_format=args.timestamp_format,
        timestamp_unit=args.timestamp_unit,
        label_column=args.label_column,
    )
    window_s, hop_s = tr.derived_window(tr.sampling_interval(h))
    profile = Profile(window_s=window_s, hop_s=hop_s, signals={s: {} for s in h.signals})
    ids = list(h.assets)
    return Setup(profile_config("model", profile, ids), h, ids, {}, "model")


def main(args: argparse.Namespace) -> int:
    """`edgegw backtest --learn`: the replay, its CSV and summary, and what it learned."""
    import sys
    import time

    from edgegw.config import ConfigError
    from edgegw.ml import backtest as bt
    from edgegw.ml.datasets import DataError
    from edgegw.ml.train import TrainError

    try:
        if args.config:
            model, args.model = args.model, None
            setup = bt._setup(args)
            args.model = model
            setup.models = {}
        else:
            setup = derived_setup(args)
    except ConfigError as e:
        return bt._fail(str(e), 78)
    except (DataError, bt.ModelError, bt.BacktestError, TrainError) as e:
        return bt._fail(str(e))
    base = setup.cfg.learn or LearnConfig()
    over: dict[str, Any] = {}
    if args.learn_after is not None:
        over["min_history_s"] = args.learn_after
    if args.learn_every is not None:
        over["every_s"] = max(60.0, args.learn_every)
    if args.learn_features:
        over["features"] = [f.strip() for f in args.learn_features.split(",") if f.strip()]
    try:
        lcfg = LearnConfig.model_validate({**base.model_dump(), **over})
    except ValueError as e:
        return bt._fail(f"--learn options: {e}", 2)
    every_hops = args.learn_every_hops or (setup.cfg.history.features_every_hops if args.config else 1) or 1
    t0 = time.monotonic()
    import sklearn.ensemble  # noqa: F401 - its OpenMP runtime first, so the limit below applies to it
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        res, learning = learn_run(setup, lcfg, every_hops, args.model)
    took = time.monotonic() - t0
    bt.write_csv(Path(args.out), setup.history, res)
    print(bt.summary(setup, res, took))
    print("\n".join(learning.lines()), file=sys.stdout)
    return 0


def _iso(t: float) -> str:
    from edgegw.records import iso

    return iso(t)


__all__ = ["Learning", "configure", "duration", "learn_run"]
