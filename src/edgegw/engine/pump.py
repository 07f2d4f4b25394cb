"""Pump performance from the signals a pump already reports: head, hydraulic and electrical power,
efficiency, specific energy, operating point against the best-efficiency flow (BEP), NPSH margin,
head and efficiency deficit against the maker's curve; energy, run hours and starts; the pump
alarms (operating_region, npsh, performance, dry_run).

The formulas are pure functions on numpy arrays (units in their names: bar gauge, m3/h, m, kW,
degC). `PumpBank` runs them once per profile per hop on the hop bucket's means of the assets that
have a pump description; its results are signals of their own (rollup stats, limits, alarms
with the same `Debounce` as every rule), stamped at the window end. No hop re-enters the engine.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from edgegw.config import GatewayConfig
from edgegw.config.pump import DERIVED, PumpSpec, pumps_of
from edgegw.engine import window
from edgegw.engine.rules import LEVEL_NAMES, Debounce, DebounceSet, ThresholdRule
from edgegw.records import HopResult, SignalStats

G = 9.80665  # m/s2, standard gravity
SQRT3 = math.sqrt(3.0)
BAR = 1e5  # Pa

# IAPWS-IF97 region 4, the saturation line's coefficients n1..n10 (IAPWS R7-97(2012), Table 34).
_N = (
    0.11670521452767e4,
    -0.72421316703206e6,
    -0.17073846940092e2,
    0.12020824702470e5,
    -0.32325550322333e7,
    0.14915108613530e2,
    -0.48232657361591e4,
    0.40511340542057e6,
    -0.23855557567849,
    0.65017534844798e3,
)


# ---------------------------------------------------------------------- formulas


def vapour_pressure_bar(t_c: Any) -> Any:
    """Water's saturation pressure at t_c degC, bar absolute: IAPWS-IF97 equation 30 (valid from
    0.01 to 373.946 degC; outside it the temperature is clipped to that range)."""
    t = np.clip(np.asarray(t_c, dtype=float), 0.01, 373.946) + 273.15
    n = _N
    th = t + n[8] / (t - n[9])
    a = th * th + n[0] * th + n[1]
    b = n[2] * th * th + n[3] * th + n[4]
    c = n[5] * th * th + n[6] * th + n[7]
    p_mpa = (2.0 * c / (-b + np.sqrt(b * b - 4.0 * a * c))) ** 4
    return p_mpa * 10.0


def velocity_m_s(flow_m3h: Any, diameter_mm: float) -> Any:
    """Mean velocity in a round pipe, m/s."""
    area = math.pi * (diameter_mm / 2000.0) ** 2
    return np.asarray(flow_m3h, dtype=float) / 3600.0 / area


def head_m(discharge_bar: Any, suction_bar: Any, density: float, elevation_m: float = 0.0, v_dis: Any = 0, v_suc: Any = 0) -> Any:
    """Total head, m: (p_d - p_s) / (rho g) + gauge elevation + (v_d^2 - v_s^2) / 2g."""
    return (
        (np.asarray(discharge_bar) - suction_bar) * BAR / (density * G)
        + elevation_m
        + (np.square(v_dis) - np.square(v_suc)) / (2.0 * G)
    )


def hydraulic_kw(flow_m3h: Any, head: Any, density: float) -> Any:
    """Power given to the liquid, kW: rho g Q H."""
    return density * G * np.asarray(flow_m3h) / 3600.0 * head / 1000.0


def electrical_kw(voltage: float, current_a: Any, power_factor: float) -> Any:
    """Three-phase input power, kW: sqrt(3) V I cos(phi)."""
    return SQRT3 * voltage * np.asarray(current_a) * power_factor / 1000.0


def npsh_available_m(suction_bar: Any, t_c: Any, density: float, ambient_bar: float = 1.01325, v_suc: Any = 0.0) -> Any:
    """NPSH available at the suction gauge, m: (p_s + p_ambient - p_vapour) / (rho g) + v_s^2 / 2g."""
    return (np.asarray(suction_bar) + ambient_bar - vapour_pressure_bar(t_c)) * BAR / (density * G) + np.square(v_suc) / (2.0 * G)


class Curve:
    """Monotone piecewise-cubic interpolation (Fritsch-Carlson, as PCHIP) of y over rising x: it
    never overshoots the points, so a falling head curve stays falling between them. Beyond the
    end points it goes on along the end slopes."""

    __slots__ = ("d", "x", "y")

    def __init__(self, x: Sequence[float], y: Sequence[float]) -> None:
        self.x = np.asarray(x, dtype=float)
        self.y = np.asarray(y, dtype=float)
        self.d = _pchip_slopes(self.x, self.y)

    def __call__(self, q: Any) -> Any:
        x, y, d = self.x, self.y, self.d
        q = np.asarray(q, dtype=float)
        qc = np.clip(q, x[0], x[-1])
        i = np.clip(np.searchsorted(x, qc, side="right") - 1, 0, len(x) - 2)
        h = x[i + 1] - x[i]
        t = (qc - x[i]) / h
        t2 = t * t
        t3 = t2 * t
        v = (2 * t3 - 3 * t2 + 1) * y[i] + (t3 - 2 * t2 + t) * h * d[i] + (-2 * t3 + 3 * t2) * y[i + 1] + (t3 - t2) * h * d[i + 1]
        return v + np.where(q < x[0], d[0], d[-1]) * (q - qc)

    def argmax(self) -> float:
        """x of the curve's highest point (the BEP of an efficiency curve)."""
        grid = np.linspace(self.x[0], self.x[-1], 2001)
        return float(grid[int(np.argmax(self(grid)))])


def _pchip_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    h = np.diff(x)
    m = np.diff(y) / h
    n = len(x)
    d = np.zeros(n)
    if n == 2:
        d[:] = m[0]
        return d
    for k in range(1, n - 1):
        if m[k - 1] * m[k] > 0:
            w1 = 2 * h[k] + h[k - 1]
            w2 = h[k] + 2 * h[k - 1]
            d[k] = (w1 + w2) / (w1 / m[k - 1] + w2 / m[k])
    d[0] = _end_slope(h[0], h[1], m[0], m[1])
    d[-1] = _end_slope(h[-1], h[-2], m[-1], m[-2])
    return d


def _end_slope(h0: float, h1: float, m0: float, m1: float) -> float:
    d = ((2 * h0 + h1) * m0 - h0 * m1) / (h0 + h1)
    if np.sign(d) != np.sign(m0):
        return 0.0
    if np.sign(m0) != np.sign(m1) and abs(d) > abs(3 * m0):
        return 3 * m0
    return float(d)


def bep_flow(spec: PumpSpec) -> float:
    """The best-efficiency flow, m3/h: as given, else the top of the efficiency curve."""
    if spec.bep_flow is not None:
        return spec.bep_flow
    assert spec.curve.efficiency is not None  # the config requires one of them
    return Curve(spec.curve.flow, spec.curve.efficiency).argmax()


def rated_input_kw(spec: PumpSpec) -> float:
    """Electrical input at the BEP from the curve, kW (for the running threshold)."""
    q = bep_flow(spec)
    h = float(Curve(spec.curve.flow, spec.curve.head)(q))
    eff = float(Curve(spec.curve.flow, spec.curve.efficiency)(q)) if spec.curve.efficiency else 0.7
    motor = spec.motor.efficiency if spec.motor else 0.9
    return float(hydraulic_kw(q, h, spec.density)) / max(eff * motor, 0.05)


class Pump:
    """A pump description compiled for hops: constants folded, curves tabled for `np.interp`
    (1025 points of the monotone curve: within 1e-4 of it), vapour pressure of a constant
    liquid temperature worked out once."""

    __slots__ = (
        "ambient_less_pv",
        "bep",
        "both_pipes",
        "eff_tab",
        "elevation",
        "grid",
        "head_curve",
        "head_tab",
        "inv_bep",
        "inv_motor",
        "k_elec",
        "k_head",
        "k_hyd",
        "min_flow",
        "npshr_tab",
        "run_kw",
        "spec",
        "t_const",
    )

    def __init__(self, spec: PumpSpec) -> None:
        cv = spec.curve
        self.spec = spec
        self.bep = bep_flow(spec)
        self.inv_bep = 1.0 / self.bep
        rho_g = spec.density * G
        self.k_head = BAR / rho_g  # m per bar
        self.k_hyd = rho_g / 3600.0 / 1000.0  # kW per (m3/h x m)
        motor = spec.motor
        self.k_elec = SQRT3 * motor.voltage * motor.power_factor / 1000.0 if motor and spec.power is None else 1.0
        self.inv_motor = 1.0 / motor.efficiency if motor else 1.0
        self.elevation = spec.gauge_elevation_m
        self.both_pipes = spec.suction_pipe_mm is not None and spec.discharge_pipe_mm is not None
        self.min_flow = spec.dry_run.max_flow_share * self.bep
        self.run_kw = spec.run_min_kw if spec.run_min_kw is not None else 0.05 * rated_input_kw(spec)
        self.grid = np.linspace(0.0, 2.0 * cv.flow[-1], 1025)
        self.head_curve = Curve(cv.flow, cv.head)
        self.head_tab = np.maximum(self.head_curve(self.grid), 0.0)
        self.eff_tab = np.clip(Curve(cv.flow, cv.efficiency)(self.grid), 0.0, 1.0) if cv.efficiency else None
        self.npshr_tab = Curve(cv.flow, cv.npsh_required)(self.grid) if cv.npsh_required else None
        t = spec.liquid_temperature
        self.t_const = None if isinstance(t, str) else float(t)
        self.ambient_less_pv = None if self.t_const is None else spec.ambient_pressure - float(vapour_pressure_bar(self.t_const))

    def head_at(self, q: Any) -> Any:
        """The curve's head at flow q, m."""
        return np.interp(q, self.grid, self.head_tab)


def derive(pump: Pump, q: Any, pd: Any, ps: Any, p_in: Any, t_c: Any, running: Any, out: np.ndarray | None = None) -> np.ndarray:
    """The derived signals (rows in DERIVED's order, a column per asset) from hop means: flow
    m3/h, discharge and suction bar gauge (suction 0 without a signal), current A (or power kW
    with `power:`), liquid degC (ignored with a constant temperature). Figures that need a running
    pump (efficiencies, specific energy, deficits) are NaN while it stands; NPSH needs a suction
    signal. Written into `out` when given (shape (len(DERIVED), n))."""
    q = np.asarray(q, dtype=float)
    if out is None:
        out = np.empty((len(DERIVED), q.size))
    h, hyd, elec, w2w, peff, spec_e, ratio, npsha, margin, hdef, edef = out
    np.subtract(pd, ps, out=h)
    h *= pump.k_head
    if pump.elevation:
        h += pump.elevation
    if pump.both_pipes:
        sp = pump.spec
        h += (velocity_m_s(q, sp.discharge_pipe_mm or 1.0) ** 2 - velocity_m_s(q, sp.suction_pipe_mm or 1.0) ** 2) / (2.0 * G)
    np.multiply(q, h, out=hyd)
    hyd *= pump.k_hyd
    np.multiply(p_in, pump.k_elec, out=elec)
    stopped = ~np.asarray(running) | (q <= pump.min_flow)  # NaN flow compares False: not stopped by flow alone
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(hyd, elec, out=w2w)
        np.multiply(w2w, pump.inv_motor, out=peff)
        np.divide(elec, q, out=spec_e)
        np.multiply(q, pump.inv_bep, out=ratio)
        if pump.spec.suction_pressure is None:
            npsha.fill(np.nan)
        else:
            amb = pump.ambient_less_pv
            if amb is None:
                amb = pump.spec.ambient_pressure - vapour_pressure_bar(t_c)
            np.add(ps, amb, out=npsha)
            npsha *= pump.k_head
            if pump.spec.suction_pipe_mm is not None:
                npsha += velocity_m_s(q, pump.spec.suction_pipe_mm) ** 2 / (2.0 * G)
        if pump.npshr_tab is None:
            margin.fill(np.nan)
        else:
            np.subtract(npsha, np.interp(q, pump.grid, pump.npshr_tab), out=margin)
        hc = np.interp(q, pump.grid, pump.head_tab)
        np.divide(h, hc, out=hdef)
        np.subtract(1.0, hdef, out=hdef)
        hdef *= 100.0
        if pump.eff_tab is None:
            edef.fill(np.nan)
        else:
            np.divide(peff, np.interp(q, pump.grid, pump.eff_tab), out=edef)
            np.subtract(1.0, edef, out=edef)
            edef *= 100.0
    if stopped.any():
        for k in _NEEDS_RUN:
            out[k][stopped] = np.nan
    return out


# ---------------------------------------------------------------------- per-profile state

ROLES = ("flow", "discharge_pressure", "suction_pressure", "power_in", "liquid_temperature")
KINDS = PUMP_KINDS = ("operating_region", "npsh", "performance", "dry_run")
SOURCE = "pump"  # the alarm's source: (asset, kind, "pump")
TOTALS = ("energy_kwh", "volume_m3", "run_hours", "starts", "preferred_hours", "allowable_hours", "hydraulic_kwh")
_SMOOTHED = ("head_deficit_smoothed_pct", "efficiency_deficit_smoothed_pct")  # PumpBank.ema, saved with the totals
_NEEDS_RUN = [3, 4, 5, 9, 10]  # efficiency, pump_efficiency, specific energy, deficits
PumpAlarm = Callable[[str, str, str, int, float, dict[str, Any], str], None]  # asset, kind, source, level, ts, ev, message


class _Group:
    """Assets of one profile that share one pump description, and where their signals sit."""

    __slots__ = ("cols", "idx", "pump", "role_idx", "roles", "rows_all")

    def __init__(self, spec: PumpSpec, idx: list[int], signal_names: list[str]) -> None:
        self.pump = Pump(spec)
        self.idx = np.array(idx, dtype=np.intp)
        names = {
            "flow": spec.flow,
            "discharge_pressure": spec.discharge_pressure,
            "suction_pressure": spec.suction_pressure,
            "power_in": spec.power if spec.power is not None else spec.current,
            "liquid_temperature": spec.liquid_temperature if isinstance(spec.liquid_temperature, str) else None,
        }
        self.roles = [r for r in ROLES if names[r] is not None]
        self.role_idx = np.array([ROLES.index(r) for r in self.roles], dtype=np.intp)
        self.cols = np.array([signal_names.index(str(names[r])) for r in self.roles], dtype=np.intp)
        ns = len(signal_names)
        self.rows_all = (self.idx[None, :] * ns + self.cols[:, None]).ravel()


_FIELDS = np.array([window.K, window.N, window.C, window.S1], dtype=np.intp)[:, None]


class PumpBank:
    """One profile's pump state, by asset index: the last hop means, running, totals (energy,
    volume, run hours, starts, hours in each region), rollup accumulators of the derived signals,
    the smoothed deficits and the pump alarms. A hop of all assets with one description (the
    usual) works on whole arrays in place; other hops on the due assets' columns."""

    def __init__(self, asset_ids: list[str], specs: dict[int, PumpSpec], signal_names: list[str], hop_s: float, stale_s: float):
        n = len(asset_ids)
        self.asset_ids = asset_ids
        self.hop_s = hop_s
        self.stale_s = stale_s
        self.ns = len(signal_names)
        by_spec: dict[int, tuple[PumpSpec, list[int]]] = {}
        for i, spec in sorted(specs.items()):
            by_spec.setdefault(id(spec), (spec, []))[1].append(i)
        self.groups = [_Group(spec, idx, signal_names) for spec, idx in by_spec.values()]
        self.pump_of: list[Pump | None] = [None] * n
        for g in self.groups:
            for i in g.idx.tolist():
                self.pump_of[i] = g.pump
        self.has = np.zeros(n, dtype=bool)
        self.has[list(specs)] = True
        self.all_one = len(self.groups) == 1 and bool(self.has.all())  # the usual: one description for all
        nd = len(DERIVED)
        self.means = np.full((len(ROLES), n), np.nan)  # the last hop means, for a signal without a bucket this hop
        self.means_ts = np.full((len(ROLES), n), -math.inf)
        self.last_end = np.full(n, np.nan)
        self.running = np.zeros(n, dtype=bool)
        self.totals = np.zeros((len(TOTALS), n))
        self.totals_then = self.totals.copy()  # at the rollup interval's start
        self.values = np.full((nd, n), np.nan)  # the newest derived values
        self.ema = np.zeros((2, n))  # head and efficiency deficit %, smoothed over wear.over_s / 4
        self.tau = np.array([(self.pump_of[i].spec.wear.over_s / 4.0 if self.pump_of[i] else 1.0) for i in range(n)])  # type: ignore[union-attr]
        self.alarms = DebounceSet(len(KINDS) * n)  # item kind * n + asset
        self.since = np.full(len(KINDS) * n, np.nan)
        self.items = np.arange(len(KINDS) * n)
        self.conds = np.zeros((len(KINDS), n), dtype=bool)
        self._stats_reset()
        self._names: dict[int, tuple[list[str], list[str]]] = {}  # HopResult.signals -> with the derived ones
        self.rules: list[tuple[int, int, ThresholdRule, Debounce]] = []  # (asset, derived index, rule, debounce)
        names = list(DERIVED)
        for i, spec in specs.items():
            for name, lim in spec.limits.items():
                self.rules.append((i, names.index(name), ThresholdRule(lim), Debounce(lim.on_delay_s, lim.off_delay_s)))  # type: ignore[arg-type]

    def _stats_reset(self) -> None:
        nd, n = len(DERIVED), len(self.has)
        self.s_n = np.zeros((nd, n))
        self.s_sum = np.zeros((nd, n))
        self.s_sq = np.zeros((nd, n))
        self.s_min = np.full((nd, n), np.nan)
        self.s_max = np.full((nd, n), np.nan)
        self.s_first = np.full(n, np.nan)
        self.s_last = np.full(n, np.nan)
        self.totals_then = self.totals.copy()

    # ------------------------------------------------------------------ a hop

    def hop(self, win: window.Windows, aidx: Any, k_end: np.ndarray, ends: np.ndarray, alarm: PumpAlarm) -> None:
        """The derived signals of the due assets (`aidx`: a slice of all, or their indices; k_end,
        ends: their window's end bucket and time), from their hop bucket's means."""
        if self.all_one and isinstance(aidx, slice):
            g = self.groups[0]
            self._hop_group(g, win, aidx, g.rows_all, k_end, ends, alarm)
            return
        a_all = np.arange(len(self.has)) if isinstance(aidx, slice) else aidx
        for g in self.groups:
            sel = np.flatnonzero(np.isin(a_all, g.idx, assume_unique=True))
            if len(sel):
                a = a_all[sel]
                rows = (a[None, :] * self.ns + g.cols[:, None]).ravel()
                self._hop_group(g, win, a, rows, k_end[sel], ends[sel], alarm)

    def _hop_group(
        self, g: _Group, win: window.Windows, a: Any, rows: np.ndarray, k_end: Any, ends: Any, alarm: PumpAlarm
    ) -> None:
        pump = g.pump
        spec = pump.spec
        nc = len(g.cols)
        kb = np.empty(len(rows))
        kb.reshape(nc, -1)[:] = k_end - 1.0
        rec = win.acc[_FIELDS, (kb % win.n_buckets).astype(np.intp), rows]
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = rec[2] + rec[3] / rec[1]
        fresh = (rec[0] == kb) & (rec[1] > 0)
        at = (g.role_idx, a) if isinstance(a, slice) else (g.role_idx[:, None], a)
        mean = mean.reshape(nc, -1)
        if fresh.all():
            m = mean
            self.means_ts[at] = ends
        else:  # a signal without a value this hop keeps its last mean while it is not stale
            fresh = fresh.reshape(nc, -1)
            mts = self.means_ts[at]
            gone = ends - mts > self.stale_s
            m = np.where(fresh, mean, np.where(gone, np.nan, self.means[at]))
            self.means_ts[at] = np.where(fresh, ends, mts)
        self.means[at] = m
        v = dict(zip(g.roles, m, strict=True))
        q = v["flow"]
        p_in = v["power_in"]
        elec = p_in * pump.k_elec
        was = self.running[a]
        run_kw = pump.run_kw
        running = (elec > run_kw) | (was & (elec > 0.5 * run_kw))
        out = derive(pump, q, v["discharge_pressure"], v.get("suction_pressure", 0.0), p_in, v.get("liquid_temperature"), running)
        self.values[:, a] = out
        # totals: each hop covers the time since the asset's last one, at most stale_after_s
        dt = ends - self.last_end[a]  # NaN at an asset's first hop: it counts from there
        np.clip(dt, 0.0, self.stale_s, out=dt)
        self.last_end[a] = ends
        h = dt / 3600.0
        ratio = out[6]
        lo, hi = spec.region.preferred
        alo, ahi = spec.region.allowable
        outside = (ratio < lo) | (ratio > hi)
        in_pref = running & (ratio >= lo) & (ratio <= hi)
        in_allow = running & (ratio >= alo) & (ratio <= ahi)
        hr = h * running
        inc = np.empty((len(TOTALS), len(ends)))
        np.multiply(elec, h, out=inc[0])
        np.multiply(q, hr, out=inc[1])
        inc[2] = hr
        np.greater(running, was, out=inc[3])
        np.multiply(h, in_pref, out=inc[4])
        np.multiply(h, in_allow, out=inc[5])
        np.multiply(out[1], hr, out=inc[6])
        np.fmax(inc, 0.0, out=inc)  # NaN (a missing signal) adds nothing
        self.totals[:, a] += inc
        self.running[a] = running
        # rollup stats of each derived signal
        ok = out == out
        z = np.where(ok, out, 0.0)
        self.s_n[:, a] += ok
        self.s_sum[:, a] += z
        self.s_sq[:, a] += z * z
        self.s_min[:, a] = np.fmin(self.s_min[:, a], out)
        self.s_max[:, a] = np.fmax(self.s_max[:, a], out)
        self.s_first[a] = np.fmin(self.s_first[a], ends)
        self.s_last[a] = ends
        # wear: the deficits smoothed over about over_s / 4 (an hour's noise says nothing of wear)
        e = self.ema[:, a]
        upd = e + (out[9:11] - e) * -np.expm1(-dt / self.tau[a])
        self.ema[:, a] = np.where(upd == upd, upd, e)  # no deficit figure (stopped, first hop): unchanged
        # the pump alarms' conditions, then the Debounce of those that change or wait
        w = spec.wear
        c = self.conds if isinstance(a, slice) else np.zeros((len(KINDS), len(ends)), dtype=bool)
        dry = (elec > run_kw) & (q < pump.min_flow)
        np.logical_and(running & outside, ~dry, out=c[0])
        low = out[8] < spec.npsh.min_margin_m
        if spec.npsh.min_ratio is not None and pump.npshr_tab is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                low |= out[7] < spec.npsh.min_ratio * (out[7] - out[8])
        np.logical_and(running, low, out=c[1])
        worn = (self.ema[0, a] > w.head_deficit_pct) if w.head_deficit_pct is not None else np.zeros(len(ends), dtype=bool)
        if w.efficiency_deficit_pct is not None:
            worn |= self.ema[1, a] > w.efficiency_deficit_pct
        np.logical_and(running, worn, out=c[2])
        c[3] = dry
        n = len(self.has)
        items = self.items.reshape(len(KINDS), n)[:, a].ravel()
        cond = c.ravel()
        hot = self.alarms.changing(items, cond)
        if len(hot):
            self._debounce(pump, items, cond, hot, ends, alarm)
        if self.rules:
            self._limits(a, ends, alarm)

    def _debounce(
        self, pump: Pump, items: np.ndarray, cond: np.ndarray, hot: np.ndarray, ends: np.ndarray, alarm: PumpAlarm
    ) -> None:
        spec = pump.spec
        n = len(self.has)
        m = len(ends)
        delays = (
            (spec.region.delay_s, min(spec.region.delay_s, 60.0)),
            (spec.npsh.delay_s, min(spec.npsh.delay_s, 60.0)),
            (spec.wear.over_s / 2.0, spec.wear.over_s / 4.0),
            (spec.dry_run.delay_s, spec.dry_run.delay_s),
        )
        for j in hot.tolist():
            item = int(items[j])
            ki, i = divmod(item, n)
            ts = float(ends[j % m])
            db = self.alarms.alarms[item]
            waiting = db.since is not None
            lvl = self.alarms.update(item, ts, int(cond[j]), delays[ki])
            if db.since is not None and not waiting:
                self.since[item] = ts
            if lvl is None:
                continue
            held = ts - self.since[item] if math.isfinite(self.since[item]) else 0.0
            ema = (float(self.ema[0, i]), float(self.ema[1, i]))
            ev, msg = _evidence(KINDS[ki], self.asset_ids[i], pump, self.values[:, i], ema, held, lvl)
            alarm(self.asset_ids[i], KINDS[ki], SOURCE, lvl, ts, ev, msg)

    def _limits(self, a: Any, ends: np.ndarray, alarm: PumpAlarm) -> None:
        idx = np.arange(len(self.has))[a].tolist()
        pos = {i: j for j, i in enumerate(idx)}
        names = list(DERIVED)
        for i, d, rule, db in self.rules:
            j = pos.get(i)
            v = float(self.values[d, i])
            if j is None or not math.isfinite(v):
                continue
            prev = db.active
            ts = float(ends[j])
            lvl = db.update(ts, rule.target(v, prev))
            if lvl is not None:
                shown = lvl or prev
                limit = rule.limit(shown)
                ev = {"signal": names[d], "value": v, "unit": rule.unit, "limit": limit, "level": LEVEL_NAMES[shown]}
                word = "above" if shown > 0 else "below"
                msg = f"{self.asset_ids[i]} {names[d]} {v:.4g} {rule.unit} {word} {LEVEL_NAMES[shown]} {limit:.4g}" if lvl else ""
                alarm(self.asset_ids[i], "threshold", names[d], lvl, ts, ev, msg)

    def extend(self, res: HopResult, aidx: Any) -> None:
        """Add the derived signals to a hop's HopResult as columns after the measured ones: their
        newest values in `last`, and in the hop bucket (the one ending at the window end) a
        bucket of one value each (count 1, mean = min = max = last), so history and the page keep
        and show them like measured signals."""
        vals = self.values[:, aidx].T  # (due assets, derived)
        nd = vals.shape[1]
        names = self._names.get(id(res.signals))
        if names is None or names[0] is not res.signals:
            names = self._names[id(res.signals)] = (res.signals, [*res.signals, *DERIVED])
        res.signals = names[1]
        if res.last is not None:
            res.last = np.concatenate([res.last, vals], axis=1)
        nb = res.buckets.shape[1]
        d = np.full((5, nb, nd), np.nan)
        d[0] = 0.0
        if nb:
            ba = res.bucket_asset
            hop = res.hop_s
            match = np.rint(res.bucket_starts / hop) == np.rint(res.ends[ba] / hop) - 1.0
            v = vals[ba[match]]
            d[0, match] = np.isfinite(v)
            d[1:, match] = v
        res.buckets = np.concatenate([res.buckets, d], axis=2)
        res.bucket_bad = np.concatenate([res.bucket_bad, np.zeros((nb, nd))], axis=1)

    # ------------------------------------------------------------------ rollups, totals, restore

    def rollup(self, i: int) -> tuple[dict[str, SignalStats], dict[str, Any]] | None:
        """Asset i's derived signals' stats over the interval and its rollup `pump` object, or
        None without a pump description. Call `reset()` after the last asset."""
        if not self.has[i]:
            return None
        stats: dict[str, SignalStats] = {}
        obj: dict[str, Any] = {}
        for d, name in enumerate(DERIVED):
            n = int(self.s_n[d, i])
            st = SignalStats()
            if n:
                st.count = n
                st.total = float(self.s_sum[d, i])
                st.total_sq = float(self.s_sq[d, i])
                st.min = float(self.s_min[d, i])
                st.max = float(self.s_max[d, i])
                st.first_ts = float(self.s_first[i])
                st.last_ts = float(self.s_last[i])
                st.last = float(self.values[d, i])
            stats[name] = st
            obj[name] = st.total / n if n else None
        for t, name in enumerate(TOTALS):
            obj[name] = int(self.totals[t, i]) if name == "starts" else float(self.totals[t, i])
        run = float(self.totals[2, i] - self.totals_then[2, i])
        obj["running"] = bool(self.running[i])
        obj["run_s"] = run * 3600.0
        obj["region_preferred_share"] = float((self.totals[4, i] - self.totals_then[4, i]) / run) if run else None
        obj["region_allowable_share"] = float((self.totals[5, i] - self.totals_then[5, i]) / run) if run else None
        return stats, obj

    def reset(self) -> None:
        self._stats_reset()

    def totals_of(self) -> dict[str, dict[str, float]]:
        """Asset id -> its totals and smoothed deficits (a restart keeps the wear judgement), to save."""
        return {
            aid: {name: float(self.totals[t, i]) for t, name in enumerate(TOTALS)}
            | {name: float(self.ema[e, i]) for e, name in enumerate(_SMOOTHED)}
            for i, aid in enumerate(self.asset_ids)
            if self.has[i]
        }

    def restore(self, saved: dict[str, dict[str, float]]) -> int:
        """Totals saved before a restart; returns how many assets took theirs."""
        n = 0
        for i, aid in enumerate(self.asset_ids):
            d = saved.get(aid)
            if not self.has[i] or not isinstance(d, dict):
                continue
            for t, name in enumerate(TOTALS):
                v = d.get(name)
                if isinstance(v, (int, float)) and math.isfinite(v) and v >= 0:
                    self.totals[t, i] = float(v)
            for e, name in enumerate(_SMOOTHED):
                v = d.get(name)
                if isinstance(v, (int, float)) and math.isfinite(v):
                    self.ema[e, i] = float(v)
            n += 1
        self.totals_then = self.totals.copy()
        return n

    def restore_limit(self, i: int, name: str, level: int) -> bool:
        """Asset i's limit alarm on a derived signal was active (at `level`) before a restart."""
        d = list(DERIVED).index(name)
        for j, dd, _, db in self.rules:
            if j == i and dd == d:
                db.active = level
                return True
        return False

    def restore_alarm(self, i: int, kind: str) -> bool:
        if kind not in KINDS or not self.has[i]:
            return False
        self.alarms.restore(KINDS.index(kind) * len(self.has) + i)
        return True


def banks(cfg: GatewayConfig, members: dict[str, list[str]]) -> dict[str, PumpBank]:
    """A PumpBank per profile with at least one pump description (members: profile -> asset ids
    by index)."""
    specs = pumps_of(cfg.assets, cfg.profiles)
    out = {}
    for name, ids in members.items():
        own = {i: specs[aid] for i, aid in enumerate(ids) if aid in specs}
        if own:
            p = cfg.profiles[name]
            out[name] = PumpBank(ids, own, list(p.signals), p.hop_s, p.stale_after_s)
    return out


# ---------------------------------------------------------------------- alarm words


def duration(s: float) -> str:
    """Seconds in the unit a person reads: 45 s, 25 min, 3.5 h, 2.0 d."""
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    if s < 172800:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} d"


def _evidence(
    kind: str, asset: str, pump: Pump, v: np.ndarray, ema: tuple[float, float], held: float, lvl: int
) -> tuple[dict[str, Any], str]:
    ema_h, ema_e = ema
    spec = pump.spec
    names = list(DERIVED)
    val = {n: (round(float(x), 4) if math.isfinite(x) else None) for n, x in zip(names, v.tolist(), strict=True)}
    q = val["bep_ratio"] * pump.bep if val["bep_ratio"] is not None else math.nan
    ev: dict[str, Any] = {"flow": round(q, 2) if math.isfinite(q) else None, "unit": "m3/h", "bep_flow": pump.bep}
    if kind == "operating_region":
        lo, hi = spec.region.preferred
        ev.update(bep_ratio=val["bep_ratio"], preferred=[lo, hi], delay_s=spec.region.delay_s)
        r = (val["bep_ratio"] or 0.0) * 100
        if not lvl:
            return ev, f"{asset} back in its preferred operating region at {r:.0f} % of its best-efficiency flow"
        where = f"outside {lo * 100:.0f}–{hi * 100:.0f} %"
        return ev, f"{asset} runs at {r:.0f} % of its best-efficiency flow for {duration(held)}: {where}"
    if kind == "npsh":
        ev.update(
            npsh_available_m=val["npsh_available_m"],
            npsh_margin_m=val["npsh_margin_m"],
            min_margin_m=spec.npsh.min_margin_m,
            min_ratio=spec.npsh.min_ratio,
        )
        if not lvl:
            return ev, f"{asset} NPSH margin back to {_f(val['npsh_margin_m'], '.2f')} m"
        avail, margin = val["npsh_available_m"] or 0.0, val["npsh_margin_m"] or 0.0
        return ev, (
            f"{asset} NPSH margin {margin:.2f} m (available {avail:.2f} m, required {avail - margin:.2f} m at "
            f"{_f(q, '.0f')} m3/h) below {spec.npsh.min_margin_m:g} m for {duration(held)}: cavitation risk"
        )
    if kind == "performance":
        w = spec.wear
        ev.update(
            head_deficit_pct=round(ema_h, 2) if math.isfinite(ema_h) else None,
            efficiency_deficit_pct=round(ema_e, 2) if math.isfinite(ema_e) else None,
            head_limit_pct=w.head_deficit_pct,
            efficiency_limit_pct=w.efficiency_deficit_pct,
        )
        if not lvl:
            under = f"head {_f(ema_h, '.1f')} %, efficiency {_f(ema_e, '.1f')} % under it"
            return ev, f"{asset} performs on its curve again ({under})"
        parts = []
        if w.head_deficit_pct is not None and ema_h > w.head_deficit_pct:
            parts.append(f"head {ema_h:.1f} % under the curve (limit {w.head_deficit_pct:g} %)")
        if w.efficiency_deficit_pct is not None and ema_e > w.efficiency_deficit_pct:
            parts.append(f"efficiency {ema_e:.1f} % under the curve (limit {w.efficiency_deficit_pct:g} %)")
        return ev, (
            f"{asset} {' and '.join(parts) or 'under its curve'} at {_f(q, '.0f')} m3/h for {duration(held)}: "
            "impeller wear, internal leakage or a throttled valve"
        )
    ev.update(electrical_kw=val["electrical_kw"], head_m=val["head_m"], max_flow_share=spec.dry_run.max_flow_share)
    if not lvl:
        return ev, f"{asset} moves liquid again ({_f(q, '.1f')} m3/h)"
    shut = float(pump.head_at(0.0))
    what = "dead-head: a closed valve" if (val["head_m"] or 0.0) > 0.8 * shut else "dry run: no liquid at the inlet"
    return ev, f"{asset} draws {_f(val['electrical_kw'], '.1f')} kW with {_f(q, '.1f')} m3/h flow for {duration(held)}: {what}"


def _f(x: float | None, fmt: str) -> str:
    return "?" if x is None or not math.isfinite(x) else format(x, fmt)


__all__ = [
    "DERIVED",
    "KINDS",
    "PUMP_KINDS",
    "TOTALS",
    "Curve",
    "PumpBank",
    "bep_flow",
    "derive",
    "electrical_kw",
    "head_m",
    "hydraulic_kw",
    "npsh_available_m",
    "vapour_pressure_bar",
    "velocity_m_s",
]
