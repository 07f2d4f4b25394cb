"""Publishes the fleet's samples over MQTT as config/example.yaml expects them:

    topic  plant/pumps/<asset>/telemetry
    JSON   {"ts": <epoch s>, "vibration": .., "pressure": .., "temperature": .., "flow": .., "current": ..,
            "suction_pressure": .., "motor_temperature": ..}

A queue decouples the simulation clock from the network: while the broker is away the client
reconnects with backoff and the queue fills; what does not fit is counted in `dropped`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import aiomqtt
import orjson

from edgegw.backoff import Backoff
from edgegw.sim.fleet import Sample

TOPIC = "plant/pumps/{asset}/telemetry"


def telemetry(ts: float, values: dict[str, float]) -> bytes:
    return orjson.dumps({"ts": round(ts, 3), **values})


class MqttPublisher:
    """`run()` keeps the connection and sends; `update(ts, samples)` enqueues without waiting."""

    def __init__(self, host: str, port: int, topic: str = TOPIC, qos: int = 0, queue_size: int = 20000) -> None:
        self.host = host
        self.port = port
        self.topic = topic
        self.qos = qos
        self.queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(queue_size)
        self.connected = asyncio.Event()
        self.sent = 0
        self.dropped = 0
        self.last_error = ""

    def update(self, ts: float, samples: Sequence[Sample]) -> None:
        for s in samples:
            if not s.values:
                continue
            try:
                self.queue.put_nowait((self.topic.format(asset=s.asset), telemetry(ts, s.values)))
            except asyncio.QueueFull:
                self.dropped += 1

    async def run(self) -> None:
        backoff = Backoff(0.2, 5.0)
        pending: tuple[str, bytes] | None = None
        while True:
            try:
                async with aiomqtt.Client(self.host, self.port, identifier=None, timeout=10) as client:
                    backoff.reset()
                    self.connected.set()
                    while True:
                        if pending is None:
                            pending = await self.queue.get()
                        await client.publish(pending[0], pending[1], qos=self.qos)
                        pending = None
                        self.sent += 1
            except aiomqtt.MqttError as e:
                self.connected.clear()
                self.last_error = str(e)
                await asyncio.sleep(backoff.next())

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait (up to timeout) until everything queued has been handed to the broker."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while not self.queue.empty():
                    await asyncio.sleep(0.05)
