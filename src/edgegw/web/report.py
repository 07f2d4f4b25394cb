"""`edgegw report`: one self-contained HTML file about the assets over a period, from history.

    edgegw report -c /etc/edgegw/config.yaml --since 7d --out report.html [--asset pump-2 ...]

Per asset: data availability and time in alarm, alarms by kind and cause with counts and
durations, the models' verdicts, trends of every signal with its limits and alarm spans (inline
SVG: no script, no image files, no fonts), and the top events of the period. `--out x.pdf`
prints it with a headless Chromium where one is installed; any browser prints the HTML (File >
Print > Save as PDF; each asset starts a page).
"""

from __future__ import annotations

import argparse
import html
import math
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from edgegw.config import GatewayConfig
from edgegw.history import query as hq
from edgegw.web.trends import tier_for

POINTS = 1500  # buckets per chart: a day in minutes, a week in hours; the tier is picked to fit
W, H, PAD_L, PAD_R, PAD_T, PAD_B = 720, 150, 52, 12, 10, 22
MODEL_KINDS = ("anomaly", "failure_risk")
KIND_TEXT = {
    "threshold": "limit",
    "stale": "silent signal",
    "quality": "bad readings",
    "anomaly": "unlike normal",
    "failure_risk": "failure risk",
}


def e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def short(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%m-%d %H:%M")


def dur(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    if s < 172800:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} d"


@dataclass
class AssetReport:
    asset: str
    since: float
    until: float
    trend: hq.Trend | None
    fine: hq.Trend | None = None  # the finest tier holding the period in 20,000 buckets: availability, verdicts
    available: float = 0.0  # share of the period with readings
    in_alarm: float = 0.0  # share of the period with at least one alarm active
    alarms: list[hq.AlarmSpan] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    energy: list[str] = field(default_factory=list)  # the pump's energy in plain words (pump/report.py)


def gather(path: Path, cfg: GatewayConfig, asset: str, since: float, until: float) -> AssetReport:
    try:
        t = hq.query(
            path, asset, since=since, until=until, points=POINTS, tier=tier_for(until - since, cfg.history.fine_s, POINTS)
        )
        fine = hq.query(path, asset, since=since, until=until, tier=tier_for(until - since, cfg.history.fine_s, 20000))
    except (hq.HistoryUnavailable, KeyError):
        return AssetReport(asset, since, until, None)
    r = AssetReport(asset, since, until, t, fine, alarms=t.alarms)
    span = max(until - since, 1.0)
    if len(fine.time):  # the finest tier that holds the period in 20,000 buckets: 10 s for a day, 1 min for a week
        counts = np.nansum(np.vstack([cols["count"] for cols in fine.signals.values()]), axis=0)
        r.available = min(1.0, float((counts > 0).sum()) * fine.bucket_s / span)
    r.in_alarm = _union([(max(a.start, since), min(a.end if a.end is not None else until, until)) for a in t.alarms]) / span
    r.events = [j for j in hq.journal(path, since, until, asset) if j["event"] not in ("raised", "cleared")]
    return r


def _union(spans: list[tuple[float, float]]) -> float:
    total, end = 0.0, -math.inf
    for a, b in sorted(spans):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


def _cause(a: hq.AlarmSpan) -> str:
    """The named cause of a failure-risk alarm (its message says `failure risk 0.96: bearing_wear`)."""
    if a.kind == "failure_risk" and ":" in a.message:
        return a.message.rsplit(":", 1)[1].strip().replace("_", " ")
    return a.source


# -- SVG


def _path(xs: np.ndarray, ys: np.ndarray) -> str:
    parts, pen = [], False
    for x, y in zip(xs.tolist(), ys.tolist(), strict=True):
        if not math.isfinite(y):
            pen = False
            continue
        parts.append(f"{'L' if pen else 'M'}{x:.1f},{y:.1f}")
        pen = True
    return "".join(parts)


def svg_chart(
    t: np.ndarray,
    mean: np.ndarray,
    lo: np.ndarray | None,
    hi: np.ndarray | None,
    since: float,
    until: float,
    limits: dict[str, float],
    spans: list[tuple[float, float]],
    label: str,
) -> str:
    """A small line chart: the mean, the min-max band, limits dashed, alarm spans shaded."""
    vals = [v for a in (mean, lo, hi) if a is not None for v in a[np.isfinite(a)].tolist()]
    vals += list(limits.values())
    if not vals:
        return f'<p class="muted">{e(label)}: no readings in this period.</p>'
    y0, y1 = min(vals), max(vals)
    if y1 - y0 < 1e-9:
        y0, y1 = y0 - 1, y1 + 1
    pad = (y1 - y0) * 0.06
    y0, y1 = y0 - pad, y1 + pad
    pw, ph = W - PAD_L - PAD_R, H - PAD_T - PAD_B

    def X(v: Any) -> Any:
        return PAD_L + (np.asarray(v, dtype=float) - since) / max(until - since, 1e-9) * pw

    def Y(v: Any) -> Any:
        return PAD_T + (y1 - np.asarray(v, dtype=float)) / (y1 - y0) * ph

    out = [f'<svg viewBox="0 0 {W} {H}" width="100%" role="img" aria-label="{e(label)}" xmlns="http://www.w3.org/2000/svg">']
    out.append(f'<rect x="{PAD_L}" y="{PAD_T}" width="{pw}" height="{ph}" fill="#f4f4f4" stroke="#bbb"/>')
    for a, b in spans:
        xa, xb = float(X(max(a, since))), float(X(min(b, until)))
        if xb > xa:
            out.append(
                f'<rect x="{xa:.1f}" y="{PAD_T}" width="{max(xb - xa, 1):.1f}" height="{ph}" fill="#f2b705" fill-opacity="0.25"/>'
            )
    if lo is not None and hi is not None:
        ok = np.isfinite(lo) & np.isfinite(hi)
        if ok.any():
            xs, top, bot = X(t[ok]), Y(hi[ok]), Y(lo[ok])
            pts = " ".join(
                f"{x:.1f},{y:.1f}"
                for x, y in zip([*xs.tolist(), *xs.tolist()[::-1]], [*top.tolist(), *bot.tolist()[::-1]], strict=True)
            )
            out.append(f'<polygon points="{pts}" fill="#9a9a9a" fill-opacity="0.35" stroke="none"/>')
    out.append(f'<path d="{_path(X(t), Y(mean))}" fill="none" stroke="#222" stroke-width="1.2"/>')
    for name, v in limits.items():
        y = float(Y(v))
        colour = "#c8102e" if name in ("hihi", "lolo") else "#c77c00"
        out.append(f'<line x1="{PAD_L}" x2="{W - PAD_R}" y1="{y:.1f}" y2="{y:.1f}" stroke="{colour}" stroke-dasharray="5,4"/>')
        out.append(f'<text x="{W - PAD_R - 2}" y="{y - 2:.1f}" text-anchor="end" class="lim">{e(name)} {v:g}</text>')
    for v in (y0 + pad, (y0 + y1) / 2, y1 - pad):
        out.append(f'<text x="{PAD_L - 4}" y="{float(Y(v)) + 4:.1f}" text-anchor="end">{v:.3g}</text>')
    for i in range(5):
        ts = since + (until - since) * i / 4
        fmt = "%m-%d %H:%M" if until - since > 86400 else "%H:%M"
        anchor = "start" if i == 0 else "end" if i == 4 else "middle"
        out.append(
            f'<text x="{float(X(ts)):.1f}" y="{H - 6}" text-anchor="{anchor}">'
            f"{e(datetime.fromtimestamp(ts, UTC).strftime(fmt))}</text>"
        )
    out.append(f'<text x="{PAD_L + 4}" y="{PAD_T + 12}" class="t">{e(label)}</text></svg>')
    return "".join(out)


# -- HTML

CSS = """
body{font:13px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1e1e1e;
  margin:24px auto;max-width:780px;padding:0 12px}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 6px;border-bottom:2px solid #444;padding-bottom:2px}
h3{font-size:13px;margin:14px 0 4px;color:#444;text-transform:uppercase;letter-spacing:.03em}
table{border-collapse:collapse;width:100%;margin:4px 0}
td,th{border-bottom:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#eee}td:first-child,td.nw,td.n{white-space:nowrap}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}.muted{color:#666}
.bad{color:#b00020;font-weight:600}.warn{color:#8a5a00;font-weight:600}
svg text{font-size:10px;fill:#444}svg text.t{font-weight:600;fill:#222;font-size:11px}svg text.lim{fill:#8a5a00}
section.asset{page-break-before:always}@media print{body{margin:0}a{color:inherit;text-decoration:none}}
"""


def render(cfg: GatewayConfig, reports: list[AssetReport], since: float, until: float, top: list[dict[str, Any]]) -> str:
    g = cfg.gateway
    out = [
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>edgegw report {e(g.id)}</title>'
        f"<style>{CSS}</style></head><body>",
        f"<h1>Pump house report — {e(g.id)} · site {e(g.site)}</h1>",
        f'<p class="muted">{e(when(since))} – {e(when(until))} ({e(dur(until - since))}); '
        f"made {e(when(time.time()))} by edgegw from the gateway's history.</p>",
        "<h2>Summary</h2><table><tr><th>asset</th><th class=n>readings</th><th class=n>in alarm</th><th class=n>alarms</th>"
        "<th class=n>critical</th><th>models</th></tr>",
    ]
    for r in reports:
        crit = sum(1 for a in r.alarms if a.severity == "critical")
        cls = "bad" if crit else "warn" if r.alarms else ""
        out.append(
            f'<tr><td><a href="#{e(r.asset)}">{e(r.asset)}</a></td><td class=n>{r.available:.1%}</td>'
            f'<td class="n {cls}">{r.in_alarm:.1%}</td><td class=n>{len(r.alarms)}</td><td class=n>{crit}</td>'
            f"<td>{e(_verdict(r))}</td></tr>"
        )
    out.append("</table>")
    out.append("<h3>Top events</h3>" + _top_table(top))
    for r in reports:
        out.append(_asset(cfg, r))
    out.append(
        '<p class="muted">To print or keep as PDF: File › Print › Save as PDF (each asset starts a page), or '
        "<code>chromium --headless --print-to-pdf=report.pdf report.html</code>.</p></body></html>"
    )
    return "".join(out)


def _verdict(r: AssetReport) -> str:
    t = r.fine
    if t is None or not np.isfinite(t.anomaly).any():
        return "not judged"
    parts = []
    judged = np.isfinite(t.anomaly)
    over = judged & np.isfinite(t.threshold) & (t.anomaly > t.threshold)
    parts.append(f"unlike normal in {over.sum() / max(judged.sum(), 1):.1%} of {dur(t.bucket_s)} buckets")
    if np.isfinite(t.risk).any():
        causes = Counter(c for c in t.cause if c and c != "normal")
        peak = float(np.nanmax(t.risk))
        named = ", ".join(
            f"{c.replace('_', ' ')} {n * t.bucket_s / max(r.until - r.since, 1):.1%}" for c, n in causes.most_common(3)
        )
        parts.append(f"failure risk peak {peak:.0%}" + (f"; named cause {named} of the time" if named else ""))
    return "; ".join(parts)


def _top_table(top: list[dict[str, Any]]) -> str:
    if not top:
        return '<p class="muted">No alarms in this period.</p>'
    rows = "".join(
        f"<tr><td>{e(x['asset'])}</td><td>{e(KIND_TEXT.get(x['kind'], x['kind']))}: {e(x['cause'])}</td>"
        f"<td class=n>{x['count']}</td><td class=nw>{e(short(x['first']))}</td><td class=n>{e(dur(x['total']))}</td>"
        f"<td class=n>{e(dur(x['longest']))}{' (active)' if x['active'] else ''}</td><td>{e(x['message'])}</td></tr>"
        for x in top
    )
    return (
        "<table><tr><th>asset</th><th>alarm</th><th class=n>times</th><th>first</th><th class=n>total</th>"
        f"<th class=n>longest</th><th>last message</th></tr>{rows}</table>"
    )


def _asset(cfg: GatewayConfig, r: AssetReport) -> str:
    out = [f'<section class="asset" id="{e(r.asset)}"><h2>{e(r.asset)}</h2>']
    if r.trend is None:
        out.append('<p class="muted">No history for this asset in the period.</p></section>')
        return "".join(out)
    t = r.trend
    out.append(
        f"<p>Readings in {r.available:.1%} of the period; at least one alarm active {r.in_alarm:.1%} of the time "
        f"({e(dur(r.in_alarm * (r.until - r.since)))}). Models: {e(_verdict(r))}.</p>"
    )
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    for a in r.alarms:
        groups[(a.kind, _cause(a))].append(min(a.end if a.end is not None else r.until, r.until) - max(a.start, r.since))
    if groups:
        out.append(
            "<h3>Alarms by kind and cause</h3><table><tr><th>kind</th><th>cause / signal</th>"
            "<th class=n>count</th><th class=n>total</th><th class=n>longest</th></tr>"
        )
        for (kind, cause), ds in sorted(groups.items(), key=lambda kv: -sum(kv[1])):
            out.append(
                f"<tr><td>{e(KIND_TEXT.get(kind, kind))}</td><td>{e(cause)}</td><td class=n>{len(ds)}</td>"
                f"<td class=n>{e(dur(sum(ds)))}</td><td class=n>{e(dur(max(ds)))}</td></tr>"
            )
        out.append("</table>")
    else:
        out.append('<p class="muted">No alarms in this period.</p>')
    profile = next((cfg.profiles[a.profile] for a in cfg.assets if a.id == r.asset), None)
    out.append(f"<h3>Trends ({e(t.tier)} buckets of {e(dur(t.bucket_s))}; line: mean, band: min–max, shaded: alarms)</h3>")
    if r.energy:
        out.append("<h3>Energy</h3>" + "".join(f"<p>{e(line)}</p>" for line in r.energy))
    for sig, cols in t.signals.items():
        if profile is not None and sig not in profile.signals:
            continue  # derived pump signals: summed up under Energy, drawn on the page
        spec = profile.signals.get(sig) if profile else None
        limits = {
            k: float(v) for k in ("hihi", "hi", "lo", "lolo") if spec is not None and (v := getattr(spec, k, None)) is not None
        }
        spans = [(a.start, a.end if a.end is not None else r.until) for a in r.alarms if a.source == sig or a.kind in MODEL_KINDS]
        unit = f" ({spec.unit})" if spec is not None and spec.unit else ""
        out.append(
            svg_chart(
                t.time, cols["mean"], cols["min"], cols["max"], r.since, r.until, limits, spans, sig.replace("_", " ") + unit
            )
        )
    if np.isfinite(t.anomaly).any():
        thr = t.threshold[np.isfinite(t.threshold)]
        limits = {"threshold": float(thr[-1])} if len(thr) else {}
        spans = [(a.start, a.end if a.end is not None else r.until) for a in r.alarms if a.kind == "anomaly"]
        out.append(svg_chart(t.time, t.anomaly, None, None, r.since, r.until, limits, spans, "anomaly score (max per bucket)"))
    if r.events:
        out.append(
            "<h3>Acknowledgements, shelves and other events</h3>"
            "<table><tr><th>when</th><th>event</th><th>alarm</th><th>by</th><th>note</th></tr>"
        )
        for j in r.events[-50:]:
            out.append(
                f"<tr><td>{e(when(j['ts']))}</td><td>{e(j['event'])}</td><td>{e(j['kind'])}/{e(j['source'])}</td>"
                f"<td>{e(j['by'])}</td><td>{e(j['note'])}</td></tr>"
            )
        out.append("</table>")
    out.append("</section>")
    return "".join(out)


def top_events(reports: list[AssetReport], n: int = 12) -> list[dict[str, Any]]:
    """The period's alarms grouped by asset, kind and cause, critical first, then by time in alarm."""
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in reports:
        for a in r.alarms:
            took = min(a.end if a.end is not None else r.until, r.until) - max(a.start, r.since)
            g = groups.setdefault(
                (r.asset, a.kind, _cause(a)),
                {
                    "asset": r.asset,
                    "kind": a.kind,
                    "cause": _cause(a),
                    "count": 0,
                    "first": a.start,
                    "total": 0.0,
                    "longest": 0.0,
                },
            )
            g["count"] += 1
            g["total"] += took
            g["longest"] = max(g["longest"], took)
            g["active"] = a.end is None
            g["message"] = a.message
            g["critical"] = g.get("critical", False) or a.severity == "critical"
    rows = sorted(groups.values(), key=lambda x: (not x["critical"], -x["total"]))
    return rows[:n]


def build(cfg: GatewayConfig, path: Path, since: float, until: float, assets: list[str] | None = None) -> str:
    ids = assets or [a.id for a in cfg.assets]
    reports = [gather(path, cfg, a, since, until) for a in ids]
    _energy(cfg, path, reports, since, until)
    return render(cfg, reports, since, until, top_events(reports))


def _energy(cfg: GatewayConfig, path: Path, reports: list[AssetReport], since: float, until: float) -> None:
    """Energy, time per region and the saving at the best-efficiency point, for assets with a pump
    description, from the derived signals history kept."""
    from edgegw.config.pump import pumps_of
    from edgegw.pump.report import rows_from_history, sentences

    pumps = {a: spec for a, spec in pumps_of(cfg.assets, cfg.profiles).items() if any(r.asset == a for r in reports)}
    if not pumps:
        return
    hop_s = {a.id: cfg.profiles[a.profile].hop_s for a in cfg.assets}
    rows = {row.asset: row for row in rows_from_history(path, pumps, hop_s, since, until)}
    for r in reports:
        if r.asset in rows:
            r.energy = sentences(rows[r.asset])


# -- `edgegw report`


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", required=True, help="the gateway's config (its assets, limits and history file)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    p.add_argument("--file", metavar="FILE", help="the history file itself (default: the config's)")
    p.add_argument("--since", default="7d", help="from: 24h, 7d, or an ISO 8601 time (default 7d)")
    p.add_argument("--until", default="now", help="to: the same forms (default now)")
    p.add_argument("--asset", action="append", default=None, help="only this asset (repeat; default all)")
    p.add_argument("--out", required=True, help="the file to write: .html, or .pdf (printed by a headless Chromium if installed)")


def main(args: argparse.Namespace) -> int:
    from edgegw.config import EX_CONFIG, ConfigError, load_config
    from edgegw.notify.journal import parse_since

    try:
        cfg = load_config(args.config, args.set)
    except ConfigError as err:
        print("\n".join(err.problems), file=sys.stderr)
        return EX_CONFIG
    try:
        since = parse_since(args.since)
        until = time.time() if args.until == "now" else parse_since(args.until)
    except ValueError as err:
        print(f"edgegw report: {err}", file=sys.stderr)
        return 2
    known = {a.id for a in cfg.assets}
    unknown = sorted(set(args.asset or []) - known)
    if unknown:
        print(f"edgegw report: unknown asset(s) {', '.join(unknown)} (have {', '.join(sorted(known))})", file=sys.stderr)
        return 2
    try:
        path = Path(args.file) if args.file else hq.history_path(cfg)
        if not path.is_file():
            raise hq.HistoryUnavailable(f"no history at {path}")
    except hq.HistoryUnavailable as err:
        print(f"edgegw report: {err}", file=sys.stderr)
        return 1
    text = build(cfg, path, since, until, args.asset)
    out = Path(args.out)
    if out.suffix.lower() == ".pdf":
        problem = to_pdf(text, out)
        if problem:
            print(f"edgegw report: {problem}", file=sys.stderr)
            return 1
    else:
        out.write_text(text, encoding="utf-8")
    print(f"{out}: {out.stat().st_size / 1024:.0f} KB, {len(args.asset or known)} asset(s), {when(since)} – {when(until)}")
    return 0


BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def to_pdf(text: str, out: Path) -> str | None:
    """Print the HTML to PDF with a headless Chromium where one is installed; else what to do."""
    import os
    import shutil
    import subprocess
    import tempfile

    exe = next((p for b in BROWSERS if (p := shutil.which(b))), None)
    if exe is None:
        return "no Chromium to print a PDF with: write .html and print it from a browser (Save as PDF)"
    with tempfile.TemporaryDirectory(prefix="edgegw-report-") as d:
        html = Path(d) / "report.html"
        html.write_text(text, encoding="utf-8")
        argv = [
            exe,
            "--headless=new",
            "--disable-gpu",
            "--no-pdf-header-footer",
            f"--user-data-dir={d}/profile",
            f"--print-to-pdf={out.resolve()}",
        ]
        if os.geteuid() == 0:
            argv.append("--no-sandbox")  # Chromium refuses root otherwise; the page is our own, script-free
        try:
            r = subprocess.run([*argv, html.as_uri()], capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"{exe} could not print the PDF: {e}"
    if r.returncode != 0 or not out.is_file():
        return f"{exe} could not print the PDF (exit {r.returncode}): {r.stderr.strip()[-300:]}"
    return None
