"""When will a signal reach its limit: a robust trend (Theil-Sen: the median of all pairwise
slopes) of the signal's interval means, with its confidence interval from Kendall's rank
statistic, projected to the hi or lo limit. A slope whose interval holds zero says nothing:
noise never forecasts. Pure numpy on a block of series at once (one row per asset and signal).

`Forecaster` keeps the points: each rollup interval's mean per signal with a limit, the last
`points` of them per row; `evaluate` runs at most once per `every_s`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgegw.config import GatewayConfig
from edgegw.config.forecast import ForecastSpec
from edgegw.config.pump import DERIVED, pumps_of
from edgegw.engine.rules import Debounce
from edgegw.records import SignalStats

Alarm = Callable[[str, str, str, int, float, dict[str, Any], str], None]  # asset, kind, source, level, ts, ev, message

Z = {0.9: 1.645, 0.95: 1.96, 0.99: 2.576, 0.999: 3.291}


def theil_sen(t: np.ndarray, y: np.ndarray, confidence: float = 0.99) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per row of t, y (shape (m, n); NaN marks a missing point): (slope, slope_lo, slope_hi,
    intercept) with slope_lo..slope_hi the two-sided `confidence` interval of Sen (1968): the
    pairwise slopes ranked, C = z sqrt(n(n-1)(2n+5)/18), bounds at ranks (N - C)/2 and (N + C)/2
    of the N pairs. Rows with fewer than 3 points are NaN."""
    t = np.atleast_2d(np.asarray(t, dtype=float))
    y = np.atleast_2d(np.asarray(y, dtype=float))
    m, n = y.shape
    s = np.empty((m, n * (n - 1) // 2))
    o = 0
    with np.errstate(divide="ignore", invalid="ignore"):  # the pairs lag by lag: contiguous slices, fast
        for d in range(1, n):
            v = s[:, o : o + n - d]
            np.subtract(y[:, d:], y[:, :-d], out=v)
            v /= t[:, d:] - t[:, :-d]
            o += n - d
    s[~np.isfinite(s)] = np.nan
    s = s.astype(np.float32)  # ranks only: single precision sorts four times faster
    pts = np.sum(~np.isnan(y) & ~np.isnan(t), axis=1)
    c = Z.get(confidence, 2.576) * np.sqrt(pts * (pts - 1) * (2 * pts + 5) / 18.0)
    rows = np.arange(m)
    s.sort(axis=1)  # NaN last
    k = np.sum(~np.isnan(s), axis=1)  # valid pairs
    kk = np.maximum(k, 1)
    med = 0.5 * (s[rows, (kk - 1) // 2].astype(float) + s[rows, kk // 2])
    lo_r, hi_r = _bounds(k, c)
    lo = np.where(k - c >= 2, s[rows, lo_r].astype(float), -np.inf)  # too few pairs: an unbounded interval
    hi = np.where(k - c >= 2, s[rows, hi_r].astype(float), np.inf)
    r = y - med[:, None] * t
    if not np.isnan(r).any():
        icpt = np.median(r, axis=1)
    else:
        with warnings.catch_warnings():  # rows without points are NaN, as they should
            warnings.simplefilter("ignore", RuntimeWarning)
            icpt = np.nanmedian(r, axis=1)
    bad = pts < 3
    for a in (med, lo, hi, icpt):
        a[bad] = np.nan
    return med, lo, hi, icpt


def _bounds(k: Any, c: Any) -> tuple[Any, Any]:
    """0-based indices of the interval's bounds among k ranked slopes: ranks (k - C)/2 and (k + C)/2 + 1."""
    top = np.maximum(np.asarray(k) - 1, 0)
    lo = np.clip(np.floor((np.asarray(k) - c) / 2.0).astype(int) - 1, 0, top)
    hi = np.clip(np.ceil((np.asarray(k) + c) / 2.0).astype(int), 0, top)
    return lo, hi


def time_to_limit(level: Any, slope: Any, lo: Any, hi: Any, limit: Any, upward: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(expected, earliest, latest) time for a level moving at slope (interval lo..hi, per unit
    of time) to reach limit, upward or downward; NaN where the slope is not significant in that
    direction (its interval holds zero or points away) or the level is already past the limit."""
    level, slope, lo, hi, limit = (np.asarray(x, dtype=float) for x in (level, slope, lo, hi, limit))
    up = np.asarray(upward, dtype=bool)
    gap = np.where(up, limit - level, level - limit)
    fast = np.where(up, hi, -lo)  # the steepest slope toward the limit
    slow = np.where(up, lo, -hi)  # the gentlest
    mid = np.where(up, slope, -slope)
    ok = (slow > 0) & (gap > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.where(ok, gap / mid, np.nan)
        early = np.where(ok, gap / fast, np.nan)
        late = np.where(ok, gap / slow, np.nan)
    return eta, early, late


@dataclass(slots=True)
class Forecast:
    """One signal's projection: it reaches `limit` (its `level` name) in `eta_s` (early..late)."""

    signal: str
    level: str
    limit: float
    unit: str | None
    value: float  # the trend's value now
    slope_per_h: float
    eta_s: float
    early_s: float
    late_s: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "signal": self.signal,
            "level": self.level,
            "limit": self.limit,
            "unit": self.unit,
            "value": round(self.value, 6),
            "slope_per_h": round(self.slope_per_h, 6),
            "eta_h": round(self.eta_s / 3600, 3),
            "early_h": round(self.early_s / 3600, 3),
            "late_h": round(self.late_s / 3600, 3),
        }


class Forecaster:
    """The points and verdicts of one profile's signals with a limit: rows (asset, signal)."""

    def __init__(
        self, rows: list[tuple[str, str, float, str, bool, str | None]], points: int, min_points: int, confidence: float
    ) -> None:
        """rows: (asset, signal, limit, level name, upward, unit)."""
        self.rows = rows
        self.n = points
        self.min_points = min_points
        self.confidence = confidence
        m = len(rows)
        self.t = np.full((m, points), np.nan)
        self.y = np.full((m, points), np.nan)
        self.count = np.zeros(m, dtype=int)
        self.limit = np.array([r[2] for r in rows], dtype=float)
        self.upward = np.array([r[4] for r in rows], dtype=bool)
        self.last_eval = -math.inf

    def add(self, k: int, ts: float, mean: float) -> None:
        """One trend point of row k: a mean at (event) time ts."""
        c = self.count[k] % self.n
        self.t[k, c] = ts
        self.y[k, c] = mean
        self.count[k] += 1

    def evaluate(self, now: float) -> list[Forecast | None]:
        """Every row's forecast (None: no significant trend toward its limit, too few points)."""
        self.last_eval = now
        t0 = np.nanmax(self.t, axis=1, initial=-np.inf)
        t = (self.t - t0[:, None]) / 3600.0  # hours before the newest point
        slope, lo, hi, icpt = theil_sen(t, self.y, self.confidence)
        eta, early, late = time_to_limit(icpt, slope, lo, hi, self.limit, self.upward)
        out: list[Forecast | None] = []
        for k, (_, sig, lim, name, _, unit) in enumerate(self.rows):
            if min(self.count[k], self.n) < self.min_points or not math.isfinite(eta[k]):
                out.append(None)
                continue
            ahead = now - t0[k]  # the newest point is this old already
            out.append(
                Forecast(
                    sig,
                    name,
                    lim,
                    unit,
                    float(icpt[k] + slope[k] * ahead / 3600.0),
                    float(slope[k]),
                    max(float(eta[k]) * 3600.0 - ahead, 0.0),
                    max(float(early[k]) * 3600.0 - ahead, 0.0),
                    max(float(late[k]) * 3600.0 - ahead, 0.0),
                )
            )
        return out


def words(asset: str, f: Forecast) -> str:
    """ "pump-2 vibration reaches hi 7.1 mm/s in about 36 h (28-50 h)"."""
    unit = f" {f.unit}" if f.unit else ""
    return f"{asset} {f.signal} reaches {f.level} {f.limit:g}{unit} in about {_span(f.eta_s)} ({_range(f.early_s, f.late_s)})"


def _span(s: float) -> str:
    if s < 5400:
        return f"{s / 60:.0f} min"
    if s < 172800:
        return f"{s / 3600:.0f} h"
    return f"{s / 86400:.1f} d"


def _range(a: float, b: float) -> str:
    if b < 5400:
        return f"{a / 60:.0f}–{b / 60:.0f} min"
    if b < 172800:
        return f"{a / 3600:.0f}–{b / 3600:.0f} h"
    return f"{a / 86400:.1f}–{b / 86400:.1f} d"


class ProfileForecasts:
    """A profile's forecasts: rollup means folded into one point per `resolution_s` per row, an
    evaluation at most every `every_s`, the latest verdict per asset (for its rollups) and a
    `forecast` alarm per row while its limit is within the horizon (held two evaluations)."""

    def __init__(self, spec: ForecastSpec, rows: list[tuple[str, str, float, str, bool, str | None]]) -> None:
        self.spec = spec
        self.fc = Forecaster(rows, spec.points, spec.min_points, spec.confidence)
        self.rows = rows
        self.by_asset: dict[str, list[tuple[int, str]]] = {}
        for k, r in enumerate(rows):
            self.by_asset.setdefault(r[0], []).append((k, r[1]))
        m = len(rows)
        self.bucket = np.full(m, np.nan)  # the resolution bucket being filled
        self.acc = np.zeros((3, m))  # sum of means x counts, counts, sum of times x counts
        self.alarms = [Debounce(2 * spec.every_s - 1.0, 2 * spec.every_s - 1.0) for _ in rows]
        self.latest: dict[str, list[dict[str, Any]]] = {}

    def add_rollup(self, asset: str, stats: dict[str, SignalStats]) -> None:
        """An asset's interval stats (measured and derived signals) into its rows' points."""
        res = self.spec.resolution_s
        for k, name in self.by_asset.get(asset, ()):
            st = stats.get(name)
            if st is None or not st.count:
                continue
            ts = 0.5 * (st.first_ts + st.last_ts)
            b = math.floor(ts / res)
            if b != self.bucket[k] and self.acc[1, k]:
                self.fc.add(k, self.acc[2, k] / self.acc[1, k], self.acc[0, k] / self.acc[1, k])
                self.acc[:, k] = 0.0
            self.bucket[k] = b
            self.acc[0, k] += st.total
            self.acc[1, k] += st.count
            self.acc[2, k] += ts * st.count

    def run(self, now: float, alarm: Alarm) -> None:
        """Evaluate if `every_s` has passed since the last time; raise or clear forecast alarms."""
        if now - self.fc.last_eval < self.spec.every_s:
            return
        horizon = self.spec.horizon_h * 3600.0
        latest: dict[str, list[dict[str, Any]]] = {}
        for (asset, sig, _, _, _, _), f, db in zip(self.rows, self.fc.evaluate(now), self.alarms, strict=True):
            if f is not None:
                latest.setdefault(asset, []).append(f.to_dict())
            near = f is not None and f.eta_s <= horizon
            lvl = db.update(now, int(near))
            if lvl is None:
                continue
            if lvl and f is not None:
                alarm(asset, "forecast", sig, 1, now, f.to_dict(), words(asset, f))
            elif not lvl:
                alarm(
                    asset,
                    "forecast",
                    sig,
                    0,
                    now,
                    {"signal": sig},
                    f"{asset} {sig}: no longer heading for its limit within {_span(horizon)}",
                )
        self.latest = latest

    def seed(self, asset: str, signal: str, times: np.ndarray, means: np.ndarray) -> int:
        """Points kept before a restart (e.g. history's minute means), oldest first, folded into
        this row's resolution; returns the points taken."""
        taken = 0
        res = self.spec.resolution_s
        for k, (a, sig, *_) in enumerate(self.rows):
            if a != asset or sig != signal:
                continue
            ok = np.isfinite(times) & np.isfinite(means)
            t, y = times[ok], means[ok]
            if not len(t):
                return 0
            b = np.floor(t / res)
            for u in np.unique(b)[-self.fc.n :]:
                sel = b == u
                self.fc.add(k, float(t[sel].mean()), float(y[sel].mean()))
                taken += 1
        return taken

    def of(self, asset: str) -> list[dict[str, Any]] | None:
        return self.latest.get(asset)

    def restore_alarm(self, asset: str, signal: str) -> bool:
        for k, r in enumerate(self.rows):
            if r[0] == asset and r[1] == signal:
                self.alarms[k].active = 1
                return True
        return False


def forecasts(cfg: GatewayConfig, members: dict[str, list[str]]) -> dict[str, ProfileForecasts]:
    """A ProfileForecasts per profile with `forecast:`; a row per asset and signal with a limit
    (hi or hihi upward, lo or lolo downward; a derived pump signal's limits too)."""
    pumps = pumps_of(cfg.assets, cfg.profiles)
    out = {}
    for name, ids in members.items():
        p = cfg.profiles[name]
        if p.forecast is None:
            continue
        rows: list[tuple[str, str, float, str, bool, str | None]] = []
        for aid in ids:
            limits: dict[str, Any] = dict(p.signals)
            pump = pumps.get(aid)
            if pump is not None:
                limits.update(pump.limits)
            for sig, spec in limits.items():
                if p.forecast.signals is not None and sig not in p.forecast.signals:
                    continue
                unit = spec.unit if sig in p.signals else DERIVED.get(sig)
                hi = spec.hi if spec.hi is not None else spec.hihi
                lo = spec.lo if spec.lo is not None else spec.lolo
                if hi is not None:
                    rows.append((aid, sig, float(hi), "hi" if spec.hi is not None else "hihi", True, unit))
                if lo is not None:
                    rows.append((aid, sig, float(lo), "lo" if spec.lo is not None else "lolo", False, unit))
        if rows:
            out[name] = ProfileForecasts(p.forecast, rows)
    return out
