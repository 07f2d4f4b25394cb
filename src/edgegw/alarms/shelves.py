"""Shelves: an operator holds an alarm back for a while (ISA-18.2 shelving).

A shelf travels as a mark in the alert (`shelved_until`, `shelved_by`): the notifier sends no
notification for a raise that carries one, the page and `watch` can show it. The table is kept
here and, with a state directory, in `<state_dir>/<gateway>.shelves.json` (a small file written
whole, in a worker thread, when a shelf is set or ends), so a restart does not end a shelf early.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path
from typing import NamedTuple

import orjson
import structlog

log = structlog.get_logger("edgegw.alarms.shelves")

Key = tuple[str, str, str]


class Shelf(NamedTuple):
    until: float  # epoch seconds
    by: str
    note: str


class Shelves:
    """Key -> Shelf, loaded at start (expired ones dropped) and saved on every change."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.table: dict[Key, Shelf] = self._load()
        self.write_errors = 0
        self._lock = threading.Lock()
        self._seq = 0  # snapshots taken
        self._done = 0  # the newest snapshot written: an older one finishing later is skipped

    def _load(self) -> dict[Key, Shelf]:
        if self.path is None or not self.path.exists():
            return {}
        try:
            rows = orjson.loads(self.path.read_bytes())
            now = time.time()
            out = {
                (str(r["asset"]), str(r["kind"]), str(r["source"])): Shelf(float(r["until"]), str(r["by"]), str(r["note"]))
                for r in rows
            }
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.error("shelves unreadable; starting without them", path=str(self.path), error=str(e))
            return {}
        return {k: s for k, s in out.items() if s.until > now}

    def get(self, key: Key) -> Shelf | None:
        """The shelf of `key` while it lasts."""
        s = self.table.get(key)
        return s if s is not None and s.until > time.time() else None

    def put(self, key: Key, shelf: Shelf) -> None:
        self.table[key] = shelf
        self._save()

    def pop(self, key: Key) -> Shelf | None:
        s = self.table.pop(key, None)
        if s is not None:
            self._save()
        return s

    def expired(self, now: float) -> list[Key]:
        """Shelves over by `now`, taken off the table."""
        keys = [k for k, s in self.table.items() if s.until <= now]
        for k in keys:
            del self.table[k]
        if keys:
            self._save()
        return keys

    def _save(self) -> None:
        if self.path is None:
            return
        rows = [{"asset": k[0], "kind": k[1], "source": k[2], **s._asdict()} for k, s in self.table.items()]
        self._seq += 1
        try:
            asyncio.get_running_loop().run_in_executor(None, self._write, self._seq, orjson.dumps(rows))
        except RuntimeError:  # no loop (a test, a tool): write here
            self._write(self._seq, orjson.dumps(rows))

    def _write(self, seq: int, data: bytes) -> None:
        assert self.path is not None
        tmp = self.path.with_suffix(".tmp")
        with self._lock:
            if seq <= self._done:
                return
            try:
                tmp.write_bytes(data)
                os.replace(tmp, self.path)
                self._done = seq
            except OSError as e:
                self.write_errors += 1
                log.error("shelves not saved; they end at a restart", path=str(self.path), error=str(e))
