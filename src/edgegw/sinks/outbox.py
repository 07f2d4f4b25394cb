"""The durable store-and-forward queue of the upstream bridge: one SQLite file in WAL mode.

A message is inserted and committed before it is handed to the publisher, and deleted only when
the broker has acknowledged it (QoS 1 PUBACK). Commits do not fsync (WAL, synchronous=NORMAL):
a committed message survives the process being killed, because it sits in the kernel's page
cache. `sync()` makes the WAL durable on the storage itself, in a worker thread, every
`commit_ms`; that period is what a power cut can lose at most. Acknowledgements are plain
DELETEs in the open transaction and ride along with the next commit: a crash before it means a
message is sent again (at-least-once; consumers de-duplicate by id).

Bounded on disk: when the stored messages would exceed the cap, the oldest readings go first,
then the oldest rollups; alerts only when nothing else is left. Every dropped message is counted.
A message the server will never take (too large, refused for good) is moved to the `dead_letter`
table (the last DEAD_LETTER_KEEP of them, with the reason), counted, and leaves the queue.

A full disk does not stop the gateway: the outbox keeps a reserve file next to the database
(`<path>.reserve`, RESERVE of the cap) and gives it up the moment a write fails for want of
space, so the write is tried again and acknowledgements can still commit; while space is short
the WAL is checkpointed and truncated at every sync. Messages a failed write could not store are
kept in memory (`unstored`, bounded) and stored again once writes succeed; `space_short` says
so for the bridge's alarm. When the partition has room again the reserve is taken back.

A file that SQLite cannot read is moved aside (`<path>.corrupt-<time>`) and a fresh outbox is
started; a path that cannot be opened at all falls back to memory. Either way the daemon runs
and `problems` says what happened.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import IO, Any, TypedDict

import structlog

from edgegw.ratelimit import RateLimitedLog

log = structlog.get_logger("edgegw.sinks.outbox")

ROW_OVERHEAD = 32  # bytes a row costs beyond topic and payload (rowid, header, cell pointer)
SEQ_SKIP_AFTER_POWER_LOSS = 1000  # seq numbers skipped after an unclean reboot: a visible gap, never reuse
_WAL_CHECKPOINT_BYTES = 4 << 20
UNSTORED_MAX = 10_000  # messages held in memory while the disk refuses writes
_SQLITE_FULL = 13


def reserve_bytes(max_bytes: int) -> int:
    """Headroom kept on the partition for the outbox's own use: 1/8 of the cap, 128 KiB to 4 MiB."""
    return max(128 << 10, min(4 << 20, max_bytes // 8))


_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    kind INTEGER NOT NULL,
    size INTEGER NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_kind ON outbox (kind, id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value);
CREATE TABLE IF NOT EXISTS dead_letter (
    id INTEGER PRIMARY KEY,
    kind INTEGER NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    reason TEXT NOT NULL,
    ts REAL NOT NULL
);
"""
DEAD_LETTER_KEEP = 1000  # undeliverable messages kept for inspection; the oldest go beyond that


class Kind(IntEnum):
    """What a message is; the drop policy takes the highest kind first."""

    ALERT = 0
    ROLLUP = 1
    READING = 2


@dataclass(slots=True, frozen=True)
class Row:
    id: int
    topic: str
    payload: bytes


class OutboxStats(TypedDict):
    queued: int
    bytes: int
    max_bytes: int
    written: int
    acked: int
    dropped: dict[str, int]
    dead_lettered: dict[str, int]
    write_errors: int
    lost_to_damage: int
    durable: bool
    space_short: bool
    held_in_memory: int  # messages a failed write left in memory, to be stored again
    lost_unstored: int


class OutboxBusy(Exception):
    """Another process holds this outbox."""


def _corrupt(e: sqlite3.Error) -> bool:
    """SQLITE_CORRUPT or SQLITE_NOTADB: the file is damaged (not a full disk, a lock or permissions)."""
    code = getattr(e, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (11, 26)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


class Outbox:
    """Single-writer SQLite queue, used from the event loop thread; `sync()` may run in a worker thread."""

    def __init__(self, path: str | os.PathLike[str], max_bytes: int, on_drop: Callable[[Kind, int], None] | None = None) -> None:
        self.path = str(path)
        self.max_bytes = max_bytes
        self.on_drop = on_drop
        self.on_corrupt: Callable[[str], None] | None = None
        self._lock: IO[bytes] | None = None  # a file object: released when closed, or collected
        self.count = self.bytes = self.last_id = self.committed_id = 0
        self.meta: dict[str, Any] = {}
        self.problems: list[str] = []  # what went wrong opening the file, for the bridge to report
        self.in_memory = False
        self.dropped = {k.name.lower(): 0 for k in Kind}
        self.dead_lettered = {k.name.lower(): 0 for k in Kind}
        self.put_count = 0
        self.acked = 0
        self.write_errors = 0
        self.lost_to_damage = 0  # messages in a file found damaged while running
        self.seq_hwm = 0  # highest seq recorded as handed to the outbox
        self.seq_skipped = 0
        self._seq_unknown = False  # a damaged or unusable file took the seq high-water mark with it
        self._tx = False
        self._dirty_since_sync = False
        self._wal_fd: int | None = None
        self._sync_db: sqlite3.Connection | None = None
        self._sync_lock = threading.Lock()  # a cancelled sync may still be running in its thread
        self.closed = False
        self.unstored: deque[tuple[Kind, str, bytes, int]] = deque()  # failed writes, stored again later
        self.lost_unstored = 0
        self.space_short = False  # a write failed for want of space; cleared once the reserve is back
        self.last_write_error: str | None = None
        self._pending: list[tuple[Kind, str, bytes, int]] = []  # puts of the open transaction
        self._reserve = self.path + ".reserve"
        self._reserve_size = reserve_bytes(max_bytes)
        self._rl = RateLimitedLog(log)
        self._db = self._open()
        self._load()
        if not self.in_memory:
            self._take_reserve()

    # ------------------------------------------------------------------ opening

    def _connect(self, path: str) -> sqlite3.Connection:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA busy_timeout=5000")
            if path != ":memory:":
                mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise sqlite3.DatabaseError(f"cannot switch to WAL (journal_mode={mode})")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints run in sync(), off the loop thread
            db.execute(f"PRAGMA journal_size_limit={_WAL_CHECKPOINT_BYTES}")
            db.executescript(_SCHEMA)
            db.execute("SELECT count(*), max(id) FROM outbox").fetchone()
            db.execute("SELECT key, value FROM meta").fetchall()
        except BaseException:
            db.close()
            raise
        return db

    def _open(self) -> sqlite3.Connection:
        p = Path(self.path)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            self._lock_file()
            return self._connect(self.path)
        except sqlite3.DatabaseError as e:
            if _corrupt(e):
                return self._fresh(e)
            return self._memory(f"outbox {self.path} cannot be used ({e})")
        except OSError as e:
            return self._memory(f"outbox {self.path} cannot be opened ({e})")

    def _lock_file(self) -> None:
        """One process per outbox: a second one would send the same messages and interleave ids."""
        f = open(self.path + ".lock", "ab")  # noqa: SIM115 - held open for the outbox's lifetime
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            raise OutboxBusy(f"{self.path} is in use by another process") from None
        self._lock = f

    def _fresh(self, e: sqlite3.Error) -> sqlite3.Connection:
        """Not a database, malformed: move it aside (kept for a post-mortem) and start an empty one."""
        aside = f"{self.path}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}"
        try:
            for suffix in ("", "-wal", "-shm"):
                if Path(self.path + suffix).exists():
                    os.replace(self.path + suffix, aside + suffix)
            self.problems.append(f"outbox {self.path} unreadable ({e}); moved aside to {aside}")
            self._seq_unknown = True
            log.error("outbox unreadable; moved aside, starting a fresh one", path=self.path, moved_to=aside, error=str(e))
            return self._connect(self.path)
        except (OSError, sqlite3.Error) as e2:
            return self._memory(f"outbox {self.path} unreadable ({e}) and could not be replaced ({e2})")

    def _replace(self, e: sqlite3.Error) -> None:
        """Damage found while running: what the file held is lost to us; carry on with a fresh outbox."""
        lost = self.count
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
        self._tx = False
        if self._wal_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._wal_fd)
            self._wal_fd = None
        if self._sync_db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._sync_db.close()
            self._sync_db = None
        hwm, last = self.seq_hwm, self.last_id
        self._db = self._memory("outbox lost") if self.in_memory else self._fresh(e)
        self._seq_unknown = False  # known here: carried over below
        self._load()
        self.seq_hwm = max(hwm, self.seq_hwm)
        self.last_id = self.committed_id = max(last, self.last_id)
        self.lost_to_damage += lost
        if self.on_corrupt is not None:
            self.on_corrupt(self.problems[-1])

    def _memory(self, problem: str) -> sqlite3.Connection:
        self.problems.append(problem + "; keeping messages in memory, not durable")
        self._seq_unknown = True
        log.error("outbox not durable: keeping messages in memory", problem=problem)
        self.in_memory = True
        return self._connect(":memory:")

    def _load(self) -> None:
        db = self._db
        n, total, last = db.execute("SELECT count(*), coalesce(sum(size), 0), coalesce(max(id), 0) FROM outbox").fetchone()
        self.count = int(n)
        self.bytes = int(total)
        self.last_id = int(last)  # highest id ever handed out (committed or not)
        self.committed_id = self.last_id  # highest id whose insert is committed
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        self.meta = meta
        self.seq_hwm = int(meta.get("seq", 0))
        self.last_id = max(self.last_id, int(meta.get("last_id", 0)))
        self.committed_id = self.last_id
        boot, clean = _boot_id(), meta.get("clean", 1)
        if self.seq_hwm and boot and meta.get("boot") not in (None, boot) and not int(clean):
            # The machine went down hard: up to commit_ms of records may be gone, some maybe delivered.
            self.seq_skipped = SEQ_SKIP_AFTER_POWER_LOSS
            self.seq_hwm += SEQ_SKIP_AFTER_POWER_LOSS
            log.warning("unclean reboot since the last run: seq continues after a gap", skipped=SEQ_SKIP_AFTER_POWER_LOSS)
        if self._seq_unknown:
            # Never reuse a number: continue from the clock in milliseconds (a visible jump).
            self._seq_unknown = False
            self.seq_hwm = max(self.seq_hwm, int(time.time() * 1000))
            log.warning("seq high-water mark unknown: continuing from the clock", seq=self.seq_hwm)
        self._begin()
        db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", [("boot", boot), ("clean", 0), ("seq", self.seq_hwm)])
        self.commit()

    # ------------------------------------------------------------------ writing

    def _begin(self) -> None:
        if not self._tx:
            self._db.execute("BEGIN")
            self._tx = True

    def put(self, kind: Kind, topic: str, payload: bytes, seq: int = 0) -> int:
        """Insert a message in the open transaction; it is published once `commit()` ran. Returns its id."""
        size = len(topic) + len(payload) + ROW_OVERHEAD
        self.last_id += 1
        self._pending.append((kind, topic, payload, seq))
        try:
            if self.bytes + size > self.max_bytes:
                self._make_room(size)
            self._begin()
            self._db.execute("INSERT INTO outbox VALUES (?, ?, ?, ?, ?)", (self.last_id, int(kind), size, topic, payload))
        except sqlite3.Error as e:
            if not (self._space_freed(e) and self._retry_insert(kind, size, topic, payload)):
                self._write_failed(e)
                return 0
        self.count += 1
        self.bytes += size
        self.put_count += 1
        if seq > self.seq_hwm:
            self.seq_hwm = seq
        return self.last_id

    def note_seq(self, seq: int) -> None:
        """Record a seq number issued without a message here (e.g. a kind not sent upstream)."""
        if seq > self.seq_hwm:
            self.seq_hwm = seq
            try:
                self._begin()
            except sqlite3.Error as e:
                self._write_failed(e)

    def set_meta(self, key: str, value: Any) -> None:
        """A small durable fact (committed with the next commit); None deletes it."""
        try:
            self._begin()
            if value is None:
                self._db.execute("DELETE FROM meta WHERE key = ?", (key,))
                self.meta.pop(key, None)
            else:
                self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
                self.meta[key] = value
        except sqlite3.Error as e:
            self._write_failed(e)

    def ack(self, msg_id: int) -> None:
        """The broker has the message: delete it (made durable with the next commit)."""
        try:
            self._begin()
            cur = self._db.execute("DELETE FROM outbox WHERE id = ? RETURNING size", (msg_id,))
            row = cur.fetchone()
        except sqlite3.Error as e:
            self._write_failed(e)
            return
        if row is not None:  # else it was dropped by the size policy meanwhile
            self.count -= 1
            self.bytes -= int(row[0])
            self.acked += 1

    def dead_letter(self, msg_id: int, reason: str) -> Kind | None:
        """Move an undeliverable message out of the queue into `dead_letter`; its kind, None if gone."""
        try:
            self._begin()
            row = self._db.execute("DELETE FROM outbox WHERE id = ? RETURNING kind, size, topic, payload", (msg_id,)).fetchone()
            if row is None:
                return None
            kind, size, topic, payload = row
            self._db.execute(
                "INSERT OR REPLACE INTO dead_letter VALUES (?, ?, ?, ?, ?, ?)",
                (msg_id, kind, topic, payload, reason, time.time()),
            )
            self._db.execute(
                "DELETE FROM dead_letter WHERE id <= (SELECT id FROM dead_letter ORDER BY id DESC LIMIT 1 OFFSET ?)",
                (DEAD_LETTER_KEEP,),
            )
        except sqlite3.Error as e:
            self._write_failed(e)
            return None
        self.count -= 1
        self.bytes -= int(size)
        k = Kind(int(kind))
        self.dead_lettered[k.name.lower()] += 1
        return k

    def read_ids(self, ids: list[int]) -> list[Row]:
        """Committed messages with these ids (those still queued), oldest first."""
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = self._db.execute(f"SELECT id, topic, payload FROM outbox WHERE id IN ({marks}) ORDER BY id", ids).fetchall()
        return [Row(r[0], r[1], bytes(r[2])) for r in rows if r[0] <= self.committed_id]

    def commit(self) -> bool:
        """Commit puts and acks (no fsync); True when something was committed."""
        if not self._tx:
            return False
        try:
            self._commit_tx()
        except sqlite3.Error as e:
            if not (self._space_freed(e) and self._db.in_transaction and self._retry(self._commit_tx)):
                self._write_failed(e)
                return False
        self._tx = False
        self._pending.clear()
        self.committed_id = self.last_id
        self._dirty_since_sync = True
        return True

    def _commit_tx(self) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('seq', ?), ('last_id', ?)", (self.seq_hwm, self.last_id))
        self._db.execute("COMMIT")

    def _retry(self, op: Callable[[], None]) -> bool:
        try:
            op()
        except sqlite3.Error:
            return False
        return True

    def _retry_insert(self, kind: Kind, size: int, topic: str, payload: bytes) -> bool:
        def insert() -> None:
            self._begin()
            self._db.execute("INSERT INTO outbox VALUES (?, ?, ?, ?, ?)", (self.last_id, int(kind), size, topic, payload))

        return self._retry(insert)

    def _space_freed(self, e: sqlite3.Error) -> bool:
        """The disk is full: give up the reserve so the failed write can be tried once more."""
        if getattr(e, "sqlite_errorcode", None) != _SQLITE_FULL and "full" not in str(e):
            return False
        if not self.space_short:
            log.error("disk full under the outbox: using its reserved headroom", path=self.path, error=str(e))
        self.space_short = True
        self.last_write_error = str(e)
        try:
            os.unlink(self._reserve)
        except FileNotFoundError:
            return False
        except OSError:
            return False
        return True

    def _take_reserve(self) -> bool:
        """(Re)claim the headroom file; False when the partition has no room for it."""
        try:
            fd = os.open(self._reserve, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                os.posix_fallocate(fd, 0, self._reserve_size)
            finally:
                os.close(fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(self._reserve)
            return False
        return True

    def _write_failed(self, e: sqlite3.Error) -> None:
        """Disk full, I/O error: what the open transaction held is kept in memory to be stored again
        (`retry_unstored`), up to UNSTORED_MAX; counted and logged (rate-limited), never raised."""
        self.write_errors += 1
        self.last_write_error = str(e)
        if getattr(e, "sqlite_errorcode", None) == _SQLITE_FULL or "full" in str(e):
            self.space_short = True
        if self._tx or self._db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            self._tx = False
        for item in self._pending:
            if item[0] == Kind.READING:
                self.lost_unstored += 1  # readings are sampled again; not worth memory
            elif len(self.unstored) < UNSTORED_MAX:
                self.unstored.append(item)
            else:
                self.lost_unstored += 1
        self._pending.clear()
        self._rl.warning(
            "write",
            "outbox write failed; messages held in memory until it works again",
            error=str(e),
            held=len(self.unstored),
            lost=self.lost_unstored,
            write_errors=self.write_errors,
        )
        self.last_id = self.committed_id
        if _corrupt(e):
            self._replace(e)
            return
        try:
            n, total = self._db.execute("SELECT count(*), coalesce(sum(size), 0) FROM outbox").fetchone()
            self.count, self.bytes = int(n), int(total)
        except sqlite3.DatabaseError as e2:
            if _corrupt(e2):
                self._replace(e2)

    def retry_unstored(self) -> int:
        """Store again what failed writes left in memory, oldest first; how many are still held."""
        held, self.unstored = self.unstored, deque()
        for kind, topic, payload, seq in held:
            self.put(kind, topic, payload, seq)  # a failure puts it (and the rest of the transaction) back
        self.commit()
        return len(self.unstored)

    def _make_room(self, need: int) -> None:
        """Drop the oldest messages of the least important kind until `need` more bytes fit."""
        target = self.max_bytes - need - self.max_bytes // 100  # free 1 % extra: no drop query per put
        for kind in (Kind.READING, Kind.ROLLUP, Kind.ALERT):
            while self.bytes > target:
                rows = self._db.execute(
                    "SELECT id, size FROM outbox WHERE kind = ? ORDER BY id LIMIT 512", (int(kind),)
                ).fetchall()
                if not rows:
                    break
                ids, freed = [], 0
                for rid, size in rows:
                    ids.append((rid,))
                    freed += size
                    if self.bytes - freed <= target:
                        break
                self._begin()
                self._db.executemany("DELETE FROM outbox WHERE id = ?", ids)
                self.bytes -= freed
                self.count -= len(ids)
                self.dropped[kind.name.lower()] += len(ids)
                if self.on_drop is not None:
                    self.on_drop(kind, len(ids))

    # ------------------------------------------------------------------ reading

    def read(self, after: int, upto: int | None = None, limit: int = 256) -> list[Row]:
        """Committed messages with after < id <= upto, oldest first."""
        hi = self.committed_id if upto is None else min(upto, self.committed_id)
        if hi <= after:
            return []
        try:
            rows = self._db.execute(
                "SELECT id, topic, payload FROM outbox WHERE id > ? AND id <= ? ORDER BY id LIMIT ?", (after, hi, limit)
            ).fetchall()
        except sqlite3.DatabaseError as e:
            if not _corrupt(e):
                raise
            self._replace(e)
            return []
        return [Row(r[0], r[1], bytes(r[2])) for r in rows]

    def first_id(self) -> int:
        try:
            row = self._db.execute("SELECT min(id) FROM outbox").fetchone()
        except sqlite3.DatabaseError as e:
            if not _corrupt(e):
                raise
            self._replace(e)
            row = None
        return int(row[0]) if row and row[0] is not None else self.committed_id + 1

    # ------------------------------------------------------------------ durability

    def sync(self) -> None:
        """Make everything committed durable on the storage (fsync of the WAL); checkpoint when it grew.

        Safe to call from one worker thread while the loop thread keeps writing: the fsync goes through
        a file descriptor of our own, the checkpoint through a connection of its own (PASSIVE: never
        blocks the writer).
        """
        if self.in_memory or not (self._dirty_since_sync or self.space_short):
            return
        with self._sync_lock:
            if not self.closed:
                self._sync()

    def _sync(self) -> None:
        self._dirty_since_sync = False
        wal = self.path + "-wal"
        try:
            if self._wal_fd is None:
                self._wal_fd = os.open(wal, os.O_RDONLY)
                _fsync_dir(os.path.dirname(os.path.abspath(wal)))  # the WAL's directory entry, once
            os.fsync(self._wal_fd)
            short = self.space_short or self._free_bytes() < self._reserve_size
            if short or os.fstat(self._wal_fd).st_size >= _WAL_CHECKPOINT_BYTES:
                if self._sync_db is None:
                    self._sync_db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                    self._sync_db.execute("PRAGMA synchronous=NORMAL")
                    self._sync_db.execute("PRAGMA busy_timeout=100")
                # short of space: TRUNCATE gives the WAL's blocks back to the partition
                self._sync_db.execute(f"PRAGMA wal_checkpoint({'TRUNCATE' if short else 'PASSIVE'})").fetchone()
            if self.space_short and self._free_bytes() >= 2 * self._reserve_size and self._take_reserve():
                self.space_short = False
                log.info("disk space back under the outbox; headroom reserved again", path=self.path)
        except (OSError, sqlite3.Error) as e:
            self._dirty_since_sync = True
            self._rl.warning("sync", "outbox sync failed", error=str(e))

    def _free_bytes(self) -> int:
        st = os.statvfs(os.path.dirname(os.path.abspath(self.path)))
        return st.f_bavail * st.f_frsize

    def close(self) -> None:
        """Commit, mark a clean stop, checkpoint and close."""
        if self.closed:
            return
        self.commit()
        with self._sync_lock:
            self.closed = True
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('clean', 1)")
            for closer in (self._sync_db, self._db):
                if closer is not None:
                    with contextlib.suppress(sqlite3.Error):
                        if closer is self._db and not self.in_memory:
                            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                        closer.close()
            if self._wal_fd is not None:
                with contextlib.suppress(OSError):
                    os.close(self._wal_fd)
            self._wal_fd = None
            self._sync_db = None
        with contextlib.suppress(OSError):
            os.unlink(self._reserve)
        if self._lock is not None:
            self._lock.close()  # releases the flock
            self._lock = None

    # ------------------------------------------------------------------ reporting

    def stats(self) -> OutboxStats:
        return OutboxStats(
            queued=self.count,
            bytes=self.bytes,
            max_bytes=self.max_bytes,
            written=self.put_count,
            acked=self.acked,
            dropped=dict(self.dropped),
            dead_lettered=dict(self.dead_lettered),
            write_errors=self.write_errors,
            lost_to_damage=self.lost_to_damage,
            durable=not self.in_memory,
            space_short=self.space_short,
            held_in_memory=len(self.unstored),
            lost_unstored=self.lost_unstored,
        )
