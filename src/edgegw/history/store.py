"""Historian (a Sink): what the engine's hops and the alarm fan-out say, kept in one SQLite file.

On the event loop `hop()`, `alert()` and `event()` only append to memory: a hop's buckets are
folded into each asset's open fine bucket (numpy, a few calls per hop), alarms become journal
rows. Every `flush_s` the closed buckets, a snapshot of the open ones, sampled feature rows,
journal rows and (optional) raw readings go to a worker thread as one batch, written in one
transaction (WAL, synchronous=NORMAL): a kill loses at most that period. The worker also builds
the minute and hour rows the batch touched from the finer rows (exact, late data included),
deletes rows past each tier's age, and keeps the file and its WAL under `max_mb` by deleting
the oldest of the finest data first (raw, then fine rows and feature rows, then minutes, hours,
journal). Trouble never stops the gateway: an unwritable directory, a full disk, a second
writer (flock) or a corrupt file (moved aside, a new one started) raise a gateway alarm
(asset = the gateway id, source `history`) through the gateway's alert path.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import math
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import structlog

from edgegw.config import GatewayConfig
from edgegw.config.history import HistoryConfig
from edgegw.history import schema
from edgegw.records import AlarmEvent, Alert, AlertState, HopResult, Rollup, Severity

log = structlog.get_logger("edgegw.history")
ALARM_HOLD_S = 600.0  # a cut or corrupt-file alarm clears after this long without another
REOPEN_S = 60.0  # an unavailable file is tried again this often
PURGE_BUCKETS = 360  # a tier's rows past their age are deleted this many buckets at a time (once a minute)
ROLLUP_S = 60.0  # minute and hour buckets are built this often (and at a stop)
MAX_QUEUED = 12  # flushes waiting for the worker at most (beyond: a flush is dropped and counted)
MAX_PENDING_RAW = 2_000_000  # raw readings held for one flush at most (beyond: the oldest dropped)
WAL_SHARE = 0.2  # of max_mb kept free for the WAL (a batch and its deletes)


@dataclass
class Rows:
    """Fine buckets of one profile, as arrays (packed by the worker, off the loop)."""

    assets: list[str]
    key: str  # the signal list, JSON
    t: np.ndarray  # bucket starts
    block: np.ndarray  # (n, NF, n_signals)
    scores: np.ndarray  # (n, 3)
    cause: list[str | None]

    def __len__(self) -> int:
        return len(self.assets)


FeatureRow = tuple[str, str, float, str, bytes, int, float | None, float | None]


class _Open:
    """One profile's open fine buckets, by asset (arrays grow as assets appear)."""

    def __init__(self, signals: list[str]) -> None:
        self.signals = signals
        self.key = orjson.dumps(signals).decode()
        self.ns = len(signals)
        self.ids: list[str] = []
        self.index: dict[str, int] = {}
        self.last_assets: list[str] | None = None
        self.last_idx = np.zeros(0, dtype=np.intp)
        self._alloc(0)

    def _alloc(self, n: int) -> None:
        ns = self.ns
        self.k = np.full(n, -math.inf)
        self.n = np.zeros((n, ns))
        self.s = np.zeros((n, ns))
        self.mn = np.full((n, ns), math.nan)
        self.mx = np.full((n, ns), math.nan)
        self.last = np.full((n, ns), math.nan)
        self.bad = np.zeros((n, ns))
        self.an = np.full(n, math.nan)
        self.th = np.full(n, math.nan)
        self.risk = np.full(n, math.nan)
        self.cause: list[str | None] = [None] * n
        self.hops = np.zeros(n, dtype=np.int64)

    def rows_of(self, assets: list[str]) -> np.ndarray:
        """Own row per asset id (new assets get one)."""
        if assets is self.last_assets:
            return self.last_idx
        new = [a for a in assets if a not in self.index]
        if new:
            old = len(self.ids)
            arrays = {k: getattr(self, k) for k in ("k", "n", "s", "mn", "mx", "last", "bad", "an", "th", "risk", "hops")}
            cause = self.cause
            self._alloc(old + len(new))
            for k, v in arrays.items():
                getattr(self, k)[:old] = v
            self.cause[:old] = cause
            for a in new:
                self.index[a] = len(self.ids)
                self.ids.append(a)
        self.last_assets = assets
        self.last_idx = np.array([self.index[a] for a in assets], dtype=np.intp)
        return self.last_idx

    def reset(self, rows: np.ndarray, k: np.ndarray) -> None:
        self.k[rows] = k
        self.n[rows] = 0.0
        self.s[rows] = 0.0
        self.mn[rows] = math.nan
        self.mx[rows] = math.nan
        self.last[rows] = math.nan
        self.bad[rows] = 0.0
        self.an[rows] = math.nan
        self.th[rows] = math.nan
        self.risk[rows] = math.nan
        for r in rows.tolist():
            self.cause[r] = None

    def rows(self, rows: np.ndarray, fine_s: float) -> list[Rows]:
        """The buckets of `rows` that hold anything (none or one Rows)."""
        keep = rows[(self.n[rows] > 0).any(axis=1) | (self.bad[rows] > 0).any(axis=1)]
        if not len(keep):
            return []
        n = self.n[keep]
        block = np.empty((len(keep), schema.NF, self.ns))
        block[:, schema.COUNT] = n
        with np.errstate(invalid="ignore", divide="ignore"):
            block[:, schema.MEAN] = np.where(n > 0, self.s[keep] / n, math.nan)
        block[:, schema.MIN] = self.mn[keep]
        block[:, schema.MAX] = self.mx[keep]
        block[:, schema.LAST] = self.last[keep]
        block[:, schema.BAD] = self.bad[keep]
        scores = np.stack([self.an[keep], self.th[keep], self.risk[keep]], axis=1)
        ks = keep.tolist()
        return [Rows([self.ids[r] for r in ks], self.key, self.k[keep] * fine_s, block, scores, [self.cause[r] for r in ks])]


def _opt(a: np.ndarray) -> list[float | None]:
    return [None if math.isnan(v) else v for v in a.tolist()]


@dataclass
class Batch:
    """One flush: what the loop hands the worker."""

    rows: list[Rows] = field(default_factory=list)  # fine buckets (closed, then the open ones' snapshot)
    features: list[FeatureRow] = field(default_factory=list)
    journal: list[tuple[Any, ...]] = field(default_factory=list)
    raw: list[tuple[list[str], str, int, np.ndarray]] = field(default_factory=list)  # (assets, signals key, ns, (n,3))


class Historian:
    """The history sink. Not thread-safe on the loop side; the worker owns the connection."""

    name = "history"

    def __init__(self, cfg: GatewayConfig, path: Path, emit: Callable[[Alert], None] | None = None) -> None:
        self.cfg = cfg
        self.hcfg: HistoryConfig = cfg.history
        self.path = path
        self.emit = emit
        self.fine_s = self.hcfg.fine_s
        self._open: dict[str, _Open] = {}
        self._batch = Batch()
        self._raw_pending = 0
        self._queue: queue.Queue[Batch | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        self.writer = _Writer(self)
        self.stats_: dict[str, Any] = {
            "rows_written": 0,
            "features_written": 0,
            "journal_written": 0,
            "raw_written": 0,
            "purged": 0,
            "cut": 0,
            "write_errors": 0,
            "lost": 0,
            "raw_dropped": 0,
            "last_flush": None,
            "bytes": 0,
            "oldest": {},
        }

    # -- the loop side: append to memory

    @property
    def connected(self) -> bool:
        return self.writer.db is not None

    def hop(self, result: HopResult) -> None:
        acc = self._open.get(result.profile)
        if acc is None or acc.signals != result.signals:
            acc = self._open[result.profile] = _Open(list(result.signals))
        ai = acc.rows_of(result.assets)
        if len(result.bucket_starts):
            self._buckets(acc, ai, result)
        if result.judged is not None and result.judged.any():
            self._scores(acc, ai, result)
        every = self.hcfg.features_every_hops
        if every:
            acc.hops[ai] += 1
            self._features(acc, ai, result, every)
        if self.hcfg.raw and result.raw is not None and len(result.raw):
            self._take_raw(result, acc, result.raw)

    def _buckets(self, acc: _Open, ai: np.ndarray, r: HopResult) -> None:
        fk = np.floor(r.bucket_starts / self.fine_s + 1e-9)
        ip = r.bucket_asset
        b = r.buckets
        if len(ip) < 2 or bool((ip[1:] > ip[:-1]).all()):  # one bucket per asset: one round
            self._merge(acc, ai[ip], fk, b, r.bucket_bad)
            return
        firsts = np.flatnonzero(np.r_[True, ip[1:] != ip[:-1]])
        rank = np.arange(len(ip)) - np.repeat(firsts, np.diff(np.r_[firsts, len(ip)]))
        for k in range(int(rank.max()) + 1):  # a burst: the k-th bucket of each asset, in time order
            sel = np.flatnonzero(rank == k)
            self._merge(acc, ai[ip[sel]], fk[sel], b[:, sel], r.bucket_bad[sel])

    def _merge(self, acc: _Open, rows: np.ndarray, fk: np.ndarray, b: np.ndarray, bad: np.ndarray) -> None:
        """Hop buckets into open fine buckets (each row at most once); a row whose fine bucket
        moved on is closed first."""
        moved = acc.k[rows] != fk
        if moved.any():
            m = rows[moved]
            self._batch.rows.extend(acc.rows(m, self.fine_s))
            acc.reset(m, fk[moved])
        n = b[0]
        acc.n[rows] += n
        acc.s[rows] += np.where(n > 0, n * b[1], 0.0)
        acc.mn[rows] = np.fmin(acc.mn[rows], b[2])
        acc.mx[rows] = np.fmax(acc.mx[rows], b[3])
        acc.last[rows] = np.where(n > 0, b[4], acc.last[rows])
        acc.bad[rows] += bad

    def _scores(self, acc: _Open, ai: np.ndarray, r: HopResult) -> None:
        j = np.flatnonzero(r.judged)  # type: ignore[arg-type]
        rows = ai[j]
        here = acc.k[rows] == np.floor((r.ends[j] - r.hop_s * 0.5) / self.fine_s)
        j, rows = j[here], rows[here]
        for name, a in (("an", r.anomaly), ("th", r.threshold), ("risk", r.risk)):
            if a is not None:
                mine = getattr(acc, name)
                mine[rows] = np.fmax(mine[rows], a[j])
        if r.cause is not None:
            for i, row in zip(j.tolist(), rows.tolist(), strict=True):
                if r.cause[i]:
                    acc.cause[row] = r.cause[i]

    def _features(self, acc: _Open, ai: np.ndarray, r: HopResult, every: int) -> None:
        due = np.flatnonzero(acc.hops[ai] % every == 0)
        if not len(due):
            return
        x = r.features[due]
        ok = ~np.isnan(x).all(axis=1)
        if not ok.any():
            return
        due, x = due[ok], np.ascontiguousarray(x[ok], dtype="<f4")
        names = orjson.dumps(r.feature_names).decode()
        judged = r.judged[due].tolist() if r.judged is not None else [False] * len(due)
        an = _opt(r.anomaly[due]) if r.anomaly is not None else [None] * len(due)
        risk = _opt(r.risk[due]) if r.risk is not None else [None] * len(due)
        ends = r.ends[due].tolist()
        for j, i in enumerate(due.tolist()):
            self._batch.features.append((r.assets[i], acc.key, ends[j], names, x[j].tobytes(), int(judged[j]), an[j], risk[j]))

    def _take_raw(self, r: HopResult, acc: _Open, raw: np.ndarray) -> None:
        if self._raw_pending + len(raw) > MAX_PENDING_RAW:
            self.stats_["raw_dropped"] += len(raw)
            return
        self._raw_pending += len(raw)
        self._batch.raw.append((r.raw_assets, acc.key, acc.ns, raw))

    def alert(self, alert: Alert) -> None:
        """A transition into the journal (an ack's re-published raise as `acked`)."""
        ev = alert.evidence
        acked = alert.state == AlertState.RAISED and "acked_by" in ev
        event, by, note = (
            ("acked", str(ev.get("acked_by", "")), str(ev.get("ack_note", "") or "")) if acked else (str(alert.state), "", "")
        )
        detail = orjson.dumps(alert.to_dict(), default=str).decode()
        self._batch.journal.append(
            (alert.ts, event, alert.asset, alert.kind, alert.source, str(alert.severity), by, note, detail)
        )

    def event(self, event: AlarmEvent) -> None:
        asset, kind, source = event.key
        sev = str(event.detail.get("severity", ""))
        detail = orjson.dumps(event.detail, default=str).decode()
        self._batch.journal.append((event.ts, event.event, asset, kind, source, sev, event.by, event.note, detail))

    def rollup(self, rollup: Rollup) -> None:
        """Minutes and hours are built from the fine tier: rollups add nothing here."""

    def stats(self) -> Mapping[str, object]:
        """For health (JSON metrics and Prometheus): counters, bytes on disk (db + WAL), the last
        flush and the oldest row per tier (epoch seconds, None before the first)."""
        return {**self.stats_, "buffered": len(self._batch.rows) + len(self._batch.journal), "path": str(self.path)}

    def restore(self, alarms: list[dict[str, Any]]) -> None:
        """History's gateway alarms still active before a restart: they clear as if raised now."""
        for d in alarms:
            if d.get("asset") == self.cfg.gateway.id and d.get("source") == "history" and d.get("kind"):
                self.writer.restore(str(d["kind"]))

    def take(self) -> Batch:
        """The batch so far plus a snapshot of every open fine bucket (so a kill loses at most a flush)."""
        b, self._batch = self._batch, Batch()
        self._raw_pending = 0
        for acc in self._open.values():
            b.rows.extend(acc.rows(np.arange(len(acc.ids)), self.fine_s))
        return b

    # -- running

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self._thread is None:
            self._thread = threading.Thread(target=self.writer.loop, name="history-writer", daemon=True)
            self._thread.start()
        while not self._closing:
            await asyncio.sleep(self.hcfg.flush_s)
            if self._closing:
                break
            batch = self.take()
            if self._queue.qsize() >= MAX_QUEUED:  # the disk cannot keep up: memory stays bounded
                self.stats_["lost"] += sum(map(len, batch.rows)) + len(batch.features) + len(batch.journal)
                continue
            self._queue.put(batch)

    async def close(self, timeout: float) -> None:
        """The last batch, written before the gateway stops (within `timeout`)."""
        if self._closing:
            return
        self._closing = True
        self._queue.put(self.take())
        self._queue.put(None)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, timeout)

    # -- gateway alarms, from the worker thread

    def gateway_alarm(self, kind: str, raise_: bool, message: str, evidence: dict[str, Any]) -> None:
        a = Alert(
            asset=self.cfg.gateway.id,
            kind=kind,
            source="history",
            state=AlertState.RAISED if raise_ else AlertState.CLEARED,
            severity=Severity.WARNING if raise_ else Severity.INFO,
            ts=time.time(),
            evidence={"path": str(self.path), **evidence},
            message=message,
        )
        if self.emit is None:
            return
        if self._loop is None:  # not running (tests, tools): the caller's thread is the only one
            self.emit(a)
            return
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody left to tell
            self._loop.call_soon_threadsafe(self.emit, a)


class _Writer:
    """The worker thread's side: the connection, the transaction per batch, purges and the cap."""

    def __init__(self, h: Historian) -> None:
        self.h = h
        self.cfg = h.hcfg
        self.db: sqlite3.Connection | None = None
        self._lock_fd: int | None = None
        self._series: dict[tuple[str, str], int] = {}
        self._ns: dict[int, int] = {}  # series -> its number of signals
        self._minutes: set[tuple[int, float]] = set()  # minute buckets whose fine rows changed
        self._next_rollup = 0.0
        self._names: dict[str, int] = {}
        self._next_open = 0.0
        self._active: dict[str, float] = {}  # gateway alarm kind -> since
        self._last_cut = 0.0
        self._next_purge = 0.0
        self._next_oldest = 0.0
        self.raw_bytes = 0
        self.seconds = schema.tier_seconds(self.cfg.fine_s)

    # -- alarms

    def _raise(self, kind: str, message: str, **evidence: Any) -> None:
        if kind not in self._active:
            self._active[kind] = time.time()
            log.error(message, path=str(self.h.path), **evidence)
            self.h.gateway_alarm(kind, True, message, evidence)
        else:
            self._active[kind] = time.time() if kind == "history_cut" else self._active[kind]

    def restore(self, kind: str) -> None:
        """An alarm raised before a restart: cleared like one raised now (history_unwritable at
        the next good write, the others ALARM_HOLD_S after the last time they held)."""
        self._active.setdefault(kind, time.time())

    def _clear(self, kind: str, message: str) -> None:
        if self._active.pop(kind, None) is not None:
            log.info(message, path=str(self.h.path))
            self.h.gateway_alarm(kind, False, message, {})

    # -- the thread

    def loop(self) -> None:
        while True:
            batch = self.h._queue.get()
            if batch is None:
                break
            try:
                self.write(batch)
            except Exception as e:  # a bug here must not end history for good
                self.h.stats_["write_errors"] += 1
                log.exception("history write failed", error=repr(e))
        self.shutdown()

    def shutdown(self) -> None:
        if self.db is not None and self._minutes:
            try:
                self.roll_up(self.db)
            except sqlite3.Error as e:
                log.warning("history: hour buckets not rolled up at stop", error=str(e))
        if self.db is not None:
            with contextlib.suppress(sqlite3.Error):
                self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            with contextlib.suppress(sqlite3.Error):
                self.db.close()
            self.db = None
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)
            self._lock_fd = None

    def open(self) -> bool:
        """Open (or create) the file; False (and a gateway alarm) when it cannot be had."""
        if self.db is not None:
            return True
        now = time.time()
        if now < self._next_open:
            return False
        self._next_open = now + REOPEN_S
        path = self.h.path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if self._lock_fd is None:
                fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    self._raise("history_unwritable", f"history file {path} is in use by another gateway: not kept")
                    return False
                self._lock_fd = fd
            db = self._connect(path)
        except sqlite3.DatabaseError as e:
            if _corrupt(e):
                self._set_aside(str(e))
                try:
                    db = self._connect(path)
                except (OSError, sqlite3.Error) as e2:
                    self._raise("history_unwritable", f"history cannot write {path}: {e2}", error=str(e2))
                    return False
            else:
                self._raise("history_unwritable", f"history cannot write {path}: {e}", error=str(e))
                return False
        except OSError as e:
            self._raise("history_unwritable", f"history cannot write {path}: {e.strerror or e}", error=str(e))
            return False
        with contextlib.suppress(sqlite3.Error):
            db.execute("INSERT OR REPLACE INTO meta VALUES ('fine_s', ?)", (repr(self.cfg.fine_s),))
        self.db = db
        self._series.clear()
        self._names.clear()
        self._ns.clear()
        try:
            self.raw_bytes = int(db.execute("SELECT coalesce(sum(length(v)), 0) FROM raw").fetchone()[0])
        except sqlite3.Error:
            self.raw_bytes = 0
        log.info("history open", path=str(path), max_mb=self.cfg.max_mb)
        return True

    def _connect(self, path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=5.0)
        try:
            db.execute("PRAGMA auto_vacuum=INCREMENTAL")  # on a new file: freed pages can be returned
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            schema.create(db)
            db.execute("SELECT count(*) FROM series").fetchone()
        except sqlite3.Error:
            db.close()
            raise
        return db

    def _set_aside(self, why: str) -> None:
        """A corrupt file moves aside (with its WAL), a new one starts; the gateway alarm says so."""
        if self.db is not None:
            with contextlib.suppress(sqlite3.Error):
                self.db.close()
            self.db = None
        path = self.h.path
        aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}")
        for suffix in ("", "-wal", "-shm"):
            src = Path(f"{path}{suffix}")
            if src.exists():
                with contextlib.suppress(OSError):
                    os.replace(src, f"{aside}{suffix}")
        self._raise("history_corrupt", f"history file {path} was corrupt ({why}): moved to {aside.name}, a new one started")

    # -- one batch

    def write(self, b: Batch) -> None:
        if not self.open():
            self.h.stats_["lost"] += sum(map(len, b.rows)) + len(b.features) + len(b.journal)
            return
        db = self.db
        assert db is not None
        try:
            db.execute("BEGIN IMMEDIATE")
            self._cap(db, self._estimate(b))
            n_rows = self._aggregates(db, b.rows)
            n_feat = self._features(db, b.features)
            db.executemany(f"INSERT INTO journal ({', '.join(schema.JOURNAL_COLUMNS)}) VALUES ({', '.join('?' * 9)})", b.journal)
            n_raw = self._raw(db, b.raw)
            now = time.time()
            if now >= self._next_purge:
                self._next_purge = now + 60.0
                self._purge(db, now)
            db.execute("COMMIT")
        except sqlite3.Error as e:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            self.h.stats_["write_errors"] += 1
            self.h.stats_["lost"] += sum(map(len, b.rows)) + len(b.features) + len(b.journal)
            if isinstance(e, sqlite3.DatabaseError) and _corrupt(e):
                self._set_aside(str(e))
                self._next_open = 0.0
            else:
                full = "full" in str(e).lower()
                self._raise(
                    "history_unwritable",
                    f"history cannot write {self.h.path}: {'disk full' if full else e}",
                    error=str(e),
                )
                if not full:  # e.g. the file or directory turned read-only: open again later
                    self.shutdown()
            return
        with contextlib.suppress(sqlite3.Error):
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        st = self.h.stats_
        st["rows_written"] += n_rows
        st["features_written"] += n_feat
        st["journal_written"] += len(b.journal)
        st["raw_written"] += n_raw
        st["last_flush"] = time.time()
        st["bytes"] = self.file_bytes()
        if time.time() >= self._next_oldest:
            self._next_oldest = time.time() + 60.0
            st["oldest"] = self._oldest(db)
        self._clear("history_unwritable", "history is written again")
        now = time.time()
        for kind in ("history_cut", "history_corrupt"):
            since = self._active.get(kind)
            if since is not None and now - since > ALARM_HOLD_S:
                self._clear(kind, "history is no longer cut short" if kind == "history_cut" else "history file replaced")

    def _sid(self, db: sqlite3.Connection, asset: str, key: str) -> int:
        sid = self._series.get((asset, key))
        if sid is None:
            db.execute("INSERT OR IGNORE INTO series (asset, signals) VALUES (?, ?)", (asset, key))
            sid = int(db.execute("SELECT id FROM series WHERE asset = ? AND signals = ?", (asset, key)).fetchone()[0])
            self._series[(asset, key)] = sid
        return sid

    def _aggregates(self, db: sqlite3.Connection, rows: list[Rows]) -> int:
        if not rows:
            return 0
        out = []
        for r in rows:
            blobs = schema.pack_many(r.block, r.scores)
            out += [(self._sid(db, a, r.key), t, v, c) for a, t, v, c in zip(r.assets, r.t.tolist(), blobs, r.cause, strict=True)]
        out.sort(key=_by_time)  # in key order: appended pages fill up
        db.executemany("INSERT OR REPLACE INTO agg_fine VALUES (?, ?, ?, ?)", out)
        self._minutes |= {(sid, math.floor(t / 60.0) * 60.0) for sid, t, *_ in out}
        if time.monotonic() >= self._next_rollup:  # minutes and hours lag the fine rows by at most a minute
            self.roll_up(db)
        return len(out)

    def roll_up(self, db: sqlite3.Connection) -> None:
        """The minute buckets whose fine rows changed since the last time, then their hours."""
        minutes, self._minutes = self._minutes, set()
        self._next_rollup = time.monotonic() + ROLLUP_S
        self._rollup(db, "fine", "minute", minutes)
        self._rollup(db, "minute", "hour", {(sid, math.floor(t / 3600.0) * 3600.0) for sid, t in minutes})

    def _rollup(self, db: sqlite3.Connection, src: str, dst: str, keys: set[tuple[int, float]]) -> None:
        """The `dst` buckets in `keys` again from their `src` rows: exact, and late rows count."""
        span = self.seconds[dst]
        out = []
        for sid, t0 in sorted(keys):
            got = db.execute(
                f"SELECT v, cause FROM agg_{src} WHERE series = ? AND t >= ? AND t < ? ORDER BY t", (sid, t0, t0 + span)
            ).fetchall()
            if not got:
                continue
            blocks, scores = schema.unpack([g[0] for g in got], self._ns_of(db, sid))
            cause = next((g[1] for g in reversed(got) if g[1]), None)
            out.append((sid, t0, schema.pack(schema.combine(blocks), schema.combine_scores(scores)), cause))
        out.sort(key=_by_time)
        db.executemany(f"INSERT OR REPLACE INTO agg_{dst} VALUES (?, ?, ?, ?)", out)

    def _ns_of(self, db: sqlite3.Connection, sid: int) -> int:
        ns = self._ns.get(sid)
        if ns is None:
            ns = self._ns[sid] = len(orjson.loads(db.execute("SELECT signals FROM series WHERE id = ?", (sid,)).fetchone()[0]))
        return ns

    def _features(
        self, db: sqlite3.Connection, rows: list[tuple[str, str, float, str, bytes, int, float | None, float | None]]
    ) -> int:
        out = []
        for asset, key, t, names, x, judged, an, risk in rows:
            nid = self._names.get(names)
            if nid is None:
                db.execute("INSERT OR IGNORE INTO names (names) VALUES (?)", (names,))
                nid = self._names[names] = int(db.execute("SELECT id FROM names WHERE names = ?", (names,)).fetchone()[0])
            out.append((self._sid(db, asset, key), t, nid, x, judged, an, risk))
        out.sort(key=_by_time)
        db.executemany("INSERT OR REPLACE INTO features VALUES (?, ?, ?, ?, ?, ?, ?)", out)
        return len(out)

    def _raw(self, db: sqlite3.Connection, blocks: list[tuple[list[str], str, int, np.ndarray]]) -> int:
        """Raw readings, one packed row per asset and flush."""
        n = 0
        by: dict[tuple[str, str], list[np.ndarray]] = {}
        for assets, key, ns, raw in blocks:
            row = raw[:, 2].astype(np.int64)
            asset_i = row // ns
            for i in np.unique(asset_i).tolist():
                by.setdefault((assets[i], key), []).append(raw[asset_i == i])
        for (asset, key), parts in by.items():
            a = np.concatenate(parts)
            rec = np.empty(len(a), dtype=schema.RAW_DTYPE)
            rec["ts"], rec["value"] = a[:, 0], a[:, 1]
            ns = len(orjson.loads(key))
            rec["signal"] = (a[:, 2].astype(np.int64) % ns).astype(np.uint8)
            blob = rec.tobytes()
            db.execute(
                "INSERT INTO raw (series, t0, t1, v) VALUES (?, ?, ?, ?)",
                (self._sid(db, asset, key), float(a[:, 0].min()), float(a[:, 0].max()), blob),
            )
            self.raw_bytes += len(blob)
            n += len(a)
        raw_cap = self.cfg.raw_max_mb * 2**20
        while self.raw_bytes > raw_cap and self._cut_raw(db):
            pass
        return n

    # -- bounds

    def file_bytes(self) -> int:
        total = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):
                total += os.stat(f"{self.h.path}{suffix}").st_size
        return total

    def _estimate(self, b: Batch) -> int:
        """Bytes the batch may add: fine rows and the minute and hour rows they touch, the rest."""
        rows = sum(len(r) * (r.block.shape[2] * 20 + 60) for r in b.rows) * 3
        raw = sum(len(r[3]) for r in b.raw) * (schema.RAW_DTYPE.itemsize + 1)
        feats = sum(len(f[4]) + 40 for f in b.features)
        return int(rows + raw + feats + 300 * len(b.journal))

    def _used(self, db: sqlite3.Connection) -> int:
        page = db.execute("PRAGMA page_size").fetchone()[0]
        count = db.execute("PRAGMA page_count").fetchone()[0]
        free = db.execute("PRAGMA freelist_count").fetchone()[0]
        return int((count - free) * page)

    def _cap(self, db: sqlite3.Connection, incoming: int) -> None:
        """Room for the batch under max_mb (less a share for the WAL): the oldest of the finest
        data goes first, in small chunks; the first cut raises `history_cut`."""
        budget = self.cfg.max_mb * 2**20 * (1.0 - WAL_SHARE)
        cut = 0
        for _ in range(400):
            if self._used(db) + incoming <= budget:
                break
            n = self._cut_raw(db) or self._cut_agg(db, "fine") or self._cut_agg(db, "minute")
            n = n or self._cut_agg(db, "hour") or self._cut_journal(db)
            if not n:
                break
            cut += n
        if cut:
            self.h.stats_["cut"] += cut
            self._raise(
                "history_cut",
                f"history is cut short: {self.cfg.max_mb:g} MB (history.max_mb) reached, the oldest data is deleted",
                max_mb=self.cfg.max_mb,
            )
        if self.file_bytes() > budget:
            with contextlib.suppress(sqlite3.Error):
                db.execute("PRAGMA incremental_vacuum(256)").fetchall()

    def _cut_raw(self, db: sqlite3.Connection) -> int:
        got = db.execute("SELECT id, length(v) FROM raw ORDER BY id LIMIT 20").fetchall()
        if not got:
            self.raw_bytes = 0
            return 0
        db.execute("DELETE FROM raw WHERE id <= ?", (got[-1][0],))
        self.raw_bytes = max(0, self.raw_bytes - sum(g[1] for g in got))
        return len(got)

    def _cut_agg(self, db: sqlite3.Connection, tier: str) -> int:
        """The oldest 32 buckets of a tier (of every series), and with fine rows the feature rows."""
        oldest = _min_t(db, f"agg_{tier}")
        if oldest is None:
            return 0
        upto = oldest + self.seconds[tier] * 32
        n = int(db.execute(f"DELETE FROM agg_{tier} WHERE t < ?", (upto,)).rowcount)
        if tier == "fine":
            n += int(db.execute("DELETE FROM features WHERE t < ?", (upto,)).rowcount)
        return n

    def _cut_journal(self, db: sqlite3.Connection) -> int:
        return int(db.execute("DELETE FROM journal WHERE id IN (SELECT id FROM journal ORDER BY id LIMIT 100)").rowcount)

    def _purge(self, db: sqlite3.Connection, now: float) -> None:
        """Rows past each tier's age, a bounded chunk per flush (a long outage catches up over flushes)."""
        c = self.cfg
        days = {"fine": c.fine_days, "minute": c.minute_days, "hour": c.hour_days}
        n = 0
        ages = [(f"agg_{tier}", d, self.seconds[tier]) for tier, d in days.items()]
        for table, d, span in [*ages, ("features", c.features_days, self.seconds["fine"])]:
            oldest = _min_t(db, table)
            cutoff = now - d * 86400
            if oldest is not None and oldest < cutoff:  # at most PURGE_BUCKETS buckets a time: no long transaction
                n += db.execute(f"DELETE FROM {table} WHERE t < ?", (min(cutoff, oldest + PURGE_BUCKETS * span),)).rowcount
        n += db.execute("DELETE FROM journal WHERE ts < ?", (now - c.journal_days * 86400,)).rowcount
        cutoff = now - c.raw_days * 86400
        while got := db.execute("SELECT id, length(v) FROM raw WHERE t1 < ? ORDER BY id LIMIT 200", (cutoff,)).fetchall():
            db.execute("DELETE FROM raw WHERE id <= ? AND t1 < ?", (got[-1][0], cutoff))
            self.raw_bytes = max(0, self.raw_bytes - sum(g[1] for g in got))
            n += len(got)
        self.h.stats_["purged"] += n

    def _oldest(self, db: sqlite3.Connection) -> dict[str, float | None]:
        return {tier: _min_t(db, f"agg_{tier}") for tier in schema.TIERS}


def _by_time(row: tuple[Any, ...]) -> tuple[float, int]:
    return (row[1], row[0])


def _min_t(db: sqlite3.Connection, table: str) -> float | None:
    """The oldest row's time (the primary key starts with t: one lookup)."""
    t = db.execute(f"SELECT min(t) FROM {table}").fetchone()[0]
    return None if t is None else float(t)


def _corrupt(e: sqlite3.Error) -> bool:
    text = str(e).lower()
    return "malformed" in text or "not a database" in text or "corrupt" in text


def build(cfg: GatewayConfig, state_dir: Path | None, emit: Callable[[Alert], None] | None) -> Historian | None:
    """The historian the config asks for, or None (history off, or nowhere to keep it)."""
    path = cfg.history.file(state_dir)
    return Historian(cfg, path, emit) if path is not None else None
