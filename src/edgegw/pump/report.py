"""The energy report: per pump, kWh, m3, kWh/m3, time in each region of the curve, the efficiency
trend and what running at the best-efficiency point (BEP) would have saved, in plain words.

Two sources, one shape (`EnergyRow`): the pumps' totals as the gateway keeps them (since they
were first counted), or rollups as published (each carries the running totals in `pump`), for a
period. `render_text` and `render_html` are the renderers the page's `edgegw report` can share.
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from edgegw.config.pump import PumpSpec
from edgegw.engine.forecast import theil_sen
from edgegw.engine.pump import Pump

WEEK_H = 168.0


@dataclass(slots=True)
class EnergyRow:
    """One pump over one period (totals are differences of the running counters)."""

    asset: str
    kwh: float
    m3: float
    hydraulic_kwh: float
    run_hours: float
    starts: int
    preferred_hours: float
    allowable_hours: float
    bep_efficiency: float  # wire to water at the BEP: the curve's efficiency x motor efficiency
    preferred: tuple[float, float]
    allowable: tuple[float, float]
    start: float | None = None  # epoch seconds, None: since the totals began
    end: float | None = None
    efficiency_trend: float | None = None  # wire-to-water efficiency, points (of 100) per week

    @property
    def kwh_m3(self) -> float | None:
        return self.kwh / self.m3 if self.m3 > 0 else None

    @property
    def efficiency(self) -> float | None:
        """Wire to water over the period: the energy the water got over the energy drawn."""
        return self.hydraulic_kwh / self.kwh if self.kwh > 0 else None

    @property
    def saving_kwh(self) -> float | None:
        """What running at the BEP's efficiency would have saved for the same hydraulic work."""
        if self.kwh <= 0 or self.bep_efficiency <= 0:
            return None
        return max(self.kwh - self.hydraulic_kwh / self.bep_efficiency, 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "asset": self.asset,
            "kwh": self.kwh,
            "m3": self.m3,
            "kwh_m3": self.kwh_m3,
            "efficiency": self.efficiency,
            "bep_efficiency": self.bep_efficiency,
            "run_hours": self.run_hours,
            "starts": self.starts,
            "preferred_hours": self.preferred_hours,
            "allowable_hours": self.allowable_hours,
            "efficiency_trend_points_per_week": self.efficiency_trend,
            "saving_kwh": self.saving_kwh,
            "saving_share": (self.saving_kwh / self.kwh) if self.saving_kwh is not None and self.kwh > 0 else None,
        }


def bep_efficiency(spec: PumpSpec) -> float:
    """Wire-to-water efficiency at the BEP from the description."""
    p = Pump(spec)
    if p.eff_tab is None:
        return 0.0
    return float(np.interp(p.bep, p.grid, p.eff_tab)) / p.inv_motor


def _row(asset: str, spec: PumpSpec, d: dict[str, float], start: float | None = None, end: float | None = None) -> EnergyRow:
    return EnergyRow(
        asset,
        float(d.get("energy_kwh", 0.0)),
        float(d.get("volume_m3", 0.0)),
        float(d.get("hydraulic_kwh", 0.0)),
        float(d.get("run_hours", 0.0)),
        int(d.get("starts", 0)),
        float(d.get("preferred_hours", 0.0)),
        float(d.get("allowable_hours", 0.0)),
        bep_efficiency(spec),
        spec.region.preferred,
        spec.region.allowable,
        start,
        end,
    )


def rows_from_totals(totals: dict[str, dict[str, float]], pumps: dict[str, PumpSpec]) -> list[EnergyRow]:
    """Rows from the gateway's totals (`<state_dir>/<gateway id>.pump-totals.json`): since counting began."""
    return [_row(a, spec, totals.get(a, {})) for a, spec in pumps.items()]


COUNTERS = ("energy_kwh", "volume_m3", "hydraulic_kwh", "run_hours", "starts", "preferred_hours", "allowable_hours")


def rows_from_rollups(
    rollups: Iterable[dict[str, Any]], pumps: dict[str, PumpSpec], since: float | None = None
) -> list[EnergyRow]:
    """Rows for a period from rollups as published (JSON objects with `asset`, `end`, `pump`):
    each counter's growth from the first rollup in the period to the last (a counter that went
    back, a totals file lost, starts again from there), and the efficiency's trend."""
    by: dict[str, list[tuple[float, dict[str, Any]]]] = {}
    for r in rollups:
        p = r.get("pump")
        asset = r.get("asset")
        if not isinstance(p, dict) or asset not in pumps:
            continue
        ts = _ts(r.get("end"))
        if ts is None or (since is not None and ts < since):
            continue
        by.setdefault(str(asset), []).append((ts, p))
    out = []
    for asset, spec in pumps.items():
        pts = sorted(by.get(asset, []), key=lambda x: x[0])
        if not pts:
            continue
        grown: dict[str, float] = dict.fromkeys(COUNTERS, 0.0)
        for (_, a), (_, b) in itertools.pairwise(pts):
            for k in COUNTERS:
                x, y = a.get(k), b.get(k)
                if isinstance(x, (int, float)) and isinstance(y, (int, float)):
                    grown[k] += y - x if y >= x else y  # went back: counted again from 0
        row = _row(asset, spec, grown, pts[0][0], pts[-1][0])
        eff = [(t, p["efficiency"]) for t, p in pts if isinstance(p.get("efficiency"), (int, float))]
        if len(eff) >= 6:
            t = np.array([e[0] for e in eff]) / 3600.0
            y = np.array([e[1] for e in eff]) * 100.0
            slope, lo, hi, _ = theil_sen(t - t[-1], y, 0.95)
            if lo[0] > 0 or hi[0] < 0:  # significant only
                row.efficiency_trend = float(slope[0]) * WEEK_H
            else:
                row.efficiency_trend = 0.0
        out.append(row)
    return out


def rows_from_history(
    path_or_cfg: Any, pumps: dict[str, PumpSpec], hop_s: dict[str, float], since: float, until: float | None = None
) -> list[EnergyRow]:
    """Rows for a period from the historian (history.query): the derived signals' bucket means
    and counts (one value a hop), so a bucket's energy is its mean kW over its hops' hours.
    Region hours and starts are told at the bucket's resolution (a minute, or an hour for long
    periods). A pump whose derived signals are not in history is left out."""
    from edgegw.history import query as hq

    want = ["electrical_kw", "hydraulic_kw", "efficiency", "bep_ratio"]
    out = []
    for asset, spec in pumps.items():
        try:
            t = hq.query(path_or_cfg, asset, [*want, spec.flow], since, until, points=5000)
        except KeyError:
            continue
        if not len(t.time):
            continue
        hop_h = hop_s[asset] / 3600.0
        sig = t.signals
        hours = {k: np.nan_to_num(sig[k]["count"]) * hop_h for k in ("electrical_kw", "efficiency")}
        mean = {k: np.asarray(sig[k]["mean"], dtype=float) for k in [*want, spec.flow]}
        run_h = hours["efficiency"]  # efficiency has a value while the pump runs
        ratio = mean["bep_ratio"]
        lo, hi = spec.region.preferred
        alo, ahi = spec.region.allowable
        with np.errstate(invalid="ignore"):
            pref = (ratio >= lo) & (ratio <= hi)
            allow = (ratio >= alo) & (ratio <= ahi)
        on = run_h > 0
        totals = {
            "energy_kwh": float(np.nansum(mean["electrical_kw"] * hours["electrical_kw"])),
            "hydraulic_kwh": float(np.nansum(mean["hydraulic_kw"] * hours["electrical_kw"])),
            "volume_m3": float(np.nansum(mean[spec.flow] * hours["electrical_kw"])),  # hop hours: flow counts readings
            "run_hours": float(run_h.sum()),
            "starts": float(np.count_nonzero(on[1:] & ~on[:-1]) + (1 if len(on) and on[0] else 0)),
            "preferred_hours": float(run_h[pref].sum()),
            "allowable_hours": float(run_h[allow].sum()),
        }
        row = _row(asset, spec, totals, float(t.time[0]), float(t.time[-1] + t.bucket_s))
        eff = mean["efficiency"]
        ok = np.isfinite(eff)
        if ok.sum() >= 6:
            th = (t.time[ok] - t.time[ok][-1]) / 3600.0
            slope, lo_s, hi_s, _ = theil_sen(th, eff[ok] * 100.0, 0.95)
            row.efficiency_trend = float(slope[0]) * WEEK_H if (lo_s[0] > 0 or hi_s[0] < 0) else 0.0
        out.append(row)
    return out


def _ts(v: Any) -> float | None:
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        try:
            return datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


def _pct(x: float) -> str:
    return f"{x * 100:.0f} %"


def sentences(r: EnergyRow) -> list[str]:
    """The row in plain words, a sentence each."""
    out = []
    if r.kwh <= 0 and r.run_hours <= 0:
        return [f"{r.asset}: no energy counted yet."]
    per = f" ({r.kwh_m3:.3f} kWh/m3)" if r.kwh_m3 is not None else ""
    out.append(
        f"{r.asset} used {r.kwh:,.1f} kWh to move {r.m3:,.0f} m3{per}, running {r.run_hours:,.1f} h with {r.starts} start(s)."
    )
    if r.run_hours > 0:
        lo, hi = r.preferred
        alo, ahi = r.allowable
        out.append(
            f"It ran {_pct(r.preferred_hours / r.run_hours)} of that time in its preferred region "
            f"({lo * 100:.0f}–{hi * 100:.0f} % of its best-efficiency flow) "
            f"and {_pct(r.allowable_hours / r.run_hours)} in the allowable one "
            f"({alo * 100:.0f}–{ahi * 100:.0f} %)."
        )
    if r.efficiency is not None:
        trend = ""
        if r.efficiency_trend is not None:
            if r.efficiency_trend == 0.0:
                trend = "; no significant trend"
            else:
                trend = f"; {'rising' if r.efficiency_trend > 0 else 'falling'} {abs(r.efficiency_trend):.1f} points a week"
        out.append(
            f"Wire-to-water efficiency was {r.efficiency:.2f} (at the best-efficiency point: {r.bep_efficiency:.2f}){trend}."
        )
    s = r.saving_kwh
    if s is not None and r.kwh > 0:
        if s < 0.005 * r.kwh:
            out.append("It ran as efficiently as at its best-efficiency point: nothing to save there.")
        else:
            out.append(
                f"At its best-efficiency point the same water would have taken {r.kwh - s:,.1f} kWh: "
                f"{s:,.1f} kWh ({_pct(s / r.kwh)}) to save."
            )
    return out


def _period(rows: list[EnergyRow]) -> str:
    starts = [r.start for r in rows if r.start is not None]
    ends = [r.end for r in rows if r.end is not None]
    if not starts or not ends:
        return "since the gateway began counting"
    fmt = "%Y-%m-%d %H:%M UTC"
    from datetime import UTC

    return (
        f"from {datetime.fromtimestamp(min(starts), UTC).strftime(fmt)} to {datetime.fromtimestamp(max(ends), UTC).strftime(fmt)}"
    )


def render_text(rows: list[EnergyRow], title: str = "Energy report") -> str:
    lines = [f"{title}, {_period(rows)}", ""]
    if not rows:
        return "\n".join([*lines, "No pump has counted any energy yet."]) + "\n"
    total = sum(r.kwh for r in rows)
    save = sum(r.saving_kwh or 0.0 for r in rows)
    for r in rows:
        lines += [*sentences(r), ""]
    if len(rows) > 1 and total > 0:
        lines.append(f"All pumps: {total:,.1f} kWh; at their best-efficiency points {save:,.1f} kWh ({_pct(save / total)}) less.")
    return "\n".join(lines).rstrip() + "\n"


def render_html(rows: list[EnergyRow], title: str = "Energy report") -> str:
    """A self-contained page (no scripts, no external files)."""
    e = html.escape
    head = [
        "Pump",
        "kWh",
        "m3",
        "kWh/m3",
        "Efficiency",
        "At BEP",
        "Run h",
        "Starts",
        "Preferred",
        "Allowable",
        "Trend pts/wk",
        "Saving kWh",
    ]
    body = []
    for r in rows:
        cells = [
            r.asset,
            f"{r.kwh:,.1f}",
            f"{r.m3:,.0f}",
            _opt(r.kwh_m3, ".3f"),
            _opt(r.efficiency, ".2f"),
            f"{r.bep_efficiency:.2f}",
            f"{r.run_hours:,.1f}",
            str(r.starts),
            _pct(r.preferred_hours / r.run_hours) if r.run_hours else "–",
            _pct(r.allowable_hours / r.run_hours) if r.run_hours else "–",
            _opt(r.efficiency_trend, "+.1f"),
            _opt(r.saving_kwh, ",.1f"),
        ]
        body.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in cells) + "</tr>")
    words = "".join(f"<p>{e(s)}</p>" for r in rows for s in sentences(r))
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{e(title)}</title><style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}"
        "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}td:first-child{text-align:left}</style></head><body>"
        f"<h1>{e(title)}</h1><p>{e(_period(rows))}</p>"
        "<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>" + "".join(body) + "</table>"
        f"{words}</body></html>\n"
    )


def _opt(x: float | None, fmt: str) -> str:
    return "–" if x is None or not math.isfinite(x) else format(x, fmt)
