"""sd_notify: the daemon talks to a real unix datagram socket given as $NOTIFY_SOCKET, the way
systemd hands it one. READY=1 after start-up, WATCHDOG=1 from the event loop, STOPPING=1 on
SIGTERM; and a blocked event loop stops the pings, which is what makes WatchdogSec= useful."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgegw import sdnotify
from tests.peers import Broker

ROOT = Path(__file__).resolve().parent.parent
EDGEGW = Path(sys.executable).parent / "edgegw"


class NotifySocket:
    """What systemd listens on: a bound AF_UNIX datagram socket; keeps (arrival time, message)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.got: list[tuple[float, str]] = []

    def poll(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            with contextlib.suppress(TimeoutError):
                self.got.append((time.monotonic(), self.sock.recv(4096).decode()))

    def until(self, pred: object, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if pred(self):  # type: ignore[operator]
                return True
            self.poll(0.2)
        return False

    def pings(self, after: float = 0.0) -> list[float]:
        return [t for t, m in self.got if "WATCHDOG=1" in m.split("\n") and t >= after]

    def has(self, line: str) -> bool:
        return any(line in m.split("\n") for _, m in self.got)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    s = NotifySocket(tmp_path / "notify.sock")
    yield s
    s.close()


def _spawn(argv: list[str], sock: NotifySocket, watchdog_usec: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "NOTIFY_SOCKET": str(sock.path), "WATCHDOG_USEC": str(watchdog_usec)}
    env.pop("WATCHDOG_PID", None)
    with open(log, "wb") as out:  # the child keeps its own descriptor
        return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def _stop(p: subprocess.Popen[bytes]) -> int:
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            return p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise
    return p.returncode


def _run_args(port: int) -> list[str]:
    return ["run", "-c", "config/example.yaml", "--set", f"mqtt.port={port}", "--set", "profiles.pump.model=null"]


# -- the client side, in process


def test_notify_sends_one_datagram(notify_socket: NotifySocket, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(notify_socket.path))
    assert sdnotify.notify("READY=1", "STATUS=hello")
    notify_socket.poll(0.3)
    assert [m for _, m in notify_socket.got] == ["READY=1\nSTATUS=hello"]


def test_notify_abstract_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"edgegw-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind("\0" + name)
        s.settimeout(2)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert sdnotify.notify("WATCHDOG=1")
        assert s.recv(100) == b"WATCHDOG=1"


def test_without_systemd_notify_is_a_no_op(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert not sdnotify.notify("READY=1")
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens"))
    assert not sdnotify.notify("READY=1")  # a gone socket is never worth failing over


def test_watchdog_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    assert sdnotify.watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    assert sdnotify.watchdog_interval() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert sdnotify.watchdog_interval() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", "1")  # meant for another process
    assert sdnotify.watchdog_interval() is None


# -- the daemon, as systemd runs it


def test_daemon_ready_watchdog_stopping(mosquitto: Broker, notify_socket: NotifySocket, tmp_path: Path) -> None:
    """`edgegw run` under a notify socket: READY=1 with a STATUS=, pings at WatchdogSec/2,
    STOPPING=1 and exit 0 on SIGTERM."""
    p = _spawn([str(EDGEGW), *_run_args(mosquitto.port)], notify_socket, 1_000_000, tmp_path / "gw.log")
    try:
        assert notify_socket.until(lambda s: s.has("READY=1"), 30), (tmp_path / "gw.log").read_text()[-2000:]
        ready_at = next(t for t, m in notify_socket.got if "READY=1" in m.split("\n"))
        assert any(m.startswith("STATUS=") for _, m in notify_socket.got for m in m.split("\n"))
        assert notify_socket.until(lambda s: len(s.pings(after=ready_at)) >= 4, 20), notify_socket.got
        # STATUS= follows the connection state: the richer line comes within a few seconds
        assert notify_socket.until(lambda s: any("source(s) connected" in m for _, m in s.got), 15), notify_socket.got
    finally:
        rc = _stop(p)
    notify_socket.poll(0.5)
    assert notify_socket.has("STOPPING=1")
    assert rc == 0


BLOCKER = textwrap.dedent(
    """
    # `edgegw run` as the CLI runs it, plus one thing a bug could do: on SIGUSR1, a callback that
    # blocks the event loop's thread (time.sleep) for BLOCK seconds.
    import signal, sys, time
    from edgegw import cli

    BLOCK = float(sys.argv[1])
    signal.signal(signal.SIGUSR1, lambda *_: time.sleep(BLOCK))
    sys.exit(cli.main(sys.argv[2:]))
    """
)


def test_blocked_event_loop_stops_the_pings(mosquitto: Broker, notify_socket: NotifySocket, tmp_path: Path) -> None:
    """The pings come from the event loop itself: while the loop's thread is blocked, none go
    out (so systemd would restart the service), and they resume when it is free again."""
    block_s, usec = 5.0, 1_000_000  # pings every 0.5 s
    script = tmp_path / "blocker.py"
    script.write_text(BLOCKER)
    argv = [sys.executable, str(script), str(block_s), *_run_args(mosquitto.port)]
    p = _spawn(argv, notify_socket, usec, tmp_path / "gw.log")
    try:
        assert notify_socket.until(lambda s: s.has("READY=1"), 30), (tmp_path / "gw.log").read_text()[-2000:]
        assert notify_socket.until(lambda s: len(s.pings()) >= 3, 20)
        sent = time.monotonic()
        p.send_signal(signal.SIGUSR1)
        notify_socket.poll(block_s)
        # then they come back: the loop is free again
        assert notify_socket.until(lambda s: len(s.pings(after=sent + block_s)) >= 2, 20), notify_socket.got
    finally:
        rc = _stop(p)
    assert rc == 0
    pings = notify_socket.pings()
    gaps = [b - a for a, b in itertools.pairwise(pings)]
    # Normal gaps are ~0.5 s; the block makes one gap of about block_s. Slowness can only make gaps
    # longer, so only the lower bound is asserted.
    assert max(gaps) >= block_s - 1.0, gaps
    before = [g for a, g in zip(pings, gaps, strict=False) if a < sent - 0.6]
    assert before and min(before) < block_s / 2


def test_watchdog_abort_leaves_the_stuck_stack(mosquitto: Broker, notify_socket: NotifySocket, tmp_path: Path) -> None:
    """What systemd does when the pings stop (SIGABRT), with the unit's PYTHONFAULTHANDLER=1: the
    log names the call that blocked the loop."""
    assert "PYTHONFAULTHANDLER=1" in (ROOT / "systemd" / "edgegw.service").read_text()
    script = tmp_path / "blocker.py"
    script.write_text(BLOCKER)
    argv = [sys.executable, str(script), "30", *_run_args(mosquitto.port)]
    log = tmp_path / "gw.log"
    env_argv = ["env", "PYTHONFAULTHANDLER=1", *argv]
    p = _spawn(env_argv, notify_socket, 1_000_000, log)
    try:
        assert notify_socket.until(lambda s: s.has("READY=1"), 30), log.read_text()[-2000:]
        p.send_signal(signal.SIGUSR1)
        sent = time.monotonic()
        notify_socket.poll(4.0)
        assert not notify_socket.pings(after=sent + 2.0)  # stuck: no pings, systemd would act now
        p.send_signal(signal.SIGABRT)
        rc = p.wait(15)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert rc == -signal.SIGABRT
    text = log.read_text()
    assert "Fatal Python error: Aborted" in text and "<lambda>" in text and "blocker.py" in text, text[-2000:]
