"""The gateway's per-message hot path without the network: an MQTT message object -> topic
parse -> JSON decode -> intake -> engine (bucket moments, threshold rules, rollup stats; hops with
the shipped model, run after every chunk of 20 messages as the daemon runs them after each
socket read), for N pumps x 6 signals at 10 Hz event time.

    python benchmarks/bench_hotpath.py [--quick] [--messages 200000] [--profile]

This is where the gateway's own CPU goes per message (the rest is paho/aiomqtt and the event
loop); --profile prints the cProfile functions by own time. Writes
benchmarks/results/hotpath.json.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write

ROOT = Path(__file__).resolve().parent.parent
FMT = '{{"ts":{ts:.3f},"vibration":{v:.2f},"pressure":6.5,"temperature":55.0,"flow":60.0,"current":35.0,"suction_pressure":1.2}}'


class FakeTopic:
    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value


class FakeMessage:
    """What the source reads of an aiomqtt.Message: topic.value and payload."""

    __slots__ = ("payload", "topic")

    def __init__(self, topic: str, payload: bytes) -> None:
        self.topic = FakeTopic(topic)
        self.payload = payload


class ChunkLoop:
    """Stands in for the event loop: the intake's scheduled hops run after each chunk of messages
    (in the daemon they run a 50 ms grace after the first asset crossed a boundary, batched)."""

    def __init__(self) -> None:
        self.pending: list[Any] = []

    def call_later(self, _delay: float, cb: Any) -> None:
        self.pending.append(cb)

    def run_pending(self) -> None:
        todo, self.pending = self.pending, []
        for cb in todo:
            cb()


def build(n_assets: int, model: bool) -> tuple[Any, Any]:
    from edgegw.config import load_config
    from edgegw.engine.engine import Engine
    from edgegw.gateway import load_models
    from edgegw.intake import Intake
    from edgegw.sources.mqtt import MqttTelemetrySource

    over = ["assets=[" + ",".join(f"{{id: pump-{i + 1}, profile: pump}}" for i in range(n_assets)) + "]"]
    if not model:
        over.append("profiles.pump.model=null")
    cfg = load_config(ROOT / "config" / "example.yaml", over)
    eng = Engine(cfg, lambda a: None, load_models(cfg, str(ROOT / "config" / "example.yaml")))
    intake = Intake(eng, cfg.ingest, ChunkLoop())  # type: ignore[arg-type]
    src = MqttTelemetrySource(cfg.sources[0], cfg, intake, "mqtt-0")  # type: ignore[arg-type]
    return src, eng


def messages(n_assets: int, n: int) -> list[FakeMessage]:
    t0 = time.time() - n / (10.0 * n_assets)  # 10 Hz per pump, ending now (within max_age_s)
    out = []
    for i in range(n):
        k = i % n_assets
        ts = t0 + (i // n_assets) * 0.1
        out.append(FakeMessage(f"plant/pumps/pump-{k + 1}/telemetry", FMT.format(ts=ts, v=3.0 + (i % 10) * 0.01).encode()))
    return out


def run(n_assets: int, n: int, model: bool, profile: bool = False, chunk: int = 20) -> dict[str, Any]:
    src, eng = build(n_assets, model)
    loop = src.intake._loop
    msgs = messages(n_assets, n)
    on = src.on_message
    prof = cProfile.Profile() if profile else None
    if prof:
        prof.enable()
    t0 = time.perf_counter()
    c0 = time.process_time()
    for i in range(0, n, chunk):
        for m in msgs[i : i + chunk]:
            on(m)
        loop.run_pending()
    cpu = time.process_time() - c0
    dt = time.perf_counter() - t0
    if prof:
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(18)
    assert eng.readings_in == 6 * n, (eng.readings_in, eng.rejected)
    return {
        "assets": n_assets,
        "messages": n,
        "model": model,
        "us_per_message": round(cpu / n * 1e6, 2),
        "messages_per_s_one_core": round(n / cpu),
        "wall_s": round(dt, 2),
        "hops": eng.hops,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--name", default="hotpath")
    ap.add_argument("--messages", type=int)
    ap.add_argument("--assets", type=int, default=50)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--repeat", type=int, default=3, help="runs per variant; the best is kept (noise only adds)")
    args = ap.parse_args(argv)
    n = args.messages or (30_000 if args.quick else 200_000)
    rows = []
    for model in (False, True):
        best = min((run(args.assets, n, model) for _ in range(args.repeat)), key=lambda r: r["us_per_message"])
        rows.append(best)
        print(
            f"{args.assets} pumps, model {'on ' if model else 'off'}: {best['us_per_message']} us CPU per message "
            f"({best['messages_per_s_one_core']:,} msg/s on one core, {best['hops']} asset-hops)",
            flush=True,
        )
    if args.profile:
        run(args.assets, n, True, profile=True)
    res = {"rows": rows}
    print(f"wrote {write(args.name, res)}")
    return res


if __name__ == "__main__":
    main()
