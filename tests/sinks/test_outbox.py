"""The outbox on its own: durable across a killed process, bounded with its drop policy, batched
acknowledgements, a corrupt file moved aside."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgegw.sinks.outbox import Kind, Outbox


def _fill(ob: Outbox, n: int, kind: Kind = Kind.ALERT, start_seq: int = 1) -> list[int]:
    ids = [ob.put(kind, f"t/{i}", b"x" * 100, seq=start_seq + i) for i in range(n)]
    ob.commit()
    return ids


def test_put_read_ack_in_order(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db", 10 * 2**20)
    ids = _fill(ob, 10)
    assert [r.id for r in ob.read(0)] == ids
    assert [r.topic for r in ob.read(ids[2], ids[5])] == ["t/3", "t/4", "t/5"]
    for i in ids[:4]:
        ob.ack(i)
    ob.commit()
    assert ob.count == 6 and ob.acked == 4
    assert ob.first_id() == ids[4]
    ob.close()
    again = Outbox(tmp_path / "o.db", 10 * 2**20)
    assert [r.id for r in again.read(0)] == ids[4:]
    assert again.seq_hwm == 10
    again.close()


def test_uncommitted_rows_are_not_handed_out(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db", 2**20)
    ob.put(Kind.ALERT, "a", b"1")
    assert ob.read(0) == []
    ob.commit()
    assert len(ob.read(0)) == 1
    ob.close()


def test_committed_rows_survive_sigkill(tmp_path: Path) -> None:
    """A child process commits (no fsync) and is killed with SIGKILL before closing: nothing is lost."""
    db = tmp_path / "o.db"
    code = (
        "import os, signal\n"
        "from edgegw.sinks.outbox import Kind, Outbox\n"
        f"ob = Outbox({str(db)!r}, 2**24)\n"
        "for i in range(5000):\n"
        "    ob.put(Kind.ROLLUP if i % 2 else Kind.ALERT, f't/{i}', b'p%d' % i, seq=i + 1)\n"
        "    if i % 100 == 99:\n"
        "        ob.commit()\n"
        "ob.ack(1); ob.ack(2); ob.commit()\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert r.returncode == -9, r.stderr
    ob = Outbox(db, 2**24)
    rows = ob.read(0, limit=10_000)
    assert [r.id for r in rows] == list(range(3, 5001))
    assert rows[0].payload == b"p2" and rows[-1].payload == b"p4999"
    assert ob.seq_hwm == 5000
    ob.close()


def test_full_drops_oldest_rollups_first_and_keeps_alerts(tmp_path: Path) -> None:
    dropped: list[tuple[Kind, int]] = []
    size = 100 + 3 + 32  # payload + topic + row overhead
    ob = Outbox(tmp_path / "o.db", 40 * size, on_drop=lambda k, n: dropped.append((k, n)))
    for i in range(20):
        ob.put(Kind.ALERT, "a/x", b"a" * 100, seq=i)
        ob.put(Kind.ROLLUP, "r/x", b"r" * 100, seq=i)
    ob.commit()
    assert ob.count == 40 and not dropped
    for _ in range(10):
        ob.put(Kind.ALERT, "a/y", b"A" * 100)
    ob.commit()
    rows = ob.read(0, limit=1000)
    topics = [r.topic for r in rows]
    assert topics.count("a/x") == 20 and topics.count("a/y") == 10, "every alert kept"
    assert ob.bytes <= ob.max_bytes
    assert ob.dropped["rollup"] >= 10 and ob.dropped["alert"] == 0
    assert all(k == Kind.ROLLUP for k, _ in dropped)
    kept_rollups = [r.id for r in rows if r.topic == "r/x"]
    assert kept_rollups == sorted(kept_rollups) and kept_rollups[0] > 2 * ob.dropped["rollup"] - 2, "oldest went"
    # nothing but alerts left: the oldest alerts go as a last resort, counted as such
    for _ in range(40):
        ob.put(Kind.ALERT, "a/z", b"Z" * 100)
    ob.commit()
    assert ob.dropped["alert"] > 0 and ob.bytes <= ob.max_bytes
    assert ob.read(0, limit=1000)[-1].topic == "a/z"
    ob.close()


def test_readings_go_before_rollups(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db", 10 * 140)
    ob.put(Kind.ROLLUP, "r/x", b"r" * 100)
    for _ in range(9):
        ob.put(Kind.READING, "v/x", b"v" * 100)
    ob.put(Kind.ALERT, "a/x", b"a" * 100)
    ob.commit()
    assert ob.dropped["reading"] >= 1 and ob.dropped["rollup"] == 0
    ob.close()


def test_corrupt_file_is_moved_aside(tmp_path: Path) -> None:
    db = tmp_path / "o.db"
    db.write_bytes(b"this is not a database at all" * 200)
    ob = Outbox(db, 2**20)
    assert ob.problems and "moved aside" in ob.problems[0]
    aside = list(tmp_path.glob("o.db.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not")
    assert ob.seq_hwm >= int(time.time() * 1000) - 60_000, "the old high-water mark is gone: continue from the clock"
    _fill(ob, 3)
    assert len(ob.read(0)) == 3 and not ob.in_memory
    ob.close()


def test_truncated_database_is_moved_aside(tmp_path: Path) -> None:
    db = tmp_path / "o.db"
    ob = Outbox(db, 2**24)
    _fill(ob, 2000)
    ob.close()
    data = db.read_bytes()
    db.write_bytes(data[:100] + b"\xff" * 4000 + data[4100:])  # header kept, schema page trashed
    ob = Outbox(db, 2**24)
    assert ob.problems, "damage not noticed"
    assert list(tmp_path.glob("o.db.corrupt-*"))
    ob.close()


def test_unopenable_path_falls_back_to_memory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    ob = Outbox(blocker / "sub" / "o.db", 2**20)  # parent is a file: cannot be created
    assert ob.in_memory and ob.problems
    _fill(ob, 2)
    assert len(ob.read(0)) == 2
    ob.close()


def test_sync_and_wal_stays_bounded(tmp_path: Path) -> None:
    db = tmp_path / "o.db"
    ob = Outbox(db, 2**30)
    for round_ in range(6):
        ids = [ob.put(Kind.ROLLUP, "r", b"y" * 2000) for _ in range(1000)]
        ob.commit()
        for i in ids:
            ob.ack(i)
        ob.commit()
        ob.sync()
        assert round_ < 1 or Path(str(db) + "-wal").stat().st_size < 64 * 2**20
    assert ob.count == 0
    ob.close()
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT value FROM meta WHERE key='clean'").fetchone()[0] == 1


def test_seq_skips_ahead_after_an_unclean_reboot_only(tmp_path: Path) -> None:
    db = tmp_path / "o.db"
    ob = Outbox(db, 2**20)
    _fill(ob, 5)
    ob.close()
    assert Outbox(db, 2**20).seq_hwm == 5  # same boot: exact, no gap
    with sqlite3.connect(db) as c:  # as if the machine had rebooted without a clean stop
        c.execute("UPDATE meta SET value='another-boot' WHERE key='boot'")
        c.execute("UPDATE meta SET value=0 WHERE key='clean'")
    ob = Outbox(db, 2**20)
    assert ob.seq_hwm == 5 + 1000 and ob.seq_skipped == 1000
    ob.close()
    with sqlite3.connect(db) as c:  # a clean stop, then a reboot: no gap
        c.execute("UPDATE meta SET value='yet-another-boot' WHERE key='boot'")
    assert Outbox(db, 2**20).seq_hwm == 1005


def test_damage_found_while_running_moves_the_file_aside_and_carries_on(tmp_path: Path) -> None:
    db = tmp_path / "o.db"
    reported: list[str] = []
    ob = Outbox(db, 2**26)
    ob.on_corrupt = reported.append
    _fill(ob, 3000)
    ob._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the main file ...
    ob._db.execute("PRAGMA cache_size=1")  # ... and read from it again, not from the page cache
    size = db.stat().st_size
    with open(db, "r+b") as f:  # a failing card: everything past the schema turns to garbage
        for off in range(8192, size, 4096):
            f.seek(off)
            f.write(b"\xa5" * 4096)
    assert ob.read(0, limit=5000) == []
    assert reported and "moved aside" in reported[0]
    assert ob.lost_to_damage == 3000 and ob.stats()["lost_to_damage"] == 3000
    assert list(tmp_path.glob("o.db.corrupt-*"))
    new = ob.put(Kind.ALERT, "a", b"x", seq=3001)
    ob.commit()
    assert new > 3000 and [r.id for r in ob.read(0)] == [new], "ids and seq never go back"
    assert ob.seq_hwm == 3001
    ob.close()


def test_one_process_per_outbox(tmp_path: Path) -> None:
    from edgegw.sinks.outbox import OutboxBusy

    first = Outbox(tmp_path / "o.db", 2**20)
    with pytest.raises(OutboxBusy, match="in use by another process"):
        Outbox(tmp_path / "o.db", 2**20)
    first.close()
    Outbox(tmp_path / "o.db", 2**20).close()
