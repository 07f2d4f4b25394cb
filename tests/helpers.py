"""Test helpers: the gateway in-process on the test's loop, and a real MQTT subscriber."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Self

import aiomqtt

from edgegw.config import GatewayConfig, load_config
from edgegw.gateway import Gateway
from edgegw.records import Alert, AlertState, Severity
from edgegw.sources.mqtt import MqttTelemetrySource

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "example.yaml"


_ids = itertools.count(1)


def example_config(port: int, *overrides: str, path: Path = EXAMPLE) -> GatewayConfig:
    """The example config against a test broker; the model is off unless a test turns it on.

    Each call gets a gateway id and site of its own (unless overridden), so retained alarms one
    test leaves on the shared broker never reach another test's gateway or subscribers.
    """
    n = next(_ids)
    unique = [f"gateway.id=gw-test-{os.getpid()}-{n}", f"gateway.site=site-test-{os.getpid()}-{n}"]
    return load_config(path, [f"mqtt.port={port}", "profiles.pump.model=null", *unique, *overrides])


@contextlib.asynccontextmanager
async def running_gateway(cfg: GatewayConfig, config_path: str | None = None) -> AsyncIterator[Gateway]:
    gw = Gateway(cfg, config_path)
    stop = asyncio.Event()
    task = asyncio.create_task(gw.run(stop))
    ready = asyncio.create_task(gw.ready.wait())
    done, _ = await asyncio.wait({task, ready}, timeout=15, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()  # raises what made the gateway stop
    assert ready in done, "gateway did not become ready in 15 s"
    for _ in range(100):  # READY comes before the MQTT sources subscribed: what a test publishes waits for that
        if all(s.connected for s in gw.sources if isinstance(s, MqttTelemetrySource)):
            break
        await asyncio.sleep(0.05)
    try:
        yield gw
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


class Subscriber:
    """A real MQTT client running in the background for an `async with` block; `connected` is set
    once it has subscribed (the block starts then)."""

    def __init__(self) -> None:
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self.connected.wait(), 5)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):  # MqttError: a test stopped the broker
            await self._task

    async def _run(self) -> None:
        raise NotImplementedError


class Collector(Subscriber):
    """A real subscriber: collects (topic, payload bytes, retain) in the background."""

    def __init__(self, port: int, *topics: str) -> None:
        super().__init__()
        self.port = port
        self.topics = topics or ("#",)
        self.messages: list[tuple[str, bytes, bool]] = []

    async def _run(self) -> None:
        async with aiomqtt.Client("127.0.0.1", self.port) as c:
            for t in self.topics:
                await c.subscribe(t, qos=1)
            self.connected.set()
            async for m in c.messages:
                payload = m.payload if isinstance(m.payload, bytes) else str(m.payload).encode()
                self.messages.append((m.topic.value, payload, m.retain))

    def json(self, prefix: str = "") -> list[dict[str, Any]]:
        out = []
        for topic, payload, retained in self.messages:
            if topic.startswith(prefix) and payload:
                with contextlib.suppress(ValueError):
                    d = json.loads(payload)
                    if isinstance(d, dict):
                        d["_topic"] = topic
                        d["_retained"] = retained  # left on the broker before we subscribed
                        out.append(d)
        return out

    def alerts(self, **match: Any) -> list[dict[str, Any]]:
        return [d for d in self.json("alerts/") if all(d.get(k) == v for k, v in match.items())]

    async def wait(self, pred: Callable[[Collector], Any], timeout: float = 10.0) -> Any:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            got = pred(self)
            if got:
                return got
            await asyncio.sleep(0.02)
        raise AssertionError(f"condition not met in {timeout} s; last messages: {self.messages[-5:]}")


async def publish(port: int, topic: str, payloads: list[bytes | str], qos: int = 1) -> None:
    async with aiomqtt.Client("127.0.0.1", port) as c:
        for p in payloads:
            await c.publish(topic, p if isinstance(p, bytes) else p.encode(), qos=qos)


def pump(vibration: float = 3.0, ts: float | None = None, **over: float) -> str:
    d = {
        "ts": ts if ts is not None else time.time(),
        "vibration": vibration,
        "pressure": 5.0,
        "temperature": 55.0,
        "flow": 60.0,
        "current": 30.0,
        "suction_pressure": 1.2,
    }
    d.update(over)
    return json.dumps(d)


def threshold_alert(asset: str = "pump-1", **fields: Any) -> Alert:
    """A raised vibration alarm (warning, value 12.5, stamped now); keyword arguments set any other field."""
    a = Alert(
        asset, "threshold", "vibration", AlertState.RAISED, Severity.WARNING, time.time(), {"value": 12.5}, "vibration high"
    )
    for k, v in fields.items():
        setattr(a, k, v)
    return a
