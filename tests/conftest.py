"""Shared fixtures: real peers on free loopback ports, never mocks.

`mosquitto` starts a real broker per test session (max_queued_messages 0: the default of 1000
drops messages, even at QoS 1, when a subscriber falls behind). `broker_factory` starts extra
brokers (e.g. an upstream one) that a test may stop and start again.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 5.0) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


@dataclass
class Broker:
    """A mosquitto process; stop() and start() keep the same port (and persistence dir if any)."""

    port: int
    workdir: Path
    extra_conf: str = ""
    persist: bool = False
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def conf(self) -> Path:
        return self.workdir / f"mosquitto-{self.port}.conf"

    def start(self) -> Broker:
        if MOSQUITTO is None:
            pytest.skip("mosquitto is not installed (./edgegw.sh test installs it)")
        keep = (
            f"persistence true\npersistence_location {self.workdir}/\nautosave_interval 1\n"
            if self.persist
            else "persistence false\n"
        )
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n"
            f"set_tcp_nodelay true\n{keep}{self.extra_conf}"
        )
        with open(self.workdir / f"mosquitto-{self.port}.log", "ab") as log:  # the child keeps its own copy
            self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=log, stderr=log)
        wait_port(self.port)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """One real broker for the whole session; tests use their own topics/assets."""
    d = tmp_path_factory.mktemp("mosq")
    d.chmod(0o777)
    b = Broker(free_port(), d).start()
    yield b
    b.stop()


@pytest.fixture
def broker_factory(tmp_path: Path) -> Iterator[type]:
    """Start extra brokers: broker_factory(persist=False, extra_conf='') -> Broker (stopped at teardown)."""
    made: list[Broker] = []
    tmp_path.chmod(0o777)

    def make(persist: bool = False, extra_conf: str = "", port: int | None = None) -> Broker:
        d = tmp_path / f"b{len(made)}"
        d.mkdir()
        d.chmod(0o777)
        b = Broker(port or free_port(), d, extra_conf=extra_conf, persist=persist).start()
        made.append(b)
        return b

    yield make  # type: ignore[misc]
    for b in made:
        b.stop()


EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "example.yaml"
