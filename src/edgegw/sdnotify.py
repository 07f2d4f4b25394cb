"""systemd notifications over $NOTIFY_SOCKET, in a few lines: no libsystemd needed.

The watchdog is fed from the event loop itself, so a blocked loop stops the pings and
systemd restarts the service (WatchdogSec=).
"""

from __future__ import annotations

import asyncio
import os
import socket


def notify(*lines: str) -> bool:
    """Send `READY=1`, `STATUS=...` and friends; False when not run under systemd."""
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.connect(addr)
            s.sendall("\n".join(lines).encode())
        return True
    except OSError:
        return False


def watchdog_interval() -> float | None:
    """Half of WatchdogSec, when systemd asked for pings (and meant this process)."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid.isdigit() and int(pid) != os.getpid()):
        return None
    try:
        return max(int(usec) / 1e6 / 2, 0.05)
    except ValueError:
        return None


async def watchdog_loop() -> None:
    every = watchdog_interval()
    if every is None:
        return
    while True:
        notify("WATCHDOG=1")
        await asyncio.sleep(every)
