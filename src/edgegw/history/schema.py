"""The history file's layout, and the packing both the writer and the readers share.

Aggregates: one row per series (an asset and its signal list) and bucket start `t` in each tier
(`agg_fine`, `agg_minute`, `agg_hour`); the signals are packed in one float32 blob, field-major:
count[ns], mean[ns], min[ns], max[ns], last[ns], bad[ns] (NaN where a signal had no value; bad =
values rejected as bad quality or out of range). Model outputs sit beside them: the anomaly score,
its threshold and the failure risk (each the bucket's max) and the cause named with that risk.
A coarser bucket is the exact aggregate of the finer rows it covers (`combine`).

Feature rows (`features`): sampled rows the models got, float32, with the id of their names list
(`names`). The alarm journal (`journal`): every transition and alarm event. Raw readings (`raw`,
optional): one row per series and flush, packed (ts float64, value float32, signal uint8).
"""

from __future__ import annotations

import sqlite3

import numpy as np

VERSION = 1
TIERS = ("fine", "minute", "hour")
FIELDS = ("count", "mean", "min", "max", "last", "bad")
NF = len(FIELDS)
COUNT, MEAN, MIN, MAX, LAST, BAD = range(NF)
JOURNAL_COLUMNS = ("ts", "event", "asset", "kind", "source", "severity", "by", "note", "detail")
RAW_DTYPE = np.dtype([("ts", "<f8"), ("value", "<f4"), ("signal", "u1")])

DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY, asset TEXT NOT NULL, signals TEXT NOT NULL, UNIQUE (asset, signals)
);
CREATE TABLE IF NOT EXISTS names (id INTEGER PRIMARY KEY, names TEXT NOT NULL UNIQUE);
{aggs}
CREATE TABLE IF NOT EXISTS features (
    series INTEGER NOT NULL, t REAL NOT NULL, names INTEGER NOT NULL, x BLOB NOT NULL,
    judged INTEGER NOT NULL, anomaly REAL, risk REAL, PRIMARY KEY (series, t)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS journal (
    id INTEGER PRIMARY KEY, ts REAL NOT NULL, event TEXT NOT NULL, asset TEXT NOT NULL, kind TEXT NOT NULL,
    source TEXT NOT NULL, severity TEXT NOT NULL, by TEXT NOT NULL, note TEXT NOT NULL, detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_ts ON journal (ts);
CREATE INDEX IF NOT EXISTS journal_asset ON journal (asset, ts);
CREATE TABLE IF NOT EXISTS raw (
    id INTEGER PRIMARY KEY, series INTEGER NOT NULL, t0 REAL NOT NULL, t1 REAL NOT NULL, v BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS raw_series ON raw (series, t0);
"""
_AGG = """CREATE TABLE IF NOT EXISTS agg_{tier} (
    series INTEGER NOT NULL, t REAL NOT NULL, v BLOB NOT NULL,
    anomaly REAL, threshold REAL, risk REAL, cause TEXT, PRIMARY KEY (series, t)
) WITHOUT ROWID;"""


def create(db: sqlite3.Connection) -> None:
    db.executescript(DDL.format(aggs="\n".join(_AGG.format(tier=t) for t in TIERS)))
    db.execute("INSERT OR IGNORE INTO meta VALUES ('version', ?)", (str(VERSION),))


def tier_seconds(fine_s: float) -> dict[str, float]:
    return {"fine": fine_s, "minute": 60.0, "hour": 3600.0}


def pack(block: np.ndarray) -> bytes:
    """One row's (NF, n_signals) aggregates as the blob."""
    return np.ascontiguousarray(block, dtype="<f4").tobytes()


def unpack(blobs: list[bytes], n_signals: int) -> np.ndarray:
    """Blobs of one series as (n_rows, NF, n_signals) float64."""
    if not blobs:
        return np.zeros((0, NF, n_signals))
    return np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), NF, n_signals).astype(np.float64)


def combine(rows: np.ndarray) -> np.ndarray:
    """The exact aggregate of (n, NF, ns) buckets of one series: counts and bad add, the mean is
    count-weighted, min and max reduce, last is the newest bucket's (rows in time order)."""
    out = np.full((NF, rows.shape[2]), np.nan)
    n = rows[:, COUNT]
    has = n > 0
    tot = n.sum(axis=0)
    out[COUNT] = tot
    out[BAD] = np.nansum(rows[:, BAD], axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[MEAN] = np.where(tot > 0, np.where(has, n * rows[:, MEAN], 0.0).sum(axis=0) / tot, np.nan)
        out[MIN] = np.fmin.reduce(np.where(has, rows[:, MIN], np.nan), axis=0)
        out[MAX] = np.fmax.reduce(np.where(has, rows[:, MAX], np.nan), axis=0)
    newest = np.where(has.any(axis=0), len(rows) - 1 - np.argmax(has[::-1], axis=0), 0)
    out[LAST] = np.where(tot > 0, rows[newest, LAST, np.arange(rows.shape[2])], np.nan)
    return out
