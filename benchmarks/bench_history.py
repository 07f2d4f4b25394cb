"""What history costs and what it keeps: the real daemon with and without history, the file's
growth, and query times.

    python benchmarks/bench_history.py [--seconds 40] [--quick]

1. CPU per message and RSS of `edgegw run` at 50 pumps x 6 signals x 2 Hz (100 msg/s), history
   off, then on (same config, a state directory), plus publish -> alert latency of a hihi probe
   reading sent every second meanwhile (p50/p99).
2. Bytes per asset-day in each tier, from an hour of 50 pumps replayed through the engine and
   the historian into a real file (event time: seconds of wall time), and a year of the default
   tiers (fine 7 d, minute 90 d, hour 365 d, features 7 d) for 50 pumps.
3. Query times on a file holding 30 days of 50 pumps (fine 7 d, minute 30 d, hour 30 d): 30 d
   of one signal and 7 d of six signals of one pump at tier auto.

Writes benchmarks/results/history.json.
"""

from __future__ import annotations

import argparse
import math
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, write

SIGNALS = ("vibration", "pressure", "temperature", "flow", "current", "suction_pressure")


def daemon(history: bool, seconds: float) -> dict[str, Any]:
    """The gateway at 50 pumps x 2 Hz for `seconds`: its CPU per message, RSS, alert latency."""
    import _rig
    import paho.mqtt.client as mqtt

    wd = _rig.workdir("history")
    broker = _rig.broker(wd)
    state = wd / "state"
    state.mkdir()

    def mutate(d: dict[str, Any]) -> None:
        d["gateway"]["state_dir"] = str(state)
        d["history"] = {"enabled": history}

    cfg = _rig.gateway_config(wd, 50, mutate=mutate, name=f"history-{'on' if history else 'off'}.yaml")
    w = _rig.Watcher(broker.port)
    lat: list[float] = []
    sent: dict[str, float] = {}

    def on_alert(now: float, d: dict[str, Any]) -> None:
        if d.get("asset") == _rig.PROBE and d.get("state") == "raised" and "t" in sent:
            lat.append(now - sent.pop("t"))

    w.on_alert = on_alert
    gw = _rig.Gateway(cfg, broker.port, w, wd)
    try:
        time.sleep(2.0)
        rss0 = gw.rss_mb()
        lg = _rig.loadgen(broker.port, 50, 100.0, seconds, sentinel=False)
        probe = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        probe.connect("127.0.0.1", broker.port)
        probe.loop_start()
        stop = threading.Event()

        def probes() -> None:
            fmt = (
                '{{"ts":{ts:.3f},"vibration":{v},"pressure":5.0,"temperature":55.0,'
                '"flow":60.0,"current":30.0,"suction_pressure":1.2}}'
            )
            i = 0
            while not stop.wait(0.5):
                i += 1
                v = 12.5 if i % 2 else 3.0  # raise, clear, raise ...
                if v > 10:
                    sent["t"] = time.perf_counter()
                probe.publish(f"plant/pumps/{_rig.PROBE}/telemetry", fmt.format(ts=time.time(), v=v), qos=0)

        time.sleep(3.0)  # warm: windows filled, first flushes done
        c0, t0 = _rig.cpu_s(gw.pid), time.monotonic()
        th = threading.Thread(target=probes, daemon=True)
        th.start()
        res = _rig.loadgen_result(lg, seconds + 60)
        c1, t1 = _rig.cpu_s(gw.pid), time.monotonic()
        stop.set()
        th.join()
        probe.loop_stop()
        probe.disconnect()
        msgs = res["sent"] * (t1 - t0) / max(res["seconds"], 1e-9)  # the messages inside the CPU window
        m = w.next_metrics(5.0) or {}
        out = {
            "history": history,
            "messages": res["sent"],
            "cpu_s": round(c1 - c0, 3),
            "cpu_us_per_message": round((c1 - c0) / max(msgs, 1) * 1e6, 1),
            "cpu_percent": round((c1 - c0) / (t1 - t0) * 100, 2),
            "rss_idle_mb": round(rss0, 1),
            "rss_mb": round(gw.rss_mb(), 1),
            "alert_p50_ms": round(float(np.percentile(lat, 50)) * 1000, 2) if lat else None,
            "alert_p99_ms": round(float(np.percentile(lat, 99)) * 1000, 2) if lat else None,
            "alerts": len(lat),
            "history_stats": (m.get("sinks") or {}).get("history"),
        }
    finally:
        gw.close()
        w.close()
        broker.stop()
    return out


def disk(hours: float) -> dict[str, Any]:
    """Bytes per asset-day per table, from `hours` of 50 pumps replayed into a real file."""
    from edgegw.config import load_config
    from edgegw.engine.engine import Engine
    from edgegw.gateway import load_models
    from edgegw.history.store import Historian

    over = ["assets=[" + ",".join(f"{{id: pump-{i + 1}, profile: pump}}" for i in range(50)) + "]"]
    cfg = load_config(ROOT / "config" / "example.yaml", over)
    d = Path(tempfile.mkdtemp(prefix="edgegw-bench-history-disk-"))
    h = Historian(cfg, d / "history.db")
    e = Engine(cfg, h.alert, load_models(cfg, str(ROOT / "config" / "example.yaml")), clock=lambda: 0.0)
    e.on_hop = h.hop
    t0 = math.floor(time.time() / 3600) * 3600 - hours * 3600
    rng = np.random.default_rng(1)
    base = np.array([3.0, 5.0, 55.0, 60.0, 30.0, 1.2])
    n = int(hours * 3600 * 2)
    c0 = time.process_time()
    for i in range(n):
        ts = t0 + i * 0.5
        vals = base + rng.normal(0, 0.05, (50, 6))
        for a in range(50):
            row = vals[a].tolist()
            for j, s in enumerate(SIGNALS):
                e.ingest(f"pump-{a + 1}", s, ts, row[j])
        e.run_hops()
        if i % 10 == 9:  # a flush per 5 s of event time
            h.writer.write(h.take())
    h.writer.write(h.take())
    assert h.writer.db is not None
    h.writer.roll_up(h.writer.db)  # the minutes and hours not built yet
    cpu = time.process_time() - c0
    db = sqlite3.connect(d / "history.db")
    try:
        sizes = dict(db.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall())
    except sqlite3.Error:
        sizes = {}
    rows = {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("agg_fine", "agg_minute", "agg_hour", "features")}
    file_bytes = (d / "history.db").stat().st_size
    db.close()
    asset_days = 50 * hours / 24
    per_row = {t: sizes.get(t, 0) / max(rows[t], 1) for t in rows}
    for t in ("agg_minute", "agg_hour"):  # too few rows to fill pages: they are laid out as the fine ones
        if rows[t] < 1000:
            per_row[t] = per_row["agg_fine"]
    per_day = {  # rows an asset keeps per day in each table, times bytes per row
        "agg_fine": 86400 / cfg.history.fine_s * per_row["agg_fine"],
        "agg_minute": 1440 * per_row["agg_minute"],
        "agg_hour": 24 * per_row["agg_hour"],
        "features": 86400 / (cfg.profiles["pump"].hop_s * cfg.history.features_every_hops) * per_row["features"],
    }
    hc = cfg.history
    days = {"agg_fine": hc.fine_days, "agg_minute": hc.minute_days, "agg_hour": 365.0, "features": hc.features_days}
    year = 50 * sum(days[k] * per_day[k] for k in per_day)
    return {
        "hours_replayed": hours,
        "file_mb": round(file_bytes / 2**20, 2),
        "written_bytes_per_asset_day": round(file_bytes / asset_days),
        "rows": rows,
        "bytes_per_row": {k: round(v, 1) for k, v in per_row.items()},
        "kept_bytes_per_asset_day": {k: round(v) for k, v in per_day.items()},
        "year_50_pumps_gb": round(year / 1e9, 2),
        "replay_cpu_s": round(cpu, 1),
    }


def queries(repeat: int, pumps: int = 50) -> dict[str, Any]:
    """Query times on 30 days of `pumps` pumps (rows of all pumps interleave in time, as the
    gateway writes them)."""
    from edgegw.config import load_config
    from edgegw.history import query, schema
    from edgegw.history.store import Historian

    cfg = load_config(ROOT / "config" / "example.yaml", ["profiles.pump.model=null"])
    d = Path(tempfile.mkdtemp(prefix="edgegw-bench-history-query-"))
    h = Historian(cfg, d / "history.db")
    assert h.writer.open()
    db = h.writer.db
    assert db is not None
    now = math.floor(time.time() / 3600) * 3600
    key = '["' + '","'.join(SIGNALS) + '"]'
    sids = [h.writer._sid(db, f"pump-{i + 1}", key) for i in range(pumps)]
    rng = np.random.default_rng(2)
    for tier, span, days in (("fine", 10.0, 7), ("minute", 60.0, 30), ("hour", 3600.0, 30)):
        t = np.arange(now - days * 86400, now, span)
        block = rng.normal(3.0, 0.1, (len(t), schema.NF, len(SIGNALS)))
        block[:, schema.COUNT] = span * 2
        block[:, schema.BAD] = 0
        blobs = schema.pack_many(block, np.tile([0.3, 0.5, np.nan], (len(t), 1)))  # one pump's, for every pump
        tl = t.tolist()
        for lo in range(0, len(tl), 2000):
            db.execute("BEGIN")
            db.executemany(
                f"INSERT INTO agg_{tier} (series, t, v) VALUES (?, ?, ?)",
                [(sid, tl[i], blobs[i]) for i in range(lo, min(lo + 2000, len(tl))) for sid in sids],
            )
            db.execute("COMMIT")
    h.writer.shutdown()
    out: dict[str, Any] = {}
    for name, sigs, days in (
        ("30d_1_signal", ["vibration"], 30),
        ("7d_6_signals", list(SIGNALS), 7),
        ("24h_6_signals", list(SIGNALS), 1),
    ):
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            tr = query.query(d / "history.db", "pump-1", sigs, now - days * 86400, now)
            times.append(time.perf_counter() - t0)
        out[name] = {"tier": tr.tier, "points": len(tr.time), "median_ms": round(statistics.median(times) * 1000, 1)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=40.0, help="load per daemon run")
    ap.add_argument("--hours", type=float, default=1.0, help="event-time hours replayed for the disk figures")
    ap.add_argument("--quick", action="store_true", help="short runs (a smoke test, not figures)")
    ap.add_argument("--no-daemon", action="store_true", help="only the file figures (disk, queries)")
    args = ap.parse_args()
    seconds, hours, repeat = (8.0, 0.05, 3) if args.quick else (args.seconds, args.hours, 20)
    res: dict[str, Any] = {}
    res["queries"] = q = queries(repeat)
    for k, v in q.items():
        print(
            f"query {k}: tier {v['tier']}, {v['points']} points, {v['median_ms']} ms (budget 30d_1_signal 200, 7d_6_signals 300)",
            flush=True,
        )
    res["disk"] = dk = disk(hours)
    print(
        f"disk: {dk['written_bytes_per_asset_day']:,} bytes written per asset-day; "
        f"kept per asset-day {dk['kept_bytes_per_asset_day']}; "
        f"a year of the default tiers at 50 pumps {dk['year_50_pumps_gb']} GB (budget 2)",
        flush=True,
    )
    if args.no_daemon:
        print(f"wrote {write('history-file', res)}")
        return
    runs = [daemon(False, seconds), daemon(True, seconds)]
    res["daemon"] = runs
    off, on = runs
    for r in runs:
        print(
            f"history {'on ' if r['history'] else 'off'}: {r['cpu_us_per_message']} us CPU/message "
            f"({r['cpu_percent']} % of a core), "
            f"RSS {r['rss_mb']} MB, alert p50 {r['alert_p50_ms']} ms p99 {r['alert_p99_ms']} ms ({r['alerts']} alerts)",
            flush=True,
        )
    res["cpu_added_percent"] = round((on["cpu_us_per_message"] / off["cpu_us_per_message"] - 1) * 100, 1)
    res["rss_added_mb"] = round(on["rss_mb"] - off["rss_mb"], 1)
    print(f"history adds {res['cpu_added_percent']} % CPU per message (budget 5), {res['rss_added_mb']} MB RSS (budget 10)")
    print(f"wrote {write('history', res)}")


if __name__ == "__main__":
    main()
