"""The references for ingest: a subscriber that does nothing with each message.

    python benchmarks/bare_sub.py --client aiomqtt|paho --port P [--prefix bench/pumps]

Subscribes to {prefix}/+/telemetry at QoS 1 (as the gateway's source does), prints `ready`,
then stays up (warm, like the gateway) for many load-generator runs: each run starts with the
probe asset's opening reading and ends with its sentinel (vibration 12.5), after which one
JSON line goes out: messages counted, perf_counter stamps of the first message and of the
sentinel. Stops after --timeout or when killed.

aiomqtt is the ceiling for the gateway's design (the same client library, same event loop
style); paho with its own network thread is the other common way to write it. With --relay
it is the latency reference instead: it republishes each probe reading it receives.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import threading
import time

NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


async def run_relay(port: int, prefix: str, relay: str, timeout: float) -> None:
    """Takes the same stream as the gateway and republishes each probe reading at once (QoS 1,
    on a second connection as the gateway publishes alerts): the latency floor of this design."""
    import aiomqtt

    async with (
        aiomqtt.Client("127.0.0.1", port, socket_options=NODELAY) as pub,
        aiomqtt.Client("127.0.0.1", port, socket_options=NODELAY) as c,
    ):
        await c.subscribe(f"{prefix}/+/telemetry", qos=1)
        print("ready", flush=True)
        tasks = set()

        async def consume() -> None:
            async for m in c.messages:
                if m.topic.value.endswith("/probe/telemetry"):
                    t = asyncio.create_task(pub.publish(relay, m.payload, qos=1))
                    tasks.add(t)
                    t.add_done_callback(tasks.discard)

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(consume(), timeout)


class Runs:
    """Counts one load-generator run at a time: the probe's opening reading starts a run, the
    sentinel ends it and prints one JSON line (count, perf_counter of the first message after
    the opener and of the sentinel)."""

    def __init__(self) -> None:
        self.count = 0
        self.first: float | None = None

    def on_message(self, topic: str, payload: bytes) -> None:
        if topic.endswith("/probe/telemetry"):
            if b'"vibration":12.5' in payload:
                print(json.dumps({"count": self.count, "t_first": self.first, "t_sentinel": time.perf_counter()}), flush=True)
            self.count = 0
            self.first = None
            return
        if self.first is None:
            self.first = time.perf_counter()
        self.count += 1


async def run_aiomqtt(port: int, prefix: str, timeout: float) -> None:
    import aiomqtt

    runs = Runs()
    async with aiomqtt.Client("127.0.0.1", port, socket_options=NODELAY) as c:
        await c.subscribe(f"{prefix}/+/telemetry", qos=1)
        print("ready", flush=True)

        async def consume() -> None:
            on = runs.on_message
            async for m in c.messages:
                on(m.topic.value, m.payload)  # type: ignore[arg-type]

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(consume(), timeout)


def run_paho(port: int, prefix: str, timeout: float) -> None:
    import paho.mqtt.client as mqtt

    runs = Runs()
    subscribed = threading.Event()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    c.on_message = lambda _c, _u, m: runs.on_message(m.topic, m.payload)
    c.on_subscribe = lambda *a: subscribed.set()
    c.connect("127.0.0.1", port)
    c.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c.subscribe(f"{prefix}/+/telemetry", qos=1)
    c.loop_start()
    subscribed.wait(5)
    print("ready", flush=True)
    time.sleep(timeout)
    c.loop_stop()
    c.disconnect()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--client", choices=["aiomqtt", "paho"], required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--prefix", default="bench/pumps")
    ap.add_argument("--timeout", type=float, default=3600.0, help="stop after this long")
    ap.add_argument("--relay", help="aiomqtt only: republish probe readings to this topic")
    args = ap.parse_args()
    if args.relay:
        asyncio.run(run_relay(args.port, args.prefix, args.relay, args.timeout))
    elif args.client == "aiomqtt":
        asyncio.run(run_aiomqtt(args.port, args.prefix, args.timeout))
    else:
        run_paho(args.port, args.prefix, args.timeout)


if __name__ == "__main__":
    main()
