"""The history file's layout, and the packing both the writer and the readers share.

Aggregates: one row per series (an asset and its signal list) and bucket start `t` in each tier
(`agg_fine`, `agg_minute`, `agg_hour`); the signals and the model outputs are packed in one
float32 blob (`pack`): flags, count (one when every signal has the same, else one per signal),
mean[ns], min[ns], max[ns], last[ns] (NaN where a signal had no value), bad[ns] only when a value
was rejected as bad quality or out of range, then the anomaly score, its threshold and the failure
risk (each the bucket's max, NaN where not judged); the cause named with that risk is a column.
About 130 bytes a row for six signals: the key is (t, series), so rows arrive in key order and
pages fill up (a key by series first left them a third empty), and age and size cuts are ranges.
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
    judged INTEGER NOT NULL, anomaly REAL, risk REAL, PRIMARY KEY (t, series)
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
    series INTEGER NOT NULL, t REAL NOT NULL, v BLOB NOT NULL, cause TEXT, PRIMARY KEY (t, series)
) WITHOUT ROWID;"""
SCORES = ("anomaly", "threshold", "risk")
_SAME_COUNT, _HAS_BAD = 1, 2


def create(db: sqlite3.Connection) -> None:
    db.executescript(DDL.format(aggs="\n".join(_AGG.format(tier=t) for t in TIERS)))
    db.execute("INSERT OR IGNORE INTO meta VALUES ('version', ?)", (str(VERSION),))


def tier_seconds(fine_s: float) -> dict[str, float]:
    return {"fine": fine_s, "minute": 60.0, "hour": 3600.0}


def pack(block: np.ndarray, scores: np.ndarray) -> bytes:
    """One row: its (NF, n_signals) aggregates and its SCORES as the blob (see the module)."""
    return pack_many(block[None], scores[None])[0]


def pack_many(blocks: np.ndarray, scores: np.ndarray) -> list[bytes]:
    """Rows of (n, NF, n_signals) aggregates and (n, 3) SCORES as blobs, a few calls per layout."""
    m, _, ns = blocks.shape
    n, bad = blocks[:, COUNT], blocks[:, BAD]
    same = (n == n[:, :1]).all(axis=1)
    has_bad = (bad > 0).any(axis=1)
    out = [b""] * m
    for one in (True, False):
        for with_bad in (False, True):
            idx = np.flatnonzero((same == one) & (has_bad == with_bad))
            if not len(idx):
                continue
            flags = np.full((len(idx), 1), (_SAME_COUNT if one else 0) | (_HAS_BAD if with_bad else 0), dtype=np.float64)
            parts = [flags, n[idx, :1] if one else n[idx], blocks[idx, MEAN : LAST + 1].reshape(len(idx), 4 * ns)]
            if with_bad:
                parts.append(bad[idx])
            parts.append(scores[idx])
            a = np.hstack(parts).astype("<f4")
            raw, size = a.tobytes(), a.shape[1] * 4
            for j, i in enumerate(idx.tolist()):
                out[i] = raw[j * size : (j + 1) * size]
    return out


def unpack(blobs: list[bytes], n_signals: int) -> tuple[np.ndarray, np.ndarray]:
    """Blobs of one series (in order) as (n_rows, NF, n_signals) aggregates and (n_rows, 3)
    scores, float64: rows of one layout (one blob length) are read in one go."""
    ns = n_signals
    out = np.zeros((len(blobs), NF, ns))
    scores = np.full((len(blobs), len(SCORES)), np.nan)
    if not blobs:
        return out, scores
    lengths = np.fromiter(map(len, blobs), dtype=np.int64, count=len(blobs))
    for length in np.unique(lengths).tolist():
        idx = np.flatnonzero(lengths == length)
        a = np.frombuffer(b"".join(blobs[i] for i in idx.tolist()), dtype="<f4").reshape(len(idx), length // 4)
        flags = int(a[0, 0])
        nc = 1 if flags & _SAME_COUNT else ns
        at = 1 + nc
        out[idx, COUNT] = a[:, 1:at] if nc == ns else np.repeat(a[:, 1:2], ns, axis=1)
        out[idx, MEAN : LAST + 1] = a[:, at : at + 4 * ns].reshape(len(idx), 4, ns)
        at += 4 * ns
        if flags & _HAS_BAD:
            out[idx, BAD] = a[:, at : at + ns]
            at += ns
        scores[idx] = a[:, at : at + len(SCORES)]
    return out, scores


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


def combine_scores(scores: np.ndarray) -> np.ndarray:
    """The SCORES of a coarser bucket: each the max of its finer rows' (NaN where none)."""
    with np.errstate(invalid="ignore"):
        return np.fmax.reduce(scores, axis=0) if len(scores) else np.full(len(SCORES), np.nan)
