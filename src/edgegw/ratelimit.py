"""Log a recurring problem at most once per interval, with how often it happened meanwhile."""

from __future__ import annotations

import time
from typing import Any

import structlog


class RateLimitedLog:
    def __init__(self, logger: Any = None, interval_s: float = 10.0) -> None:
        self._log = logger or structlog.get_logger("edgegw")
        self._interval = interval_s
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warning(self, key: str, event: str, **kw: Any) -> None:
        self._emit(self._log.warning, key, event, kw)

    def error(self, key: str, event: str, **kw: Any) -> None:
        self._emit(self._log.error, key, event, kw)

    def _emit(self, level: Any, key: str, event: str, kw: dict[str, Any]) -> None:
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self._interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        self._last[key] = now
        n = self._suppressed.pop(key, 0)
        if n:
            kw["suppressed"] = n
        level(event, **kw)
