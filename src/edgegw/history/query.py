"""Reading history back: the one reader API (the page, reports, learning and the CLI use it).

Every function opens the file read-only (`mode=ro`) and closes it again, so it works while the
gateway writes (WAL readers never block the writer) and after it stopped or was killed. Times
are epoch seconds (event time, UTC); a bucket's time is its start.

    from edgegw.history.query import query, features, journal
    t = query("/var/lib/edgegw/history.db", "pump-2", ["vibration"], since=time.time() - 86400)
    t.time, t.signals["vibration"]["mean"], t.alarms
"""

from __future__ import annotations

import math
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from edgegw.config import GatewayConfig
from edgegw.history import schema

COLUMNS = ("count", "mean", "min", "max", "last", "bad")


@dataclass
class AlarmSpan:
    """An alarm of the asset that was active in the range: raised at `start`, cleared at `end`
    (None: still active at the newest entry)."""

    kind: str
    source: str
    severity: str
    start: float
    end: float | None
    message: str


@dataclass
class Trend:
    """Columns of one asset over a range in one tier: `time` (bucket starts), per signal the
    arrays of COLUMNS (NaN where it had no value in a bucket), the model outputs per bucket
    (NaN where not judged) and the alarm spans that overlap the range."""

    asset: str
    tier: str
    bucket_s: float
    since: float
    until: float
    time: np.ndarray
    signals: dict[str, dict[str, np.ndarray]]
    anomaly: np.ndarray
    threshold: np.ndarray
    risk: np.ndarray
    cause: list[str | None]
    alarms: list[AlarmSpan] = field(default_factory=list)


class HistoryUnavailable(Exception):
    """No history file where the config or path says (history off, or never written yet)."""


def history_path(path_or_cfg: str | Path | GatewayConfig) -> Path:
    """The history file of a config (its `history:` section and state directory) or a path."""
    if isinstance(path_or_cfg, GatewayConfig):
        from edgegw.preflight import state_dir_of

        p = path_or_cfg.history.file(state_dir_of(path_or_cfg)[0])
        if p is None:
            raise HistoryUnavailable("history is off (history.enabled false, or no state directory)")
        return p
    return Path(path_or_cfg)


def connect(path_or_cfg: str | Path | GatewayConfig, table: str = "agg_hour") -> sqlite3.Connection:
    """A read-only connection to the history file; HistoryUnavailable if there is none (or it
    does not hold `table` yet)."""
    p = history_path(path_or_cfg)
    if not p.is_file():
        raise HistoryUnavailable(f"no history at {p}")
    db = sqlite3.connect(f"file:{p}?mode=ro", uri=True, timeout=5.0)
    try:
        db.execute("PRAGMA query_only=1")
        if db.execute("SELECT count(*) FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0] < 1:
            raise HistoryUnavailable(f"{p} holds no history (yet)")
    except BaseException:
        db.close()
        raise
    return db


def _series(db: sqlite3.Connection, asset: str) -> list[tuple[int, list[str]]]:
    rows = db.execute("SELECT id, signals FROM series WHERE asset = ? ORDER BY id", (asset,)).fetchall()
    return [(int(i), list(orjson.loads(s))) for i, s in rows]


def _meta_fine_s(db: sqlite3.Connection) -> float:
    """The fine tier's bucket as the writer kept it (default 10 s)."""
    r = db.execute("SELECT value FROM meta WHERE key = 'fine_s'").fetchone()
    return float(r[0]) if r else 10.0


def choose_tier(db: sqlite3.Connection, sids: list[int], since: float, until: float, points: int) -> str:
    """The finest tier that covers [since, until) in at most `points` buckets: a tier whose
    oldest row is later than `since` does not cover it (its rows were purged), unless no tier
    does (the gateway has not kept that long); then the one reaching back furthest."""
    secs = schema.tier_seconds(_meta_fine_s(db))
    span = max(until - since, 0.0)
    fits = [t for t in schema.TIERS if span / secs[t] <= points * 1.05] or ["hour"]
    oldest: dict[str, float] = {}
    for t in fits:
        got = [
            r[0]
            for sid in sids
            if (r := db.execute(f"SELECT min(t) FROM agg_{t} WHERE series = ?", (sid,)).fetchone())[0] is not None
        ]
        oldest[t] = min(got) if got else math.inf
    for t in fits:
        if oldest[t] <= since + secs[t]:
            return t
    return min(fits, key=lambda t: (oldest[t], schema.TIERS.index(t)))


def query(
    path_or_cfg: str | Path | GatewayConfig,
    asset: str,
    signals: list[str] | None = None,
    since: float | None = None,
    until: float | None = None,
    points: int = 2000,
    tier: str = "auto",
) -> Trend:
    """One asset's signals over [since, until) (default: the last 24 h up to now).

    `tier`: "fine", "minute", "hour", or "auto" (the finest that covers the range in at most
    `points` buckets per signal, see choose_tier). `signals`: default all the asset has. Raises
    HistoryUnavailable when there is no file, KeyError naming a signal the asset never had."""
    until = time.time() if until is None else until
    since = until - 86400.0 if since is None else since
    db = connect(path_or_cfg)
    try:
        series = _series(db, asset)
        have = list(dict.fromkeys(s for _, sig in series for s in sig))
        want = have if signals is None else list(signals)
        missing = [s for s in want if s not in have]
        if series and missing:
            raise KeyError(f"{asset} has no signal {', '.join(missing)} in history (it has {', '.join(have)})")
        sids = [sid for sid, _ in series]
        if tier == "auto":
            tier = choose_tier(db, sids, since, until, points)
        if tier not in schema.TIERS:
            raise ValueError(f"tier {tier!r}: one of auto, {', '.join(schema.TIERS)}")
        bucket_s = schema.tier_seconds(_meta_fine_s(db))[tier]
        lo = math.floor(since / bucket_s) * bucket_s  # the bucket holding `since` counts
        times: list[np.ndarray] = []
        blocks: list[tuple[list[str], np.ndarray]] = []
        scores: list[np.ndarray] = []
        causes: list[str | None] = []
        for sid, sig in series:
            rows = db.execute(
                f"SELECT t, v, cause FROM agg_{tier} WHERE series = ? AND t >= ? AND t < ? ORDER BY t", (sid, lo, until)
            ).fetchall()
            if rows:
                times.append(np.array([r[0] for r in rows]))
                block, sc = schema.unpack([r[1] for r in rows], len(sig))
                blocks.append((sig, block))
                scores.append(sc)
                causes.extend(r[2] for r in rows)
        spans = _spans(db, asset, since, until)
    finally:
        db.close()
    t = np.concatenate(times) if times else np.zeros(0)
    order = np.argsort(t, kind="stable")
    cols: dict[str, dict[str, np.ndarray]] = {s: {c: np.full(len(t), np.nan) for c in COLUMNS} for s in want}
    at = 0
    for sig, block in blocks:
        n = len(block)
        for s in want:
            if s in sig:
                j = sig.index(s)
                for f, c in enumerate(COLUMNS):
                    cols[s][c][at : at + n] = block[:, f, j]
        at += n
    for s in want:
        for c in COLUMNS:
            cols[s][c] = cols[s][c][order]
    sc = np.concatenate(scores)[order] if scores else np.zeros((0, len(schema.SCORES)))
    cause = [causes[i] for i in order.tolist()]
    return Trend(asset, tier, bucket_s, since, until, t[order], cols, sc[:, 0], sc[:, 1], sc[:, 2], cause, spans)


def _spans(db: sqlite3.Connection, asset: str, since: float, until: float) -> list[AlarmSpan]:
    """The asset's alarms active at any time in [since, until), from the journal's transitions."""
    rows = db.execute(
        "SELECT ts, event, kind, source, severity, detail FROM journal WHERE asset = ? AND ts < ? "
        "AND event IN ('raised', 'cleared') ORDER BY ts, id",
        (asset, until),
    ).fetchall()
    open_: dict[tuple[str, str], AlarmSpan] = {}
    out: list[AlarmSpan] = []
    for ts, event, kind, source, severity, detail in rows:
        key = (kind, source)
        if event == "raised":
            if key not in open_:  # a level change re-raises: the span goes on
                try:
                    msg = str(orjson.loads(detail).get("message", ""))
                except orjson.JSONDecodeError:
                    msg = ""
                open_[key] = AlarmSpan(kind, source, severity, ts, None, msg)
        else:
            span = open_.pop(key, None)
            if span is not None:
                span.end = ts
                if ts >= since:
                    out.append(span)
    out.extend(open_.values())
    return sorted(out, key=lambda s: s.start)


def features(
    path_or_cfg: str | Path | GatewayConfig, asset: str, since: float, until: float | None = None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The sampled feature rows of one asset in [since, until): (window end times, (n, n_features)
    float32 matrix, feature names). Rows whose feature names differ from the newest row's (a
    profile changed) are left out, so the matrix has one column meaning."""
    until = time.time() if until is None else until
    db = connect(path_or_cfg)
    try:
        sids = [sid for sid, _ in _series(db, asset)]
        rows: list[tuple[float, int, bytes]] = []
        for sid in sids:
            rows += db.execute(
                "SELECT t, names, x FROM features WHERE series = ? AND t >= ? AND t < ? ORDER BY t", (sid, since, until)
            ).fetchall()
        if not rows:
            return np.zeros(0), np.zeros((0, 0), dtype=np.float32), []
        rows.sort(key=lambda r: r[0])
        nid = rows[-1][1]
        names = list(orjson.loads(db.execute("SELECT names FROM names WHERE id = ?", (nid,)).fetchone()[0]))
    finally:
        db.close()
    rows = [r for r in rows if r[1] == nid]
    x = np.frombuffer(b"".join(r[2] for r in rows), dtype="<f4").reshape(len(rows), len(names))
    return np.array([r[0] for r in rows]), x, names


def journal(
    path_or_cfg: str | Path | GatewayConfig, since: float, until: float | None = None, asset: str | None = None
) -> list[dict[str, Any]]:
    """Alarm journal entries with since <= ts < until, oldest first: dicts of
    schema.JOURNAL_COLUMNS (`detail` is the alert or event as JSON text). Reads the history file,
    or a notify journal (alarms.db) given by path: both keep the same table."""
    until = math.inf if until is None else until
    db = connect(path_or_cfg, "journal")
    try:
        cols = ", ".join(schema.JOURNAL_COLUMNS)
        if asset is None:
            rows = db.execute(f"SELECT {cols} FROM journal WHERE ts >= ? AND ts < ? ORDER BY ts, id", (since, until)).fetchall()
        else:
            rows = db.execute(
                f"SELECT {cols} FROM journal WHERE asset = ? AND ts >= ? AND ts < ? ORDER BY ts, id", (asset, since, until)
            ).fetchall()
    finally:
        db.close()
    return [dict(zip(schema.JOURNAL_COLUMNS, r, strict=True)) for r in rows]


__all__ = ["AlarmSpan", "HistoryUnavailable", "Trend", "choose_tier", "connect", "features", "history_path", "journal", "query"]
