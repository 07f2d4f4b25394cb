"""An OPC UA peer for the footprint and soak benchmarks: the simulator's asyncua server with
pumps opc-1..opc-K (the pump profile's 6 signals each), values written once a second until terminated.

    python benchmarks/peer_opcua.py --port P [--assets 1]

Prints `ready <endpoint>` once it serves.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import signal
import time

from edgegw.sim.fleet import Sample
from edgegw.sim.opcua_server import OpcuaPumpServer

SIGNALS = ("vibration", "pressure", "temperature", "flow", "current", "suction_pressure")
BASE = {"vibration": 3.0, "pressure": 6.5, "temperature": 55.0, "flow": 60.0, "current": 35.0, "suction_pressure": 1.2}


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--assets", type=int, default=1)
    args = ap.parse_args()
    names = [f"opc-{i + 1}" for i in range(args.assets)]
    srv = OpcuaPumpServer(names, args.port, signals=SIGNALS)
    await srv.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print(f"ready {srv.endpoint}", flush=True)
    while not stop.is_set():
        now = time.time()
        samples = [Sample(a, now, {s: BASE[s] * (1 + random.uniform(-0.01, 0.01)) for s in SIGNALS}, "0") for a in names]
        await srv.update(now, samples)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)
    await srv.stop()


if __name__ == "__main__":
    asyncio.run(main())
