"""The real daemon in a child process, as systemd runs it: `edgegw run -c FILE`, JSON log lines."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

ROOT = Path(__file__).resolve().parent.parent


class Daemon:
    def __init__(self, config: Path, *sets: str, log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        argv = [sys.executable, "-m", "edgegw", "run", "-c", str(config)]
        for s in sets:
            argv += ["--set", s]
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(argv, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def lines(self) -> list[dict[str, Any]]:
        """The log so far, one dict per JSON line (other lines as {"text": ...})."""
        out = []
        for raw in self.log.read_text(errors="replace").splitlines():
            try:
                d = json.loads(raw)
            except ValueError:
                d = {"text": raw}
            out.append(d if isinstance(d, dict) else {"text": raw})
        return out

    def logged(self, event: str) -> list[dict[str, Any]]:
        return [d for d in self.lines() if d.get("event") == event]

    def wait(self, pred: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            got = pred()
            if got:
                return got
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited {self.proc.returncode} waiting for {what}: {self.tail()}")
            time.sleep(0.05)
        raise AssertionError(f"{what} not seen in {timeout} s: {self.tail()}")

    def wait_logged(self, event: str, timeout: float = 15.0, after: int = 0) -> dict[str, Any]:
        """The first line with this event beyond the first `after` such lines."""
        return self.wait(lambda: self.logged(event)[after:][:1], timeout, repr(event))[0]

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode
