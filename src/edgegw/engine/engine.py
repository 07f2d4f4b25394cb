"""Per-asset state, `ingest()`, hop scheduling, alarm lifecycle: the protocol-free core.

`ingest()` runs once per value and stays cheap: a ring-buffer append, the signal's threshold
rule (an alarm waits for no hop), rollup accumulators. When an asset crosses its next hop
boundary (event time) it is marked due; `run_hops()` then computes features for all due
assets of a profile in one matrix and scores them with the profile's models in one call.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from edgegw.config import GatewayConfig, Profile
from edgegw.engine.features import N_FEATURES, WindowMatrix, feature_names, row_features
from edgegw.engine.models import ModelSet, Verdict
from edgegw.engine.rules import LEVEL_NAMES, Debounce, ThresholdRule, severity_of
from edgegw.engine.window import RingBuffer
from edgegw.records import Alert, AlertState, Quality, Rollup, Severity, SignalStats, iso

AlertSink = Callable[[Alert], None]
_BAD = Quality.BAD  # per reading: looking a member up on an Enum class costs ~0.25 us in Python 3.11
HopObserver = Callable[[str, list[str], np.ndarray, np.ndarray, list[list[Verdict]] | None], None]


class SignalState:
    __slots__ = (
        "buf", "last_seen", "last_ts", "name", "quality", "range_hi", "range_lo", "rule",
        "stale", "stats", "threshold",
    )

    def __init__(self, name: str, spec: Any, capacity: int, now: float) -> None:
        self.name = name
        self.buf = RingBuffer(capacity)
        self.rule = ThresholdRule(spec)
        self.threshold = Debounce(spec.on_delay_s, spec.off_delay_s)
        self.quality = Debounce(spec.on_delay_s, spec.off_delay_s)
        lo_hi: tuple[float, float] = spec.range if spec.range else (-math.inf, math.inf)
        self.range_lo, self.range_hi = lo_hi
        self.last_ts = -math.inf
        self.last_seen = now  # wall clock; a never-seen signal goes stale after stale_after_s
        self.stale = False
        self.stats = SignalStats()


class AssetState:
    __slots__ = (
        "alarms_raised", "due", "first_ts", "hop_end", "id", "model_alarms", "next_hop", "profile",
        "profile_name", "scores", "signal_names", "signals",
    )

    def __init__(self, asset_id: str, profile_name: str, profile: Profile, now: float) -> None:
        self.id = asset_id
        self.profile_name = profile_name
        self.profile = profile
        cap = max(2, math.ceil(profile.window_s * profile.max_rate_hz * 1.25))
        self.signal_names = list(profile.signals)
        self.signals = {n: SignalState(n, s, cap, now) for n, s in profile.signals.items()}
        self.next_hop = -math.inf  # set by the first reading
        self.hop_end = 0.0
        self.first_ts = math.inf
        self.due = False
        ma = profile.model_alarms
        self.model_alarms: dict[str, Debounce] = {
            k: Debounce(ma.on_delay_s, ma.off_delay_s) for k in ("anomaly", "failure_risk")
        }
        self.scores: list[float] = []  # anomaly scores this rollup interval
        self.alarms_raised = 0


class Engine:
    """Turns readings into alerts and rollups. Not thread-safe; lives on the event loop."""

    def __init__(
        self,
        cfg: GatewayConfig,
        emit: AlertSink,
        models: dict[str, ModelSet] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._emit = emit
        self._clock = clock
        self.models: dict[str, ModelSet] = dict(models or {})
        now = clock()
        self.assets: dict[str, AssetState] = {
            a.id: AssetState(a.id, a.profile, cfg.profiles[a.profile], now) for a in cfg.assets
        }
        self.profiles = cfg.profiles
        self._due: list[AssetState] = []
        self._matrices: dict[str, WindowMatrix] = {}
        self.readings_in = 0
        self.rejected: dict[str, int] = {}
        self.hops = 0
        self.windows_skipped = 0
        self.hop_observer: HopObserver | None = None
        self.hop_seconds: list[float] = []  # recent hop durations, for self-metrics

    # ------------------------------------------------------------------ hot path

    def reject(self, reason: str, n: int = 1) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + n

    def ingest(self, asset: str, signal: str, ts: float, value: float, quality: Quality = Quality.GOOD) -> None:
        """Take one value. Never raises for bad data: it is counted and dropped."""
        a = self.assets.get(asset)
        if a is None:
            self.reject("unknown_asset")
            return
        s = a.signals.get(signal)
        if s is None:
            self.reject("unknown_signal")
            return
        if ts < s.last_ts:
            self.reject("out_of_order")
            return
        s.last_ts = ts
        s.last_seen = self._clock()
        if s.stale:
            s.stale = False
            self._transition(a, "stale", signal, 0, ts, {"signal": signal})
        bad = quality == _BAD or not (s.range_lo <= value <= s.range_hi)  # NaN fails both
        qd = s.quality
        q = qd.update(ts, 1 if bad else 0) if bad or qd.active or qd.since is not None else None  # else a no-op
        if q is not None:
            self._transition(
                a, "quality", signal, q, ts, {"signal": signal, "value": _num(value), "range": _range(s)}
            )
        if bad:
            self.reject("bad_value")
            return
        self.readings_in += 1
        s.buf.append(ts, value)
        s.stats.add(ts, value)
        rule = s.rule
        if rule.active:
            db = s.threshold
            prev = db.active
            lvl = db.update(ts, rule.target(value, prev))
            if lvl is not None:
                self._threshold_alert(a, s, lvl, prev, ts, value)
        if ts < a.first_ts:
            a.first_ts = ts
        if ts >= a.next_hop:
            if a.next_hop != -math.inf:
                a.hop_end = a.next_hop
                if not a.due:
                    a.due = True
                    self._due.append(a)
            hop = a.profile.hop_s
            a.next_hop = (math.floor(ts / hop) + 1) * hop

    # ------------------------------------------------------------------ alarms

    def _threshold_alert(self, a: AssetState, s: SignalState, lvl: int, prev: int, ts: float, value: float) -> None:
        shown = lvl or prev  # a clear reports the limit it fell back under
        ev: dict[str, Any] = {
            "signal": s.name, "value": value, "unit": s.rule.unit,
            "limit": s.rule.limit(shown), "level": LEVEL_NAMES[shown],
        }
        self._transition(a, "threshold", s.name, lvl, ts, ev)

    def _transition(self, a: AssetState, kind: str, source: str, level: int, ts: float, ev: dict[str, Any]) -> None:
        if level:
            severity = severity_of(level) if kind == "threshold" else _KIND_SEVERITY.get(kind, Severity.WARNING)
            if kind == "threshold":
                msg = f"{source} {ev['value']:.4g} {'above' if level > 0 else 'below'} {ev['level']} {ev['limit']:.4g}"
            else:
                msg = _message(kind, source, ev)
            a.alarms_raised += 1
            alert = Alert(a.id, kind, source, AlertState.RAISED, severity, ts, ev, msg)
        else:
            alert = Alert(a.id, kind, source, AlertState.CLEARED, Severity.INFO, ts, ev, f"{kind} {source} cleared")
        self._emit(alert)

    def tick(self, now: float | None = None) -> None:
        """Wall-clock checks (stale signals). Call about once a second."""
        now = self._clock() if now is None else now
        for a in self.assets.values():
            stale_after = a.profile.stale_after_s
            for s in a.signals.values():
                if not s.stale and now - s.last_seen > stale_after:
                    s.stale = True
                    ev = {"signal": s.name, "silent_s": round(now - s.last_seen, 1), "limit": stale_after}
                    self._transition(a, "stale", s.name, 1, now, ev)

    def restore(self, asset: str, kind: str, source: str, level: int = 1) -> bool:
        """Seed an alarm that was active before a restart (from retained state), so it clears normally."""
        a = self.assets.get(asset)
        if a is None:
            return False
        if kind in ("threshold", "quality", "stale"):
            s = a.signals.get(source)
            if s is None:
                return False
            if kind == "threshold":
                s.threshold.active = level
            elif kind == "quality":
                s.quality.active = 1
            else:
                s.stale = True
            return True
        db = a.model_alarms.get(kind)
        if db is None:
            return False
        db.active = 1
        return True

    # ------------------------------------------------------------------ hops

    @property
    def due(self) -> bool:
        return bool(self._due)

    def run_hops(self) -> None:
        """Features and models for every due asset, batched per profile."""
        if not self._due:
            return
        due, self._due = self._due, []
        by_profile: dict[str, list[AssetState]] = {}
        for a in due:
            a.due = False
            by_profile.setdefault(a.profile_name, []).append(a)
        for pname, assets in by_profile.items():
            t0 = time.perf_counter()
            self._hop(pname, assets)
            self.hop_seconds.append(time.perf_counter() - t0)
            if len(self.hop_seconds) > 1024:
                del self.hop_seconds[:512]

    def _hop(self, pname: str, assets: list[AssetState]) -> None:
        profile = self.profiles[pname]
        names = assets[0].signal_names
        ns = len(names)
        length = assets[0].signals[names[0]].buf.capacity
        m = self._matrices.get(pname)
        if m is None:
            m = self._matrices[pname] = WindowMatrix(len(assets) * ns, length)
        m.ensure(len(assets) * ns, length)
        ends = np.empty(len(assets))
        for i, a in enumerate(assets):
            t_end = a.hop_end
            ends[i] = t_end
            t_start = t_end - profile.window_s
            for j, sname in enumerate(names):
                ts, vals = a.signals[sname].buf.window(t_start, t_end)
                m.put(i * ns + j, ts, vals)
        rows = len(assets) * ns
        x = row_features(m.ts[:rows], m.x[:rows]).reshape(len(assets), ns * N_FEATURES)
        self.hops += len(assets)
        model = self.models.get(pname)
        verdicts: list[list[Verdict]] | None = None
        if model is not None:
            warm = np.array([e - a.first_ts >= profile.window_s - profile.hop_s for a, e in zip(assets, ends, strict=True)])
            ok = warm & ~np.isnan(x).any(axis=1)
            self.windows_skipped += int((~ok).sum())
            verdicts = [[] for _ in assets]
            idx = np.flatnonzero(ok)
            if len(idx):
                scored = model.evaluate(x[idx].astype(np.float32))
                for k, row in zip(idx, scored, strict=True):
                    verdicts[k] = row
                    self._apply_verdicts(assets[k], float(ends[k]), row, model)
        if self.hop_observer is not None:
            self.hop_observer(pname, [a.id for a in assets], ends, x, verdicts)

    def _apply_verdicts(self, a: AssetState, ts: float, row: list[Verdict], model: ModelSet) -> None:
        for v in row:
            if v.kind == "anomaly":
                a.scores.append(v.score)
            db = a.model_alarms.get(v.kind)
            if db is None:
                continue
            lvl = db.update(ts, 1 if v.condition else 0)
            if lvl is None:
                continue
            ev = {"score": v.score, "threshold": v.threshold, "model": model.name, "model_version": model.version}
            ev.update(v.evidence)
            if lvl:
                alert = Alert(a.id, v.kind, model.name, AlertState.RAISED, v.severity, ts, ev, _message(v.kind, model.name, ev))
                a.alarms_raised += 1
            else:
                alert = Alert(a.id, v.kind, model.name, AlertState.CLEARED, Severity.INFO, ts, ev, f"{v.kind} cleared")
            self._emit(alert)

    def feature_names(self, profile: str) -> list[str]:
        return feature_names(list(self.profiles[profile].signals))

    # ------------------------------------------------------------------ rollups

    def take_rollups(self, start: float, end: float) -> list[Rollup]:
        """Aggregates since the last call, one Rollup per asset; accumulators start afresh."""
        out = []
        for a in self.assets.values():
            stats = {}
            for s in a.signals.values():
                stats[s.name], s.stats = s.stats, SignalStats()
            scores, a.scores = a.scores, []
            raised, a.alarms_raised = a.alarms_raised, 0
            out.append(
                Rollup(
                    a.id, start, end, stats,
                    anomaly_max=max(scores) if scores else None,
                    anomaly_mean=sum(scores) / len(scores) if scores else None,
                    alarms_raised=raised,
                )
            )
        return out

    def ingest_many(self, readings: Iterable[tuple[str, str, float, float]]) -> None:
        for asset, signal, ts, value in readings:
            self.ingest(asset, signal, ts, value)


_KIND_SEVERITY = {
    "stale": Severity.WARNING,
    "quality": Severity.WARNING,
    "anomaly": Severity.WARNING,
    "failure_risk": Severity.CRITICAL,
}


def _message(kind: str, source: str, ev: dict[str, Any]) -> str:
    if kind == "stale":
        return f"{source} silent for {ev.get('silent_s')} s"
    if kind == "quality":
        return f"{source} readings are bad (value {ev.get('value')}, range {ev.get('range')})"
    if kind == "anomaly":
        top = ", ".join(str(c.get("feature", c)) if isinstance(c, dict) else str(c) for c in ev.get("top", [])[:3])
        score = f"score {ev.get('score', 0):.3f} > {ev.get('threshold', 0):.3f}"
        return f"unlike normal operation ({score}){': ' + top if top else ''}"
    if kind == "failure_risk":
        return f"failure risk {ev.get('score', 0):.2f}: {ev.get('class', '?')}"
    return f"{kind} {source}"


def _num(v: float) -> float | None:
    return v if math.isfinite(v) else None


def _range(s: SignalState) -> list[float] | None:
    return None if s.range_lo == -math.inf and s.range_hi == math.inf else [s.range_lo, s.range_hi]


__all__ = ["AlertSink", "Engine", "iso"]
