"""Energy, volume, run hours, starts, region hours and the smoothed deficits per pump, kept across
restarts in `<state_dir>/<gateway id>.pump-totals.json` (beside the seq mark): written each minute
and at a clean stop (write, fsync, rename, fsync the folder, as sequence.py does), read back at
start. A crash loses at most a minute."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import structlog

from edgegw.ratelimit import RateLimitedLog

log = structlog.get_logger("edgegw.pump")
SUFFIX = ".pump-totals.json"
SAVE_EVERY_S = 60.0


class TotalsFile:
    """The totals file of one gateway."""

    def __init__(self, state_dir: Path, gateway_id: str) -> None:
        self.path = state_dir / f"{gateway_id}{SUFFIX}"
        self._errors = RateLimitedLog(log)

    def read(self) -> dict[str, dict[str, float]]:
        """Asset id -> totals; empty when there is no file, with a warning when it is damaged."""
        try:
            data: Any = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            log.warning("pump totals unreadable: energy and run hours start again from 0", path=str(self.path), error=str(e))
            return {}
        assets = data.get("assets") if isinstance(data, dict) else None
        if not isinstance(assets, dict):
            log.warning("pump totals damaged: energy and run hours start again from 0", path=str(self.path))
            return {}
        return {k: v for k, v in assets.items() if isinstance(v, dict)}

    def write(self, totals: dict[str, dict[str, float]]) -> bool:
        """Durably replace the file (call from a worker thread while the loop runs)."""
        if not totals:
            return True
        tmp = self.path.with_name(self.path.name + ".tmp")
        body = json.dumps({"version": 1, "assets": totals}, separators=(",", ":")).encode()
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, body)
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
            self._errors.warning("write", "pump totals not saved", path=str(self.path), error=str(e))
            return False
        return True
