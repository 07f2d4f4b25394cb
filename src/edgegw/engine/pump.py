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
from edgegw.records import SignalStats

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


def derive(
    spec: PumpSpec, q: np.ndarray, pd: np.ndarray, ps: np.ndarray, power: np.ndarray, t_c: Any, running: Any
) -> np.ndarray:
    """The derived signals (rows in DERIVED's order, a column per asset) from hop means: flow
    m3/h, discharge and suction bar gauge, current A (or power kW, see spec.power), liquid degC.
    Figures that need a running pump (efficiencies, specific energy, deficits) are NaN while it
    stands; NPSH needs a suction signal."""
    c = _consts(spec)
    rho = spec.density
    v_suc = velocity_m_s(q, spec.suction_pipe_mm) if spec.suction_pipe_mm else 0.0
    both = spec.suction_pipe_mm is not None and spec.discharge_pipe_mm is not None  # velocity head needs both pipes
    v_dis = velocity_m_s(q, spec.discharge_pipe_mm) if both and spec.discharge_pipe_mm else 0.0
    h = head_m(pd, ps, rho, spec.gauge_elevation_m, v_dis, v_suc if both else 0.0)
    hyd = hydraulic_kw(q, h, rho)
    elec = power if spec.power is not None else electrical_kw(c["voltage"], power, c["pf"])
    out = np.full((len(DERIVED), len(q)), np.nan)
    out[0], out[1], out[2] = h, hyd, elec
    nan = np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        w2w = np.where(running, hyd / elec, nan)
        out[3] = w2w
        out[4] = w2w / c["motor_eff"]
        out[5] = np.where(running & (q > c["min_flow"]), elec / q, nan)
        out[6] = q / c["bep"]
        if spec.suction_pressure is not None:
            out[7] = npsh_available_m(ps, t_c, rho, spec.ambient_pressure, v_suc)
            if c["npshr"] is not None:
                out[8] = out[7] - c["npshr"](q)
        judged = running & (q > c["min_flow"])
        hc = c["head"](q)
        out[9] = np.where(judged & (hc > 0), (hc - h) / hc * 100.0, nan)
        if c["eff"] is not None:
            ec = c["eff"](q)
            out[10] = np.where(judged & (ec > 0.05), (ec - out[4]) / ec * 100.0, nan)
    return out


_CONSTS: dict[int, dict[str, Any]] = {}


def _consts(spec: PumpSpec) -> dict[str, Any]:
    """Curves and constants of a description, built once per description object."""
    c = _CONSTS.get(id(spec))
    if c is None or c["spec"] is not spec:
        cv = spec.curve
        bep = bep_flow(spec)
        c = {
            "spec": spec,
            "bep": bep,
            "head": Curve(cv.flow, cv.head),
            "eff": Curve(cv.flow, cv.efficiency) if cv.efficiency else None,
            "npshr": Curve(cv.flow, cv.npsh_required) if cv.npsh_required else None,
            "voltage": spec.motor.voltage if spec.motor else 0.0,
            "pf": spec.motor.power_factor if spec.motor else 1.0,
            "motor_eff": spec.motor.efficiency if spec.motor else 1.0,
            "min_flow": spec.dry_run.max_flow_share * bep,
            "run_kw": spec.run_min_kw if spec.run_min_kw is not None else 0.05 * rated_input_kw(spec),
        }
        _CONSTS[id(spec)] = c
    return c


# ---------------------------------------------------------------------- per-profile state

ROLES = ("flow", "discharge_pressure", "suction_pressure", "power_in", "liquid_temperature")
KINDS = ("operating_region", "npsh", "performance", "dry_run")
SOURCE = "pump"  # the alarm's source: (asset, kind, "pump")
TOTALS = ("energy_kwh", "volume_m3", "run_hours", "starts", "preferred_hours", "allowable_hours")
PumpAlarm = Callable[[str, str, str, int, float, dict[str, Any], str], None]  # asset, kind, source, level, ts, ev, message
_NO_VALUE = math.nan


class _Group:
    """Assets of one profile that share one pump description."""

    __slots__ = ("cols", "idx", "spec", "t_const")

    def __init__(self, spec: PumpSpec, idx: list[int], signal_names: list[str]) -> None:
        self.spec = spec
        self.idx = np.array(idx, dtype=np.intp)
        names = {
            "flow": spec.flow,
            "discharge_pressure": spec.discharge_pressure,
            "suction_pressure": spec.suction_pressure,
            "power_in": spec.power if spec.power is not None else spec.current,
            "liquid_temperature": spec.liquid_temperature if isinstance(spec.liquid_temperature, str) else None,
        }
        self.cols = {r: signal_names.index(n) for r, n in names.items() if n is not None}
        self.t_const = None if isinstance(spec.liquid_temperature, str) else float(spec.liquid_temperature)


class PumpBank:
    """One profile's pump state, by asset index: the last hop means, running, totals (energy,
    volume, run hours, starts, hours in each region), rollup accumulators of the derived signals,
    the smoothed deficits and the pump alarms."""

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
        self.has = np.zeros(n, dtype=bool)
        self.has[list(specs)] = True
        self.all_one = len(self.groups) == 1 and bool(self.has.all())  # the usual: one description for all
        nd = len(DERIVED)
        self.means = np.full((len(ROLES), n), np.nan)  # the last hop means, for a signal without a bucket this hop
        self.means_ts = np.full((len(ROLES), n), -math.inf)
        self.last_end = np.full(n, np.nan)
        self.running = np.zeros(n, dtype=bool)
        self.totals = np.zeros((len(TOTALS), n))
        self.values = np.full((nd, n), np.nan)  # the newest derived values
        self.ema = np.full((2, n), np.nan)  # head and efficiency deficit, smoothed over wear.over_s / 4
        self.alarms = {k: DebounceSet(n) for k in KINDS}
        self.since = np.full((len(KINDS), n), np.nan)
        self._stats_reset()
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
        self.s_min = np.full((nd, n), np.inf)
        self.s_max = np.full((nd, n), -np.inf)
        self.s_first = np.full((nd, n), np.nan)
        self.s_last_ts = np.full((nd, n), np.nan)
        self.t_run = np.zeros(n)
        self.t_pref = np.zeros(n)
        self.t_allow = np.zeros(n)

    # ------------------------------------------------------------------ a hop

    def hop(self, win: window.Windows, aidx: Any, k_end: np.ndarray, ends: np.ndarray, alarm: PumpAlarm) -> None:
        """The derived signals of the due assets (`aidx`: a slice of all, or their indices; k_end,
        ends: their window's end bucket and time), from their hop bucket's means."""
        if isinstance(aidx, slice):
            aidx = np.arange(len(self.has))
        for g in self.groups:
            sel = None if self.all_one else np.flatnonzero(np.isin(aidx, g.idx, assume_unique=True))
            a = aidx if sel is None else aidx[sel]
            if not len(a):
                continue
            ke = k_end if sel is None else k_end[sel]
            te = ends if sel is None else ends[sel]
            self._hop_group(g, win, a, ke, te, alarm)

    def _hop_group(self, g: _Group, win: window.Windows, a: np.ndarray, k_end: Any, ends: np.ndarray, alarm: PumpAlarm) -> None:
        spec = g.spec
        c = _consts(spec)
        roles = [ROLES.index(r) for r in g.cols]
        cols = np.array(list(g.cols.values()))
        rows = (a[None, :] * self.ns + cols[:, None]).ravel()
        kb = np.tile(k_end - 1.0, len(cols))
        slot = (kb % win.n_buckets).astype(np.intp)
        rec = win.acc[:, slot, rows]
        n = rec[window.N]
        fresh = (rec[window.K] == kb) & (n > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = (rec[window.C] + rec[window.S1] / n).reshape(len(cols), -1)
        fresh = fresh.reshape(len(cols), -1)
        tt = np.broadcast_to(ends, fresh.shape)
        m = self.means[roles][:, a]
        mts = self.means_ts[roles][:, a]
        old = ~fresh & (tt - mts <= self.stale_s)
        m = np.where(fresh, mean, np.where(old, m, np.nan))
        for j, r in enumerate(roles):
            self.means[r, a] = m[j]
            self.means_ts[r, a] = np.where(fresh[j], ends, mts[j])
        v = {r: m[j] for j, r in enumerate(g.cols)}
        nan = np.full(len(a), np.nan)
        q = v["flow"]
        ps = v.get("suction_pressure", np.zeros(len(a)))
        t_c = v.get("liquid_temperature", g.t_const)
        p_in = v["power_in"]
        elec_now = p_in if spec.power is not None else electrical_kw(c["voltage"], p_in, c["pf"])
        run_kw = c["run_kw"]
        was = self.running[a]
        running = (elec_now > run_kw) | (was & (elec_now > 0.5 * run_kw))
        out = derive(spec, q, v["discharge_pressure"], ps, p_in, t_c if t_c is not None else nan, running)
        self.values[:, a] = out
        # totals: each hop covers the time since the asset's last one, at most stale_after_s
        dt = np.clip(np.nan_to_num(ends - self.last_end[a], nan=self.hop_s), 0.0, self.stale_s)
        self.last_end[a] = ends
        h = dt / 3600.0
        ratio = out[6]
        lo, hi = spec.region.preferred
        alo, ahi = spec.region.allowable
        in_pref = running & (ratio >= lo) & (ratio <= hi)
        in_allow = running & (ratio >= alo) & (ratio <= ahi)
        tot = self.totals
        tot[0, a] += np.where(np.isfinite(elec_now) & (elec_now > 0), elec_now, 0.0) * h
        tot[1, a] += np.where(running & np.isfinite(q) & (q > 0), q, 0.0) * h
        tot[2, a] += np.where(running, h, 0.0)
        tot[3, a] += running & ~was
        tot[4, a] += np.where(in_pref, h, 0.0)
        tot[5, a] += np.where(in_allow, h, 0.0)
        self.running[a] = running
        self.t_run[a] += np.where(running, dt, 0.0)
        self.t_pref[a] += np.where(in_pref, dt, 0.0)
        self.t_allow[a] += np.where(in_allow, dt, 0.0)
        # rollup stats of each derived signal
        ok = np.isfinite(out)
        z = np.where(ok, out, 0.0)
        first = ok & (self.s_n[:, a] == 0)
        self.s_n[:, a] += ok
        self.s_sum[:, a] += z
        self.s_sq[:, a] += z * z
        self.s_min[:, a] = np.where(ok, np.minimum(self.s_min[:, a], z), self.s_min[:, a])
        self.s_max[:, a] = np.where(ok, np.maximum(self.s_max[:, a], z), self.s_max[:, a])
        self.s_first[:, a] = np.where(first, ends, self.s_first[:, a])
        self.s_last_ts[:, a] = np.where(ok, ends, self.s_last_ts[:, a])
        # wear: the deficits smoothed over about over_s / 4 (an hour's noise says nothing of wear)
        tau = spec.wear.over_s / 4.0
        k = 1.0 - np.exp(-dt / tau)
        e = self.ema[:, a]
        d = out[9:11]
        e = np.where(np.isfinite(d), np.where(np.isfinite(e), e + k * (d - e), d), e)
        self.ema[:, a] = e
        self._alarms(g, a, ends, out, running, q, elec_now, in_pref, alarm)
        if self.rules:
            self._limits(a, ends, alarm)

    def _alarms(
        self,
        g: _Group,
        a: np.ndarray,
        ends: np.ndarray,
        out: np.ndarray,
        running: np.ndarray,
        q: np.ndarray,
        elec: np.ndarray,
        in_pref: np.ndarray,
        alarm: PumpAlarm,
    ) -> None:
        spec = g.spec
        c = _consts(spec)
        margin = out[8]
        with np.errstate(invalid="ignore", divide="ignore"):
            low = margin < spec.npsh.min_margin_m
            if spec.npsh.min_ratio is not None and c["npshr"] is not None:
                low |= out[7] / c["npshr"](q) < spec.npsh.min_ratio
            wear = spec.wear
            worn = np.zeros(len(a), dtype=bool)
            if wear.head_deficit_pct is not None:
                worn |= self.ema[0, a] > wear.head_deficit_pct
            if wear.efficiency_deficit_pct is not None:
                worn |= self.ema[1, a] > wear.efficiency_deficit_pct
            dry = (elec > c["run_kw"]) & (q < c["min_flow"])
        conds = {
            "operating_region": running & np.isfinite(out[6]) & ~in_pref & ~dry,
            "npsh": running & low,
            "performance": running & worn,
            "dry_run": dry,
        }
        delays = {
            "operating_region": (spec.region.delay_s, min(spec.region.delay_s, 60.0)),
            "npsh": (spec.npsh.delay_s, min(spec.npsh.delay_s, 60.0)),
            "performance": (wear.over_s / 2.0, wear.over_s / 4.0),
            "dry_run": (spec.dry_run.delay_s, spec.dry_run.delay_s),
        }
        for ki, (kind, cond) in enumerate(conds.items()):
            ds = self.alarms[kind]
            for j in ds.changing(a, cond).tolist():
                i = int(a[j])
                db = ds.alarms[i]
                since = db.since
                ts = float(ends[j])
                lvl = ds.update(i, ts, int(cond[j]), delays[kind])
                if db.since is not None and since is None:
                    self.since[ki, i] = ts
                if lvl is None:
                    continue
                held = ts - (self.since[ki, i] if math.isfinite(self.since[ki, i]) else ts)
                ema = (float(self.ema[0, i]), float(self.ema[1, i]))
                ev, msg = _evidence(kind, self.asset_ids[i], spec, c, out[:, j], ema, held, lvl)
                alarm(self.asset_ids[i], kind, SOURCE, lvl, ts, ev, msg)

    def _limits(self, a: np.ndarray, ends: np.ndarray, alarm: PumpAlarm) -> None:
        due = set(a.tolist())
        pos = {int(i): j for j, i in enumerate(a.tolist())}
        names = list(DERIVED)
        for i, d, rule, db in self.rules:
            if i not in due:
                continue
            v = float(self.values[d, i])
            if not math.isfinite(v):
                continue
            prev = db.active
            lvl = db.update(float(ends[pos[i]]), rule.target(v, prev))
            if lvl is not None:
                shown = lvl or prev
                ev = {"signal": names[d], "value": v, "unit": rule.unit, "limit": rule.limit(shown), "level": LEVEL_NAMES[shown]}
                word = "above" if shown > 0 else "below"
                msg = f"{names[d]} {v:.4g} {rule.unit} {word} {LEVEL_NAMES[shown]} {rule.limit(shown):.4g}" if lvl else ""
                alarm(self.asset_ids[i], "threshold", names[d], lvl, float(ends[pos[i]]), ev, msg)

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
                st.first_ts = float(self.s_first[d, i])
                st.last_ts = float(self.s_last_ts[d, i])
                st.last = float(self.values[d, i])
            stats[name] = st
            obj[name] = st.total / n if n else None
        for t, name in enumerate(TOTALS):
            obj[name] = int(self.totals[t, i]) if name == "starts" else float(self.totals[t, i])
        run = float(self.t_run[i])
        obj["running"] = bool(self.running[i])
        obj["run_s"] = run
        obj["region_preferred_share"] = float(self.t_pref[i] / run) if run else None
        obj["region_allowable_share"] = float(self.t_allow[i] / run) if run else None
        return stats, obj

    def reset(self) -> None:
        self._stats_reset()

    def totals_of(self) -> dict[str, dict[str, float]]:
        """Asset id -> its totals, to save."""
        return {
            aid: {name: float(self.totals[t, i]) for t, name in enumerate(TOTALS)}
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
            n += 1
        return n

    def restore_alarm(self, i: int, kind: str) -> bool:
        ds = self.alarms.get(kind)
        if ds is None or not self.has[i]:
            return False
        ds.restore(i)
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
    kind: str, asset: str, spec: PumpSpec, c: dict[str, Any], v: np.ndarray, ema: tuple[float, float], held: float, lvl: int
) -> tuple[dict[str, Any], str]:
    ema_h, ema_e = ema
    names = list(DERIVED)
    val = {n: (round(float(x), 4) if math.isfinite(x) else None) for n, x in zip(names, v.tolist(), strict=True)}
    q = val["bep_ratio"] * c["bep"] if val["bep_ratio"] is not None else math.nan
    ev: dict[str, Any] = {"flow": round(q, 2) if math.isfinite(q) else None, "unit": "m3/h", "bep_flow": c["bep"]}
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
    shut = float(c["head"](0.0))
    what = "dead-head: a closed valve" if (val["head_m"] or 0.0) > 0.8 * shut else "dry run: no liquid at the inlet"
    return ev, f"{asset} draws {_f(val['electrical_kw'], '.1f')} kW with {_f(q, '.1f')} m3/h flow for {duration(held)}: {what}"


def _f(x: float | None, fmt: str) -> str:
    return "?" if x is None or not math.isfinite(x) else format(x, fmt)


__all__ = [
    "KINDS",
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
