"""The references for ingest: a subscriber that does nothing with each message.

    python benchmarks/bare_sub.py --client aiomqtt|paho --port P [--prefix bench/pumps]

Subscribes to {prefix}/+/telemetry at QoS 1 (as the gateway's source does), prints `ready`,
counts messages until the load generator's sentinel (vibration 12.5 on the probe asset) or
until --timeout, then prints one JSON line: count, perf_counter stamps of the first message
and of the sentinel.

aiomqtt is the ceiling for the gateway's design (the same client library, same event loop
style); paho with its own network thread is the other common way to write it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import threading
import time

NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


def is_sentinel(topic: str, payload: bytes) -> bool:
    return topic.endswith("/probe/telemetry") and b'"vibration":12.5' in payload


async def run_aiomqtt(port: int, prefix: str, timeout: float) -> dict[str, float | int | None]:
    import aiomqtt

    count = 0
    first: float | None = None
    end: float | None = None
    async with aiomqtt.Client("127.0.0.1", port, socket_options=NODELAY) as c:
        await c.subscribe(f"{prefix}/+/telemetry", qos=1)
        print("ready", flush=True)

        async def consume() -> None:
            nonlocal count, first, end
            async for m in c.messages:
                if first is None:
                    first = time.perf_counter()
                if is_sentinel(m.topic.value, m.payload):  # type: ignore[arg-type]
                    end = time.perf_counter()
                    return
                count += 1

        try:
            await asyncio.wait_for(consume(), timeout)
        except TimeoutError:
            pass
    return {"count": count, "t_first": first, "t_sentinel": end}


def run_paho(port: int, prefix: str, timeout: float) -> dict[str, float | int | None]:
    import paho.mqtt.client as mqtt

    state: dict[str, float | int | None] = {"count": 0, "t_first": None, "t_sentinel": None}
    done = threading.Event()
    subscribed = threading.Event()

    def on_message(_c: object, _u: object, m: mqtt.MQTTMessage) -> None:
        if state["t_first"] is None:
            state["t_first"] = time.perf_counter()
        if is_sentinel(m.topic, m.payload):
            state["t_sentinel"] = time.perf_counter()
            done.set()
            return
        state["count"] = int(state["count"] or 0) + 1

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    c.on_message = on_message
    c.on_subscribe = lambda *a: subscribed.set()
    c.connect("127.0.0.1", port)
    c.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c.subscribe(f"{prefix}/+/telemetry", qos=1)
    c.loop_start()
    subscribed.wait(5)
    print("ready", flush=True)
    done.wait(timeout)
    c.loop_stop()
    c.disconnect()
    return state


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--client", choices=["aiomqtt", "paho"], required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--prefix", default="bench/pumps")
    ap.add_argument("--timeout", type=float, default=120.0)
    args = ap.parse_args()
    if args.client == "aiomqtt":
        res = asyncio.run(run_aiomqtt(args.port, args.prefix, args.timeout))
    else:
        res = run_paho(args.port, args.prefix, args.timeout)
    print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
