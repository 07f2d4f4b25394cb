"""The test rig the end-to-end benchmarks share: a real mosquitto on a free loopback port, the
real `edgegw run` daemon as a child process on a config derived from config/example.yaml, a
paho watcher for its status, metrics and alerts, and RSS readings from /proc.

Every process started here is stopped by its own handle (and by an atexit guard).
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import yaml
from _common import ROOT
from tests.peers import Broker, free_port

HERE = Path(__file__).resolve().parent
EXAMPLE = ROOT / "config" / "example.yaml"
PY = sys.executable
EDGEGW = str(Path(PY).with_name("edgegw"))
GW_TOPIC = "plant/pumps/{asset}/telemetry"  # what the gateway's MQTT source reads
BARE_PREFIX = "bench/pumps"  # what the bare subscribers read: the gateway never sees that load
PROBE = "probe"  # an extra asset the latency probe and the end-of-run sentinel use
ECHO = "bench/echo"  # the watcher's own round trip through the broker: the reference for alert latency
RELAY = "bench/relay"  # where the bare aiomqtt relay republishes probe readings
_children: list[subprocess.Popen[bytes]] = []


def spawn(argv: list[str], log: Path | None = None, **kw: Any) -> subprocess.Popen[bytes]:
    out: Any = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - lives as long as the child
    p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **kw)
    _children.append(p)
    return p


def stop(p: subprocess.Popen[bytes], timeout: float = 8.0) -> int | None:
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return p.returncode


@atexit.register
def _cleanup() -> None:
    for p in _children:
        if p.poll() is None:
            p.kill()


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


def broker(workdir: Path) -> Broker:
    """A started mosquitto from tests/peers.py (unlimited queues: the broker is not where loss
    happens; TCP_NODELAY), killed at exit should the benchmark fail before stopping it."""
    b = Broker(free_port(), workdir).start()
    assert b.proc is not None
    _children.append(b.proc)
    return b


def assets(n: int) -> list[str]:
    return [f"pump-{i + 1}" for i in range(n)]


def gateway_config(
    workdir: Path,
    n_assets: int,
    *,
    instant_alarms: bool = True,
    metrics_s: float = 1.0,
    mutate: Callable[[dict[str, Any]], None] | None = None,
    name: str = "gateway.yaml",
) -> Path:
    """config/example.yaml with n pumps (+ the probe asset), alarm delays 0, metrics every second."""
    d = yaml.safe_load(EXAMPLE.read_text())
    d["assets"] = [{"id": a, "profile": "pump"} for a in [*assets(n_assets), PROBE]]
    prof = d["profiles"]["pump"]
    prof["model"] = str(ROOT / "models" / "pump")
    if instant_alarms:
        for sig in prof["signals"].values():
            sig["on_delay_s"] = 0
            sig["off_delay_s"] = 0
    d["metrics"] = {"interval_s": metrics_s}
    d.setdefault("log", {})["format"] = "json"
    if mutate:
        mutate(d)
    path = workdir / name
    path.write_text(yaml.safe_dump(d, sort_keys=False))
    return path


class Watcher:
    """One paho client on status/#, alerts/# (one clock for the measuring side)."""

    def __init__(self, port: int, gateway_id: str = "gw-pumphouse-1") -> None:
        self.gw = gateway_id
        self.online_at: float | None = None
        self.metrics: list[dict[str, Any]] = []
        self.alerts: list[tuple[float, dict[str, Any]]] = []
        self.on_alert: Callable[[float, dict[str, Any]], None] | None = None
        self.on_echo: Callable[[float], None] | None = None
        self.on_relay: Callable[[float], None] | None = None
        self.cond = threading.Condition()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-watch-{os.getpid()}-{time.time_ns()}")
        c.on_message = self._msg
        c.on_connect = lambda cl, *_: cl.subscribe([("status/#", 1), ("alerts/#", 1), (ECHO, 1), (RELAY, 1)])
        c.connect("127.0.0.1", port)
        c.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.loop_start()
        self.client = c

    def _msg(self, _c: Any, _u: Any, m: mqtt.MQTTMessage) -> None:
        now = time.perf_counter()
        t = m.topic
        if t == ECHO:
            if self.on_echo:
                self.on_echo(now)
            return
        if t == RELAY:
            if self.on_relay:
                self.on_relay(now)
            return
        if t.startswith("alerts/"):
            try:
                d = json.loads(m.payload)
            except ValueError:
                return
            if self.on_alert:
                self.on_alert(now, d)
            with self.cond:
                self.alerts.append((now, d))
                self.cond.notify_all()
        elif t == f"status/{self.gw}":
            if m.payload == b"online" and self.online_at is None:
                self.online_at = now
            with self.cond:
                self.cond.notify_all()
        elif t == f"status/{self.gw}/metrics":
            try:
                d = json.loads(m.payload)
            except ValueError:
                return
            with self.cond:
                self.metrics.append(d)
                self.cond.notify_all()

    def wait(self, pred: Callable[[], bool], timeout: float) -> bool:
        end = time.monotonic() + timeout
        with self.cond:
            while not pred():
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
        return True

    def next_metrics(self, timeout: float = 5.0) -> dict[str, Any] | None:
        n = len(self.metrics)
        if self.wait(lambda: len(self.metrics) > n, timeout):
            return self.metrics[-1]
        return None

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class Gateway:
    """`edgegw run` as a child process; `ready_s` is spawn to retained online, on the watcher's clock."""

    def __init__(
        self,
        cfg: Path,
        port: int,
        watcher: Watcher,
        workdir: Path,
        *extra: str,
        argv_prefix: list[str] | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.log = workdir / f"{cfg.stem}.log"
        t0 = time.perf_counter()
        watcher.online_at = None
        self.proc = spawn(
            [*(argv_prefix or []), EDGEGW, "run", "-c", str(cfg), "--set", f"mqtt.port={port}", *extra], self.log, cwd=ROOT
        )
        if not watcher.wait(lambda: watcher.online_at is not None or self.proc.poll() is not None, timeout):
            raise RuntimeError(f"gateway not online after {timeout} s: {self.log.read_text()[-800:]}")
        if watcher.online_at is None:
            raise RuntimeError(f"gateway exited: {self.log.read_text()[-800:]}")
        self.ready_s = watcher.online_at - t0
        self.pid = self.proc.pid

    def rss_mb(self) -> float:
        return rss_mb(self.pid)

    def close(self) -> int | None:
        return stop(self.proc)


def loadgen(
    port: int,
    n_assets: int,
    rate: float,
    seconds: float,
    *,
    prefix: str = "plant/pumps",
    sentinel: bool = True,
    log: Path | None = None,
    pin: str | None = None,
    count: int | None = None,
) -> subprocess.Popen[bytes]:
    """Start the load generator (`count`: stop after that many messages); its last stdout line is a JSON summary."""
    argv = [
        PY,
        str(HERE / "loadgen.py"),
        "--port",
        str(port),
        "--assets",
        str(n_assets),
        "--rate",
        str(rate),
        "--seconds",
        str(seconds),
        "--prefix",
        prefix,
    ]
    if sentinel:
        argv.append("--sentinel")
    if count:
        argv += ["--count", str(count)]
    if pin:
        argv = ["taskset", "-c", pin, *argv]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    _children.append(p)  # type: ignore[arg-type]
    return p  # type: ignore[return-value]


def loadgen_result(p: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    out, err = p.communicate(timeout=timeout)
    lines = out.decode().strip().splitlines()
    if p.returncode != 0 or not lines:
        raise RuntimeError(f"load generator failed: {err.decode()[-500:]}")
    return dict(json.loads(lines[-1]))


def workdir(name: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"edgegw-bench-{name}-"))
