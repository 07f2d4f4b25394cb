"""`seq`: monotonic per gateway, across restarts, never reused.

With a state directory the file `<gateway id>.seq` holds a mark at or above every number handed
out: numbers are leased LEASE at a time (one small durable write per lease), so an unclean stop
skips at most LEASE numbers on the next start and never reuses one; a clean stop writes the last
number, and the next start goes on without a gap. An unreadable file continues from the clock in
milliseconds, as the outbox does.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import structlog

from edgegw.ratelimit import RateLimitedLog

log = structlog.get_logger("edgegw.sequence")
LEASE = 1000


class Sequencer:
    """Per-gateway monotonic sequence numbers for alerts and rollups (in memory)."""

    def __init__(self, start: int = 0) -> None:
        self.value = start

    def next(self) -> int:
        self.value += 1
        return self.value

    def close(self) -> None:
        """Nothing to keep."""


class DurableSequencer(Sequencer):
    """A Sequencer whose numbers survive restarts in `path` (see the module's docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(self._read())
        self._mark = self.value
        self._errors = RateLimitedLog(log)
        self._lease()

    def _read(self) -> int:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return 0
        except (OSError, UnicodeDecodeError) as e:
            log.warning("seq file unreadable: continuing from the clock", path=str(self.path), error=str(e))
            return int(time.time() * 1000)
        try:
            value = int(text.strip())
            if value < 0:
                raise ValueError(text)
        except ValueError:
            log.warning("seq file damaged: continuing from the clock", path=str(self.path))
            return int(time.time() * 1000)
        return value

    def next(self) -> int:
        self.value += 1
        if self.value > self._mark:
            self._lease()
        return self.value

    def _lease(self) -> None:
        """Lease the next LEASE numbers; an unwritable file (a read-only state directory) is
        tried again at the next lease, not at every number (the warning says what it costs)."""
        mark = self.value + LEASE
        self._write(mark)
        self._mark = mark

    def _write(self, value: int) -> bool:
        """Durably replace the file's number (write, fsync, rename, fsync the folder)."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, f"{value}\n".encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
            dfd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError as e:
            self._errors.warning("write", "seq mark not saved: a crash now may reuse numbers", path=str(self.path), error=str(e))
            return False
        return True

    def close(self) -> None:
        """A clean stop: the next start continues right after the last number."""
        self._write(self.value)
