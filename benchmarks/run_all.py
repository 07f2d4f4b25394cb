"""Run the whole benchmark suite, then write the table and the plots.

    python benchmarks/run_all.py            # full: about 25 minutes (soak 10 min)
    python benchmarks/run_all.py --quick    # under 2 minutes on an idle 2-core box
    taskset -c 0 python benchmarks/run_all.py --quick --tag pinned   # one core: the Pi-class projection

Order: ingest (finds the gateway's highest sustained rate) -> latency and soak at fractions of
that rate -> inference -> hot path -> footprint. Each script writes results/<name>.json (with
--tag T: <name>-T.json); this one adds results/summary[-T].json, results/TABLE[-T].md and
results/ingest[-T].png, latency_cdf[-T].png, soak[-T].png. Figures from the other benchmarks
(engine, models, outbox, opcua_coap) are added to the table when their JSON is present; run
them on their own (`--with-others` runs them here too, full mode only).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import RESULTS, machine  # noqa: E402

PY = sys.executable


def run(script: str, *args: str) -> None:
    t0 = time.monotonic()
    print(f"\n== {script} {' '.join(args)}", flush=True)
    r = subprocess.run([PY, str(HERE / script), *args], cwd=HERE.parent)
    print(f"== {script}: {time.monotonic() - t0:.0f} s, exit {r.returncode}", flush=True)
    if r.returncode != 0:
        raise SystemExit(f"{script} failed")


def load(name: str) -> dict[str, Any] | None:
    p = RESULTS / f"{name}.json"
    try:
        return dict(json.loads(p.read_text()))
    except (OSError, ValueError):
        return None


def fmt(v: Any, unit: str = "", digits: int = 1) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        v = round(v, digits)
        if digits == 0:
            v = int(v)
    return f"{v:,}{unit}" if isinstance(v, int | float) else f"{v}{unit}"


def table(tag: str) -> str:
    sfx = f"-{tag}" if tag else ""
    ing, lat, inf, hot, foot, soak = (load(n + sfx) for n in ("ingest", "latency", "inference", "hotpath", "footprint", "soak"))
    rows: list[tuple[str, str, str, str]] = []
    if ing:
        ms = ing["max_sustained"]
        ok = "✅" if (ing.get("ratio_gateway_vs_aiomqtt") or 0) >= 0.7 else "❌"
        rows.append(
            (
                f"Ingest, highest rate with zero loss ({ing['assets']} pumps x 6 signals, JSON, QoS 0)",
                f"**{fmt(ms['gateway'], ' msg/s', 0)}** ({fmt(ms['gateway'] * 6, ' readings/s', 0)})",
                f"bare aiomqtt {fmt(ms['aiomqtt'], '/s', 0)}"
                + (f", bare paho {fmt(ms['paho'], '/s', 0)}" if "paho" in ms else " (paho: burst only)"),
                f"{ok} {fmt(ing.get('ratio_gateway_vs_aiomqtt'))}x aiomqtt (target ≥ 0.7)",
            )
        )
        b = ing["burst"]
        ok = "✅" if (ing.get("burst_ratio_gateway_vs_aiomqtt") or 0) >= 0.7 else "❌"
        rows.append(
            (
                f"Ingest, burst of {ing['burst_messages']:,} drained (gateway: until the alert on the last reading)",
                f"**{fmt(b['gateway']['rate'], ' msg/s', 0)}**",
                f"bare aiomqtt {fmt(b['aiomqtt']['rate'], '/s', 0)}, bare paho {fmt(b['paho']['rate'], '/s', 0)}",
                f"{ok} {fmt(ing.get('burst_ratio_gateway_vs_aiomqtt'))}x aiomqtt",
            )
        )
    if lat:
        for lv in lat["levels"]:
            pct = round(lv["level"] * 100)
            target = ""
            if pct == 50:
                target = f"{'✅' if (lv['p99'] or 1e9) <= 10 else '❌'} p99 ≤ 10 ms"
            relay = lv.get("bare_aiomqtt_relay") or {}
            broker = lv.get("broker_round_trip") or {}
            rows.append(
                (
                    f"Publish → alert at {pct} % load ({fmt(lv['offered'], ' msg/s', 0)}, {lv['n']} probes)",
                    f"p50 **{fmt(lv['p50'], ' ms', 2)}**, p99 **{fmt(lv['p99'], ' ms', 2)}**, max {fmt(lv['max'], ' ms', 1)}",
                    f"bare aiomqtt relay on the same stream: p50 {fmt(relay.get('p50'), ' ms', 2)}, "
                    f"p99 {fmt(relay.get('p99'), ' ms', 2)}; broker alone p99 {fmt(broker.get('p99'), ' ms', 2)}",
                    target,
                )
            )
    if inf:
        for r in inf["rows"]:
            eh = r.get("engine_hop_shipped_model") or {}
            last = r is inf["rows"][-1]
            target = ""
            if last:
                p99 = eh.get("p99_us") or r["batched_onnx"]["p99_us"]
                target = (
                    f"{'✅' if r['speedup_p50'] >= 50 else '❌'} ≥ 50x; {'✅' if p99 <= 1000 else '❌'} ≤ 1 ms p99 (engine hop)"
                )
            rows.append(
                (
                    f"Features + both models, one hop, {r['assets']} asset(s)",
                    f"batched onnxruntime p50 **{fmt(r['batched_onnx']['p50_us'], ' µs', 0)}**, p99 "
                    f"{fmt(r['batched_onnx']['p99_us'], ' µs', 0)}; engine hop (shipped model, alarms, "
                    f"{fmt(eh.get('rate_hz'), ' Hz', 0)}) p50 "
                    f"{fmt(eh.get('p50_us'), ' µs', 0)}, p99 {fmt(eh.get('p99_us'), ' µs', 0)}",
                    f"scikit-learn per asset p50 {fmt(r['naive_sklearn_per_asset']['p50_us'] / 1000, ' ms', 1)}",
                    f"{fmt(r['speedup_p50'], 'x', 0)} {target}",
                )
            )
    if hot:
        for r in hot["rows"]:
            rows.append(
                (
                    f"Gateway CPU per message, no network ({r['assets']} pumps, model {'on' if r['model'] else 'off'})",
                    f"**{fmt(r['us_per_message'], ' µs', 1)}** ({fmt(r['messages_per_s_one_core'], ' msg/s', 0)} on one core)",
                    "",
                    "",
                )
            )
    if foot:
        imp = foot.get("imports_s", {})
        for r in foot["runs"]:
            ok = "✅" if r["rss_loaded_mb"] <= 120 and r["ready_s"] <= 2 else "❌"
            where = (
                f"install in `{foot['install']}`"
                if foot.get("install")
                else "development venv: demo and test tools installed too"
            )
            rows.append(
                (
                    f"Footprint, {r['assets_mqtt']} MQTT pump(s) + OPC UA source + CoAP server source ({where})",
                    f"RSS **{fmt(r['rss_loaded_mb'], ' MB')}** loaded ({fmt(r['rss_idle_mb'], ' MB')} idle), "
                    f"start → READY **{fmt(r['ready_s'], ' s', 2)}**"
                    + (f" (median of {r['ready_n']}, best {fmt(r['ready_best_s'], ' s', 2)})" if r.get("ready_n") else ""),
                    f"bare aiomqtt subscriber RSS {fmt(foot.get('bare_aiomqtt_rss_mb'), ' MB')}",
                    f"{ok} ≤ 120 MB, ≤ 2 s",
                )
            )
        rows.append(
            (
                f"Import time (fresh interpreter, best of {foot.get('import_reps', 3)})",
                f"`import edgegw.gateway` **{fmt(imp.get('import edgegw.gateway'), ' s', 2)}**; + onnxruntime "
                f"{fmt(imp.get('+ onnxruntime (a model configured)'), ' s', 2)}; + asyncua + aiocoap "
                f"{fmt(imp.get('+ aiocoap (a CoAP source)'), ' s', 2)}",
                f"`python -c pass` {fmt(imp.get('python -c pass'), ' s', 2)}",
                "",
            )
        )
    if soak:
        ok = "✅" if soak["lost"] == 0 else "❌"
        rows.append(
            (
                f"Soak, {soak['seconds']:.0f} s at {fmt(soak['offered_rate'], ' msg/s', 0)} (50 %), bridge + outbox on",
                f"lost **{soak['lost']}** of {soak['messages_sent']:,}; "
                f"RSS {soak['rss_start_mb']} → {soak['rss_end_mb']} MB "
                f"(2nd-half slope {fmt(soak['rss_slope_mb_per_h'], ' MB/h')}); outbox depth max "
                f"{soak['outbox_depth_max']}, file {fmt((soak['outbox_bytes_end'] or 0) / 1e6, ' MB', 2)}",
                f"loop lag max {fmt(soak['loop_lag_max_ms'], ' ms')}",
                f"{ok} zero loss",
            )
        )
    others = []
    if tag == "":
        eng = load("engine")
        if eng:
            others.append(f"engine only: {fmt(eng.get('ingest_readings_per_s'), ' readings/s', 0)} (bench_engine.py)")
        ob = load("outbox")
        if ob:
            others.append("outbox/bridge: see results/outbox.json (bench_outbox.py)")
        oc = load("opcua_coap")
        if oc:
            for r in oc.get("results", []):
                others.append(
                    f"{r['scenario']}: {fmt(r['readings_per_s'], ' readings/s', 0)} at "
                    f"{fmt(r['gateway_cpu_pct_of_one_core'], ' % of a core')} (bench_opcua_coap.py)"
                )
        md = load("models")
        if md:
            others.append("models: see results/models.json (bench_models.py)")
    m = (ing or lat or foot or {}).get("machine") or machine()
    whens = sorted({d["machine"]["when"] for d in (ing, lat, inf, hot, foot, soak) if d and "machine" in d})
    when = whens[0] if len(whens) < 2 else f"{whens[0]} to {whens[-1]}"
    out = [
        f"Measured {when} on {m.get('machine')}, {m.get('cpus')} CPUs, Python {m.get('python')}"
        + (", pinned to one core (`taskset -c 0`)" if tag else "")
        + ". Every row's reference ran in the same run.",
        "",
        "| what | edgegw | reference, same run | vs reference / target |",
        "|---|---|---|---|",
    ]
    out += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    if others:
        out += ["", "Other benchmarks (their own runs): " + "; ".join(others) + "."]
    return "\n".join(out) + "\n"


def plots(tag: str) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(no matplotlib: plots skipped; pip install 'edgegw[plot]')")
        return []
    sfx = f"-{tag}" if tag else ""
    made: list[Path] = []

    def save(fig: Any, name: str, ax: Any = None) -> None:
        """Legend and grid on `ax` (if given), then write results/<name><sfx>.png."""
        if ax is not None:
            ax.legend()
            ax.grid(alpha=0.3)
        path = RESULTS / f"{name}{sfx}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        made.append(path)

    ing = load("ingest" + sfx)
    if ing and ing.get("sweep"):
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        top = 0
        for c, style in (("aiomqtt", "o--"), ("paho", "s--"), ("gateway", "D-")):
            pts = ing["sweep"].get(c)
            if not pts:
                continue
            xs = [p["offered"] for p in pts]
            ys = [p["rate"] for p in pts]
            top = max(top, *xs, *ys)
            ax.plot(xs, ys, style, label=f"{'edgegw (full gateway)' if c == 'gateway' else 'bare ' + c}")
            bad = [(x, y) for x, y, p in zip(xs, ys, pts, strict=True) if not p["sustained"]]
            if bad:
                ax.plot(*zip(*bad, strict=True), "x", color="red", ms=9)
        ax.plot([0, top], [0, top], ":", color="grey", label="offered = handled")
        ax.set_xlabel("offered load (msg/s, 6 signals each)")
        ax.set_ylabel("handled (msg/s)")
        ax.set_title("Sustained vs offered (x: not sustained)")
        save(fig, "ingest", ax)
    lat = load("latency" + sfx)
    if lat:
        import numpy as np

        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        series = [("no load", lat.get("idle", {}).get("samples_ms", []))]
        series += [(f"{int(lv['level'] * 100)} % ({lv['offered']:,}/s)", lv["samples_ms"]) for lv in lat["levels"]]
        mid = next((lv for lv in lat["levels"] if abs(lv["level"] - 0.5) < 1e-9), None)
        if mid and mid.get("relay_samples_ms"):
            series.append(("bare aiomqtt relay, 50 %", mid["relay_samples_ms"]))
        for label, s in series:
            if s:
                a = np.sort(np.asarray(s))
                ax.plot(a, np.arange(1, len(a) + 1) / len(a), label=label)
        ax.axvline(10, color="red", ls=":", label="10 ms")
        ax.set_xscale("log")
        ax.set_xlabel("publish → alert received (ms)")
        ax.set_ylabel("fraction of probes")
        ax.set_title("Alert latency CDF")
        save(fig, "latency_cdf", ax)
    soak = load("soak" + sfx)
    if soak and soak.get("samples"):
        s = soak["samples"]
        fig, ax = plt.subplots(figsize=(6.4, 3.6))
        ax.plot([x["t"] for x in s], [x["rss_mb"] for x in s], label="RSS (MB)")
        ax.set_xlabel("s")
        ax.set_ylabel("MB")
        ax2 = ax.twinx()
        ax2.plot([x["t"] for x in s], [(x["outbox_bytes"] or 0) / 1e6 for x in s], color="tab:orange", label="outbox file (MB)")
        ax2.set_ylabel("outbox file MB")
        ax.set_title("Soak at 50 % load")
        fig.legend(loc="lower right")
        save(fig, "soak")
    return made


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="short runs: under 2 minutes on an idle 2-core box")
    ap.add_argument("--tag", default="", help="suffix for result files, e.g. pinned")
    ap.add_argument("--soak-seconds", type=float, help="soak length (default 600; quick 12)")
    ap.add_argument("--only", help="comma-separated subset: ingest,latency,soak,inference,hotpath,footprint")
    ap.add_argument("--with-others", action="store_true", help="also run bench_engine/models/outbox/opcua_coap")
    ap.add_argument("--report-only", action="store_true", help="only rebuild the table and plots from JSON")
    ap.add_argument(
        "--venv",
        help="footprint of the edgegw installed in this venv, e.g. a production install "
        "(python3 -m venv DIR && DIR/bin/pip install '.[opcua,coap]' paho-mqtt pyyaml)",
    )
    args = ap.parse_args()
    t0 = time.monotonic()
    sfx = f"-{args.tag}" if args.tag else ""
    q = ["--quick"] if args.quick else []
    only = set(args.only.split(",")) if args.only else {"ingest", "latency", "soak", "inference", "hotpath", "footprint"}
    if not args.report_only:
        if "ingest" in only:
            run("bench_ingest.py", *q, "--name", "ingest" + sfx)
        ing = load("ingest" + sfx)
        rate = (ing or {}).get("max_sustained", {}).get("gateway") or 0
        if not rate:  # nothing sustained: fall back to the burst drain rate
            rate = int(((ing or {}).get("burst", {}).get("gateway") or {}).get("rate") or 5000)
        if "latency" in only:
            run("bench_latency.py", *q, "--rate", str(rate), "--name", "latency" + sfx)
        if "inference" in only:
            run("bench_inference.py", *q, "--name", "inference" + sfx)
        if "hotpath" in only:
            run("bench_hotpath.py", *q, *(["--repeat", "1"] if args.quick else []), "--name", "hotpath" + sfx)
        if "footprint" in only:
            run("bench_footprint.py", *q, *(["--venv", args.venv] if args.venv else []), "--name", "footprint" + sfx)
        if "soak" in only:
            secs = args.soak_seconds or (12.0 if args.quick else 600.0)
            run("bench_soak.py", "--seconds", str(secs), "--rate", str(rate), "--name", "soak" + sfx)
        if args.with_others and not args.quick:
            for s in ("bench_engine.py", "bench_models.py", "bench_outbox.py", "bench_opcua_coap.py"):
                if (HERE / s).exists():
                    run(s)
    md = table(args.tag)
    cmd = (
        "python benchmarks/run_all.py"
        + (" --quick" if args.quick else "")
        + (f" --tag {args.tag}" if args.tag else "")
        + (f" --only {args.only}" if args.only else "")
        + (f" --venv {args.venv}" if args.venv else "")
        + (" --report-only" if args.report_only else "")
    )
    if args.tag == "pinned":
        cmd = "taskset -c 0 " + cmd
    made_by = [cmd]
    old = RESULTS / f"TABLE{sfx}.md"
    if (args.only or args.report_only) and old.exists():  # a partial run: keep the history of what made the rest
        first = old.read_text().splitlines()[0]
        if first.startswith("<!-- made by: "):
            prev = first.removeprefix("<!-- made by: ").removesuffix(" -->")
            made_by = [prev] if prev.endswith(cmd) else [prev, cmd]
    (RESULTS / f"TABLE{sfx}.md").write_text(f"<!-- made by: {'; then '.join(dict.fromkeys(made_by))} -->\n{md}")
    (RESULTS / f"summary{sfx}.json").write_text(
        json.dumps(
            {
                "machine": machine(),
                "command": cmd,
                "affinity": sorted(os.sched_getaffinity(0)),
                "seconds": round(time.monotonic() - t0),
                "table_md": md,
            },
            indent=2,
        )
    )
    made = plots(args.tag)
    print("\n" + md)
    print(f"wrote {RESULTS / f'TABLE{sfx}.md'}, {', '.join(str(p.name) for p in made)} in {time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    main()
