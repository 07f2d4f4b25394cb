"""The alarm journal: every transition, ack and shelve, kept on the gateway in one SQLite file.

Entries gather in memory and are written in one transaction every `flush_s` (and at a clean
stop), in a worker thread: an SD card sees one small write per period, not one per alarm. A
kill loses at most that period of journal (never a notification: those have queues of their
own). Retention deletes entries older than `retention_days` and, beyond `max_mb`, the oldest.
The active shelves are kept here too, so a restart does not end a shelf early.

`edgegw alarms --since 24h [--csv]` (edgegw.history.cli) prints it, or history's journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import structlog

from edgegw.config.notify import JournalConfig

log = structlog.get_logger("edgegw.notify.journal")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS journal (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    event TEXT NOT NULL,
    asset TEXT NOT NULL,
    kind TEXT NOT NULL,
    source TEXT NOT NULL,
    severity TEXT NOT NULL,
    by TEXT NOT NULL,
    note TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_ts ON journal (ts);
CREATE TABLE IF NOT EXISTS shelves (
    asset TEXT NOT NULL, kind TEXT NOT NULL, source TEXT NOT NULL,
    until REAL NOT NULL, by TEXT NOT NULL, note TEXT NOT NULL,
    PRIMARY KEY (asset, kind, source)
);
"""
COLUMNS = ("ts", "event", "asset", "kind", "source", "severity", "by", "note", "detail")

Key = tuple[str, str, str]
Shelf = tuple[float, str, str]  # until (epoch s), by, note


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA busy_timeout=5000")
    db.execute("PRAGMA auto_vacuum=INCREMENTAL")  # takes effect on a new file: freed pages can be returned
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(_SCHEMA)
    return db


class Journal:
    """Written from the event loop (`record`), flushed in a worker thread."""

    def __init__(self, path: Path, cfg: JournalConfig) -> None:
        self.path = path
        self.cfg = cfg
        self._buf: list[tuple[Any, ...]] = []
        self._lock = threading.Lock()
        self.written = 0
        self.deleted = 0
        self.errors = 0
        self._db: sqlite3.Connection | None = None
        try:
            self._db = _connect(path)
        except (OSError, sqlite3.Error) as e:
            log.error("alarm journal unavailable; alarms are not journalled", path=str(path), error=str(e))

    def record(
        self,
        event: str,
        asset: str,
        kind: str,
        source: str,
        severity: str = "",
        by: str = "",
        note: str = "",
        detail: dict[str, Any] | bytes | None = None,
        ts: float | None = None,
    ) -> None:
        """One entry; `detail` is JSON (the alert as published) or a dict made JSON here."""
        text = detail.decode() if isinstance(detail, bytes) else orjson.dumps(detail or {}).decode()
        self._buf.append((time.time() if ts is None else ts, event, asset, kind, source, severity, by, note, text))

    def load_shelves(self) -> dict[Key, Shelf]:
        if self._db is None:
            return {}
        with self._lock:
            rows = self._db.execute(
                "SELECT asset, kind, source, until, by, note FROM shelves WHERE until > ?", (time.time(),)
            ).fetchall()
        return {(r[0], r[1], r[2]): (float(r[3]), r[4], r[5]) for r in rows}

    async def run(self, shelves: dict[Key, Shelf]) -> None:
        while True:
            await asyncio.sleep(self.cfg.flush_s)
            await self.flush(shelves)

    async def flush(self, shelves: dict[Key, Shelf]) -> None:
        batch, self._buf = self._buf, []
        await asyncio.to_thread(self._write, batch, dict(shelves))

    def close(self, shelves: dict[Key, Shelf]) -> None:
        batch, self._buf = self._buf, []
        self._write(batch, dict(shelves))
        if self._db is not None:
            with self._lock, contextlib.suppress(sqlite3.Error):
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                self._db.close()
            self._db = None

    def _write(self, batch: list[tuple[Any, ...]], shelves: dict[Key, Shelf]) -> None:
        if self._db is None:
            return
        with self._lock:
            db = self._db
            try:
                db.execute("BEGIN")
                db.executemany(f"INSERT INTO journal ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})", batch)
                db.execute("DELETE FROM shelves")
                db.executemany("INSERT INTO shelves VALUES (?, ?, ?, ?, ?, ?)", [(*k, *v) for k, v in shelves.items()])
                self.deleted += db.execute(
                    "DELETE FROM journal WHERE ts < ?", (time.time() - self.cfg.retention_days * 86400,)
                ).rowcount
                self._trim(db)
                db.execute("COMMIT")
                self.written += len(batch)
            except sqlite3.Error as e:
                self.errors += 1
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                log.error("alarm journal write failed; entries lost", error=str(e), lost=len(batch))
                return
            with contextlib.suppress(sqlite3.Error):
                db.executescript("PRAGMA incremental_vacuum;")  # executescript steps it to the end, execute frees one page

    def _trim(self, db: sqlite3.Connection) -> None:
        """Beyond max_mb: drop the oldest fifth of the entries, as often as it takes."""
        cap = self.cfg.max_mb * 2**20
        page = db.execute("PRAGMA page_size").fetchone()[0]
        for _ in range(20):
            used = (db.execute("PRAGMA page_count").fetchone()[0] - db.execute("PRAGMA freelist_count").fetchone()[0]) * page
            n = db.execute("SELECT count(*) FROM journal").fetchone()[0]
            if used <= cap or n == 0:
                return
            self.deleted += db.execute(
                "DELETE FROM journal WHERE id IN (SELECT id FROM journal ORDER BY id LIMIT ?)", (max(1, n // 5),)
            ).rowcount

    def stats(self) -> dict[str, Any]:
        return {"written": self.written, "buffered": len(self._buf), "deleted": self.deleted, "errors": self.errors}


def read(path: Path, since: float) -> list[dict[str, Any]]:
    """Entries with ts >= since, oldest first."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute(f"SELECT {', '.join(COLUMNS)} FROM journal WHERE ts >= ? ORDER BY ts, id", (since,)).fetchall()
    finally:
        db.close()
    return [dict(zip(COLUMNS, r, strict=True)) for r in rows]


_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(text: str, now: float | None = None) -> float:
    """`24h`, `30m`, `7d` (before now) or an ISO 8601 time (UTC unless it says otherwise) -> epoch seconds."""
    now = time.time() if now is None else now
    m = _SPAN.match(text)
    if m:
        return now - float(m.group(1)) * _UNIT[m.group(2)]
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--since {text!r}: expected e.g. 24h, 30m, 7d or 2026-01-31T08:00") from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()
