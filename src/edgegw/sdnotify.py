"""systemd notifications over $NOTIFY_SOCKET, in a few lines: no libsystemd needed.

The protocol is one datagram of newline-separated `KEY=VALUE` lines to the unix socket named in
$NOTIFY_SOCKET (a leading `@` means the abstract namespace). Outside systemd the variable is
unset and every call is a cheap no-op.

The watchdog is fed by a task on the event loop itself, not by a thread: a loop that is blocked
(a stuck callback, a runaway computation) stops the pings, and systemd kills and restarts the
service after WatchdogSec=.
"""

from __future__ import annotations

import asyncio
import os
import socket


def notify(*lines: str) -> bool:
    """Send `READY=1`, `STATUS=...`, `STOPPING=1`, `WATCHDOG=1` ...; False when not under systemd
    (or the socket is gone: a notification is never worth failing over)."""
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr or not lines:
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
    """Seconds between pings: half of WatchdogSec=, when systemd asked for pings from this process."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid.isdigit() and int(pid) != os.getpid()):
        return None
    try:
        return max(int(usec) / 1e6 / 2, 0.05)
    except ValueError:
        return None


async def watchdog_loop() -> None:
    """Ping the watchdog from the event loop until cancelled; returns at once without a watchdog."""
    every = watchdog_interval()
    if every is None:
        return
    while True:
        notify("WATCHDOG=1")
        await asyncio.sleep(every)
