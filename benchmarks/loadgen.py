"""Load generator: N pumps x 6 signals as JSON on {prefix}/pump-K/telemetry, QoS 0, paced.

    python benchmarks/loadgen.py --port P --assets 50 --rate 5000 --seconds 10 [--sentinel]
    python benchmarks/loadgen.py --port P --assets 50 --rate 0 --count 40000   # as fast as it can

Messages go round robin over the pumps, event time = send time. With --sentinel the run
starts with a normal reading of the `probe` asset and ends with a vibration of 12.5 on it
(above hihi): the end of the stream is visible to a bare subscriber (the last message) and
through the gateway (a threshold alert). Prints one JSON line: sent, seconds, achieved rate,
and perf_counter stamps (system-wide monotonic clock on Linux) of the first and last message.
"""

from __future__ import annotations

import argparse
import json
import socket
import time

import paho.mqtt.client as mqtt

FMT = '{{"ts":{ts:.3f},"vibration":{v:.2f},"pressure":5.0,"temperature":55.0,"flow":60.0,"current":30.0,"suction_pressure":1.2}}'


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--assets", type=int, default=50)
    ap.add_argument("--rate", type=float, default=1000.0, help="messages/s; 0: as fast as possible")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--count", type=int, help="messages to send (default rate x seconds)")
    ap.add_argument("--prefix", default="plant/pumps")
    ap.add_argument("--sentinel", action="store_true")
    args = ap.parse_args()
    total = args.count if args.count else int(args.rate * args.seconds)
    topics = [f"{args.prefix}/pump-{k + 1}/telemetry".encode() for k in range(args.assets)]
    probe = f"{args.prefix}/probe/telemetry"

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", args.port)
    c.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c.loop_start()
    if args.sentinel:
        c.publish(probe, FMT.format(ts=time.time(), v=3.0), qos=0).wait_for_publish(5)
        time.sleep(0.2)
    n_assets = args.assets
    rate = args.rate
    pub = c.publish
    i = 0
    t0 = time.perf_counter()
    while i < total:
        el = time.perf_counter() - t0
        due = total if rate <= 0 else min(total, int(el * rate) + 1)
        ts = time.time()
        while i < due:
            pub(topics[i % n_assets].decode(), FMT.format(ts=ts, v=3.0 + (i % 10) * 0.01), qos=0)
            i += 1
            if rate <= 0 and i % 200 == 0:
                break
        if rate > 0 and i < total:
            wait = i / rate - (time.perf_counter() - t0)
            if wait > 0:
                time.sleep(min(wait, 0.005))
    t_end = time.perf_counter()
    info = c.publish(probe, FMT.format(ts=time.time(), v=12.5), qos=0) if args.sentinel else None
    if info is not None:
        info.wait_for_publish(30)
    t_flushed = time.perf_counter()
    time.sleep(0.2)
    c.loop_stop()
    c.disconnect()
    print(
        json.dumps(
            {
                "sent": total,
                "offered_rate": rate,
                "t_first": t0,
                "t_end": t_end,
                "t_flushed": t_flushed,
                "seconds": t_flushed - t0,
                "achieved_rate": total / max(t_flushed - t0, 1e-9),
            }
        )
    )


if __name__ == "__main__":
    main()
