"""The alarm journal: batched writes, retention by age and by size, shelves kept across restarts."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgegw.config.notify import JournalConfig
from edgegw.notify.journal import Journal, parse_since, read


async def test_entries_wait_in_memory_until_the_batch_is_written(tmp_path: Path) -> None:
    j = Journal(tmp_path / "alarms.db", JournalConfig(flush_s=10))
    for i in range(50):
        j.record("raised", f"pump-{i}", "threshold", "vibration", "warning", detail={"message": "hi"})
    assert read(tmp_path / "alarms.db", 0) == []  # nothing written per alarm
    await j.flush({})
    assert len(read(tmp_path / "alarms.db", 0)) == 50 and j.stats()["written"] == 50
    j.close({})


def test_retention_by_age_and_by_size(tmp_path: Path) -> None:
    path = tmp_path / "alarms.db"
    j = Journal(path, JournalConfig(retention_days=1, max_mb=0.25))
    now = time.time()
    j.record("raised", "old", "stale", "flow", ts=now - 2 * 86400)
    j.record("raised", "new", "stale", "flow", ts=now)
    j.close({})
    assert [e["asset"] for e in read(path, 0)] == ["new"]
    j = Journal(path, JournalConfig(retention_days=1, max_mb=0.25))
    for i in range(3000):
        j.record("raised", f"pump-{i}", "anomaly", "pump-model", detail={"top": "x" * 200})
    j.close({})
    left = read(path, 0)
    assert 0 < len(left) < 3000 and left[-1]["asset"] == "pump-2999"  # the oldest went first
    assert path.stat().st_size < 0.5 * 2**20


def test_shelves_survive_a_restart(tmp_path: Path) -> None:
    j = Journal(tmp_path / "alarms.db", JournalConfig())
    until = time.time() + 600
    j.close(
        {
            ("pump-1", "threshold", "vibration"): (until, "ann", "bearing swap"),
            ("pump-2", "stale", "flow"): (time.time() - 1, "bob", ""),
        }
    )
    again = Journal(tmp_path / "alarms.db", JournalConfig())
    assert again.load_shelves() == {("pump-1", "threshold", "vibration"): (until, "ann", "bearing swap")}
    again.close({})


def test_since_accepts_spans_and_times() -> None:
    assert parse_since("24h", now=100000.0) == 100000.0 - 86400
    assert parse_since("30m", now=0.0) == -1800.0
    assert parse_since("2026-01-31T08:00Z") == parse_since("2026-01-31T08:00")
    with pytest.raises(ValueError, match=r"expected e\.g\. 24h"):
        parse_since("yesterday")


def test_cli_reads_the_journal_of_a_config_and_says_when_there_is_none(tmp_path: Path) -> None:
    from tests.notify.peers import notify_config

    notify_config(tmp_path, 1883, {"state_dir": str(tmp_path / "st"), "targets": []})
    cfg = [str(tmp_path / "gw.yaml"), "--set", "mqtt.port=1883", "--set", "history.enabled=false"]  # the notify journal
    args = [sys.executable, "-m", "edgegw", "alarms", "-c", *cfg]
    r = subprocess.run(args, capture_output=True, text=True)
    assert r.returncode == 1 and "no journal at" in r.stderr
    j = Journal(tmp_path / "st" / "alarms.db", JournalConfig())
    j.record("shelved", "pump-4", "threshold", "current", by="ann", note="motor swap")
    asyncio.run(j.flush({}))  # the daemon still holds the file open
    r = subprocess.run([*args, "--since", "1h"], capture_output=True, text=True, check=True)
    assert "shelved" in r.stdout and "motor swap" in r.stdout
    j.close({})
    r = subprocess.run([*args, "--csv"], capture_output=True, text=True, check=True)
    assert r.stdout.count("\n") == 2
