"""seq across restarts: a clean stop continues without a gap, an unclean one skips, nothing is reused."""

from __future__ import annotations

import time
from pathlib import Path

from edgegw.sequence import LEASE, DurableSequencer


def test_clean_stop_continues_without_a_gap(tmp_path: Path) -> None:
    s = DurableSequencer(tmp_path / "gw.seq")
    assert [s.next() for _ in range(3)] == [1, 2, 3]
    s.close()
    assert DurableSequencer(tmp_path / "gw.seq").next() == 4


def test_unclean_stop_skips_ahead_and_never_reuses(tmp_path: Path) -> None:
    s = DurableSequencer(tmp_path / "gw.seq")
    issued = [s.next() for _ in range(LEASE + 5)]  # crosses a lease: a second mark was written
    # no close(): the process died
    after = DurableSequencer(tmp_path / "gw.seq").next()
    assert after > max(issued)
    assert after - max(issued) <= LEASE + 1


def test_outbox_mark_above_the_file_wins(tmp_path: Path) -> None:
    s = DurableSequencer(tmp_path / "gw.seq")
    s.next()
    s.value = 5000  # what the bridge does with the outbox's high-water mark
    assert s.next() == 5001
    s2 = DurableSequencer(tmp_path / "gw.seq")  # the lease taken at 5001 is on disk
    assert s2.next() > 5001


def test_damaged_file_continues_from_the_clock(tmp_path: Path) -> None:
    (tmp_path / "gw.seq").write_text("garbage\n")
    before = int(time.time() * 1000)
    assert DurableSequencer(tmp_path / "gw.seq").next() > before


def test_unwritable_state_keeps_counting(tmp_path: Path) -> None:
    s = DurableSequencer(tmp_path / "gone" / "gw.seq")  # the folder does not exist: writes fail, logged
    assert [s.next() for _ in range(3)] == [1, 2, 3]
    s.close()
