"""The historian with a real file: exact roll-ups, retention, the size cap, a corrupt file, an
unwritable directory, and the journal and feature rows read back through history.query."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from edgegw.config import GatewayConfig, load_config
from edgegw.engine.engine import Engine
from edgegw.history import query, schema
from edgegw.history.store import Historian
from edgegw.records import Alert, AlertState, Severity
from tests.helpers import EXAMPLE

SIGNALS = ("vibration", "pressure", "temperature", "flow", "current", "suction_pressure")
T0 = 1_800_000_000.0  # a minute boundary, a while ahead of any test machine's clock


def make(tmp_path: Path, *over: str) -> tuple[Historian, Engine, list[Alert]]:
    cfg: GatewayConfig = load_config(EXAMPLE, ["profiles.pump.model=null", *over])
    alarms: list[Alert] = []
    h = Historian(cfg, tmp_path / "history.db", alarms.append)
    e = Engine(cfg, h.alert, clock=lambda: 0.0)
    e.on_hop = h.hop
    e.keep_raw(cfg.history.raw)
    return h, e, alarms


def feed(e: Engine, t0: float, t1: float, rate: float = 2.0, value: object = None) -> dict[tuple[str, float], list[float]]:
    """Readings of every pump and signal in [t0, t1); returns pump-1 vibration's values by fine bucket."""
    sent: dict[tuple[str, float], list[float]] = {}
    for i in range(round((t1 - t0) * rate)):
        ts = t0 + i / rate
        for a in range(1, 5):
            for j, s in enumerate(SIGNALS):
                v = 2.0 + 0.5 * a + 0.1 * j + 0.4 * math.sin(ts * 0.37 + j) if value is None else float(value)  # type: ignore[arg-type]
                e.ingest(f"pump-{a}", s, ts, v)
                if a == 1 and s == "vibration":
                    sent.setdefault(("fine", math.floor(ts / 10) * 10), []).append(v)
        e.run_hops()
    return sent


def flush(h: Historian) -> None:
    h.writer.write(h.take())


def fine_rows(path: Path, asset: str) -> dict[float, np.ndarray]:
    db = sqlite3.connect(path)
    sid = db.execute("SELECT id FROM series WHERE asset = ?", (asset,)).fetchone()[0]
    rows = db.execute("SELECT t, v FROM agg_fine WHERE series = ? ORDER BY t", (sid,)).fetchall()
    db.close()
    return {t: schema.unpack([v], len(SIGNALS))[0][0] for t, v in rows}


def test_fine_buckets_hold_the_readings_and_minutes_are_their_exact_aggregate(tmp_path: Path) -> None:
    h, e, _ = make(tmp_path)
    sent = feed(e, T0, T0 + 150)
    flush(h)
    sent2 = feed(e, T0 + 150, T0 + 185)  # more of the same minute later: it is built again
    flush(h)
    assert h.writer.db is not None
    h.writer.roll_up(h.writer.db)  # minutes and hours follow within a minute: now
    sent.update(sent2)
    fine = fine_rows(h.path, "pump-1")
    for (_, t), v in sent.items():
        if t + 10 <= T0 + 180:
            got = fine[t][:, 0]
            want = np.array([len(v), np.mean(v), min(v), max(v), v[-1], 0.0])
            np.testing.assert_allclose(got, want, rtol=2e-7, err_msg=f"bucket {t}")
    for tier, span, src in (("minute", 60.0, "fine"), ("hour", 3600.0, "minute")):
        coarse = query.query(h.path, "pump-1", None, T0, T0 + 200, tier=tier)
        finer = query.query(h.path, "pump-1", None, T0, T0 + 200, tier=src)
        assert len(coarse.time)
        for i, t in enumerate(coarse.time.tolist()):
            sel = (finer.time >= t) & (finer.time < t + span)
            for s in SIGNALS:
                f = {c: finer.signals[s][c][sel] for c in ("count", "mean", "min", "max", "last")}
                c = {k: coarse.signals[s][k][i] for k in ("count", "mean", "min", "max", "last")}
                assert c["count"] == f["count"].sum()
                assert c["mean"] == pytest.approx((f["count"] * f["mean"]).sum() / f["count"].sum(), rel=2e-7)
                assert (c["min"], c["max"], c["last"]) == pytest.approx((f["min"].min(), f["max"].max(), f["last"][-1]), rel=2e-7)


def test_alarms_are_journalled_and_read_back_as_spans(tmp_path: Path) -> None:
    h, e, _ = make(tmp_path, "profiles.pump.signals.vibration.on_delay_s=0", "profiles.pump.signals.vibration.off_delay_s=0")
    feed(e, T0, T0 + 20)
    feed(e, T0 + 20, T0 + 30, value=12.5)
    feed(e, T0 + 30, T0 + 40)
    flush(h)
    j = query.journal(h.path, T0)
    assert [(x["asset"], x["event"], x["kind"]) for x in j if x["source"] == "vibration" and x["asset"] == "pump-1"] == [
        ("pump-1", "raised", "threshold"),
        ("pump-1", "cleared", "threshold"),
    ]
    t = query.query(h.path, "pump-2", ["vibration"], T0, T0 + 60)
    spans = [(s.kind, s.source, s.start, s.end) for s in t.alarms if s.source == "vibration"]
    assert spans == [("threshold", "vibration", T0 + 20, T0 + 30)]


def test_feature_rows_are_sampled_every_n_hops(tmp_path: Path) -> None:
    h, e, _ = make(tmp_path, "history.features_every_hops=5")
    feed(e, T0, T0 + 60)
    flush(h)
    times, x, names = query.features(h.path, "pump-3", T0, T0 + 60)
    assert len(names) == x.shape[1] == 72 and x.dtype == np.float32
    assert 10 <= len(times) <= 12 and np.all(np.diff(times) == 5.0)


def test_retention_deletes_by_age_per_tier(tmp_path: Path) -> None:
    h, e, _ = make(tmp_path, "history.fine_days=1")
    import time

    old = math.floor((time.time() - 2 * 86400) / 3600) * 3600  # two days ago: past the fine tier's day
    feed(e, old, old + 60)
    feed(e, old + 86400 + 3600, old + 86400 + 3660)  # a day later, still older than a day? no: 1 h inside
    flush(h)
    db = sqlite3.connect(h.path)
    fine = [r[0] for r in db.execute("SELECT t FROM agg_fine")]
    minutes = [r[0] for r in db.execute("SELECT t FROM agg_minute")]
    assert fine and min(fine) >= old + 86400  # the older day's fine rows are gone ...
    assert min(minutes) == old  # ... its minutes kept (90 days)
    assert h.stats_["purged"] > 0


def test_the_size_cap_cuts_the_oldest_finest_data_and_raises_an_alarm(tmp_path: Path) -> None:
    h, e, alarms = make(tmp_path, "history.max_mb=1", "history.raw=true")
    t = T0
    for _ in range(20):
        feed(e, t, t + 30, rate=10.0)
        t += 30
        flush(h)
        assert h.writer.file_bytes() <= 1.25 * 2**20
    raised = [a for a in alarms if a.kind == "history_cut" and a.state == AlertState.RAISED]
    assert len(raised) == 1 and "history" in raised[0].message and raised[0].source == "history"
    newest = query.query(h.path, "pump-1", ["vibration"], t - 60, t, tier="fine")
    assert newest.signals["vibration"]["count"][-2] == 100  # the newest buckets are kept
    db = sqlite3.connect(h.path)
    assert db.execute("SELECT min(t0) FROM raw").fetchone()[0] > T0  # the oldest raw went first


def test_a_corrupt_file_is_moved_aside_and_a_new_one_started(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    path.write_bytes(b"not a database at all" * 500)
    h, e, alarms = make(tmp_path)
    feed(e, T0, T0 + 30)
    flush(h)
    assert [a.kind for a in alarms] == ["history_corrupt"] and "history" in alarms[0].message
    assert list(tmp_path.glob("history.db.corrupt-*"))
    assert query.query(path, "pump-1", ["vibration"], T0, T0 + 30, tier="fine").time.size == 3  # the open bucket too


def test_an_unwritable_directory_raises_an_alarm_and_loses_only_history(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    cfg = load_config(EXAMPLE, ["profiles.pump.model=null"])
    alarms: list[Alert] = []
    h = Historian(cfg, tmp_path / "file" / "history.db", alarms.append)  # its folder is a file
    h.alert(Alert("pump-1", "threshold", "vibration", AlertState.RAISED, Severity.CRITICAL, T0))
    flush(h)
    assert [(a.kind, a.source, str(a.state)) for a in alarms] == [("history_unwritable", "history", "raised")]
    assert "history" in alarms[0].message and h.stats_["lost"] == 1


def test_an_alarm_from_before_a_restart_clears_once_history_is_written(tmp_path: Path) -> None:
    h, e, alarms = make(tmp_path)
    gw = h.cfg.gateway.id
    h.restore([{"asset": gw, "kind": "history_unwritable", "source": "history", "state": "raised"}])
    h.restore([{"asset": "pump-1", "kind": "threshold", "source": "vibration", "state": "raised"}])  # not history's
    feed(e, T0, T0 + 20)
    flush(h)
    assert [(a.asset, a.kind, str(a.state)) for a in alarms] == [(gw, "history_unwritable", "cleared")]
