"""Ingest: the highest rate the full gateway sustains with zero loss, side by side with a bare
aiomqtt subscriber (the ceiling of this design) and a bare paho subscriber, through one real
mosquitto, in one run.

    python benchmarks/bench_ingest.py [--quick] [--assets 50] [--seconds 8]

1. Burst: the load generator sends a burst as fast as it can (it manages ~4x what any of the
   subscribers takes here); each subscriber's drain rate is messages / (first sent -> last
   handled). For the gateway "handled" is the threshold alert the burst's last reading
   raises, so the figure includes decoding, rules, hops and models.
2. Sweep: paced load at fractions of the bare aiomqtt burst rate, each subscriber in turn at
   each step (interleaved, so the box's noise hits all three alike). A step is sustained when
   nothing is lost and the subscriber handled the stream at >= 95 % of the rate it was sent
   (messages / first sent -> last handled): it kept up, give or take a scheduling hiccup.
   The highest sustained rate is the top of the unbroken run of sustained steps from below.
   (--quick sweeps aiomqtt and the gateway only; paho is in the burst.)
   Gateway loss is counted from its own self-metrics (messages_in, readings_in, rejected).

The bare subscribers read bench/pumps/<client>/+/telemetry and the gateway
plant/pumps/+/telemetry: all three stay up (warm) for the whole run, and none of them sees
the load meant for another.

Writes benchmarks/results/ingest.json.
"""

from __future__ import annotations

import argparse
import json
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _rig
from _common import write
from loadgen import FMT

READINGS_PER_MESSAGE = len(json.loads(FMT.format(ts=0.0, v=0.0))) - 1  # every field but ts is a reading

CLIENTS = ("aiomqtt", "paho", "gateway")


class BareSubscriber:
    """bare_sub.py as a long-lived child (warm across runs, like the gateway)."""

    def __init__(self, client: str, port: int, n_assets: int, pin: str | None) -> None:
        self.prefix = f"{_rig.BARE_PREFIX}/{client}"  # its own stream: the other bare client never sees it
        argv = [_rig.PY, str(_rig.HERE / "bare_sub.py"), "--client", client, "--port", str(port), "--prefix", self.prefix]
        if pin:
            argv = ["taskset", "-c", pin, *argv]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, start_new_session=True)
        assert self.proc.stdout is not None
        self.out = self.proc.stdout
        if self.out.readline().strip() != b"ready":
            raise RuntimeError(f"{client} subscriber did not start")
        self.port, self.n_assets, self.pin = port, n_assets, pin

    def run(self, rate: float, seconds: float, count: int | None) -> dict[str, Any]:
        lg = _rig.loadgen(self.port, self.n_assets, rate, seconds, prefix=self.prefix, count=count, pin=self.pin)
        pub = _rig.loadgen_result(lg, seconds * 4 + 60)
        ready, _, _ = select.select([self.out], [], [], seconds * 4 + 30)
        if not ready:
            return _figures(pub, 0, None, seconds, rate)
        res = json.loads(self.out.readline())
        return _figures(pub, int(res["count"]), res["t_sentinel"], seconds, rate)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def _figures(pub: dict[str, Any], received: int, t_done: float | None, seconds: float, rate: float) -> dict[str, Any]:
    sent = int(pub["sent"])
    lost = sent - received
    if t_done is None:
        return {
            "offered": rate,
            "sent": sent,
            "received": received,
            "lost": lost,
            "sustained": False,
            "rate": 0.0,
            "lag_s": None,
            "pub_rate": round(pub["achieved_rate"]),
        }
    lag = t_done - pub["t_flushed"]
    span = t_done - pub["t_first"]
    ok = lost == 0 and received / span >= 0.95 * pub["achieved_rate"]
    return {
        "offered": rate,
        "sent": sent,
        "received": received,
        "lost": lost,
        "sustained": ok,
        "rate": round(received / span),
        "lag_s": round(lag, 3),
        "pub_rate": round(pub["achieved_rate"]),
    }


class GatewayUnderTest:
    def __init__(self, wd: Path, broker: _rig.Broker, n_assets: int, pin: str | None) -> None:
        self.watcher = _rig.Watcher(broker.port)
        cfg = _rig.gateway_config(wd, n_assets)
        self.gw = _rig.Gateway(cfg, broker.port, self.watcher, wd, argv_prefix=["taskset", "-c", pin] if pin else None)
        self.port = broker.port
        self.n_assets = n_assets
        self.pin = pin
        time.sleep(1.0)

    def snapshot(self) -> dict[str, Any]:
        m = self.watcher.next_metrics(5.0)
        if m is None:
            raise RuntimeError("no self-metrics from the gateway")
        return m

    def run(self, rate: float, seconds: float, count: int | None) -> dict[str, Any]:
        before = self.snapshot()
        cpu0 = _rig.cpu_s(self.gw.pid)
        w = self.watcher
        t_start = time.perf_counter()
        lg = _rig.loadgen(self.port, self.n_assets, rate, seconds, count=count, pin=self.pin)
        pub = _rig.loadgen_result(lg, seconds * 4 + 60)

        def raised() -> float | None:
            for t, d in reversed(w.alerts):
                if t < t_start:
                    return None
                if d.get("asset") == _rig.PROBE and d.get("kind") == "threshold" and d.get("state") == "raised":
                    return t
            return None

        w.wait(lambda: raised() is not None, seconds * 4 + 30)
        t_done = raised()
        cpu = _rig.cpu_s(self.gw.pid) - cpu0
        time.sleep(0.1)
        after = self.snapshot()
        msgs = after["messages_in"] - before["messages_in"]
        readings = after["readings_in"] - before["readings_in"]
        rejected = after["rejected_total"] - before["rejected_total"]
        received = msgs - 2  # the probe's opening and closing messages
        fig = _figures(pub, received, t_done, seconds, rate)
        fig.update(
            readings_in=readings,
            rejected=rejected,
            cpu_us_per_msg=round(cpu / max(msgs, 1) * 1e6, 1),
            hop_ms_p99=after.get("hop_ms_p99"),
            rss_mb=after.get("rss_mb"),
        )
        if readings != READINGS_PER_MESSAGE * msgs or rejected:
            fig["sustained"] = False
        return fig

    def close(self) -> None:
        self.gw.close()
        self.watcher.close()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--assets", type=int, default=50)
    ap.add_argument("--seconds", type=float, help="length of each sweep step (default 8; quick 2.5)")
    ap.add_argument("--sweep-clients", help="subscribers in the sweep (default all three; quick: aiomqtt,gateway)")
    ap.add_argument("--burst", type=int, help="messages per burst (default 40000; quick 6000)")
    ap.add_argument("--steps", help="comma-separated fractions of the bare aiomqtt burst rate")
    ap.add_argument("--pin", help="taskset CPU list for every process of the run, e.g. 0 (Pi-class projection)")
    ap.add_argument("--name", default="ingest")
    args = ap.parse_args(argv)
    seconds = args.seconds or (2.5 if args.quick else 8.0)
    burst = args.burst or (6000 if args.quick else 40000)
    steps = (
        [float(s) for s in args.steps.split(",")]
        if args.steps
        else ([0.6, 0.8, 0.95] if args.quick else [0.4, 0.55, 0.7, 0.8, 0.9, 1.0, 1.1, 1.25])
    )
    wd = _rig.workdir("ingest")
    broker = _rig.broker(wd)
    if args.pin:
        subprocess.run(["taskset", "-pc", args.pin, str(broker.proc.pid)], capture_output=True)
    gut = GatewayUnderTest(wd, broker, args.assets, args.pin)
    bare = {c: BareSubscriber(c, broker.port, args.assets, args.pin) for c in ("aiomqtt", "paho")}
    res: dict[str, Any] = {
        "assets": args.assets,
        "signals_per_message": 5,
        "step_seconds": seconds,
        "burst_messages": burst,
        "pinned": args.pin,
    }
    try:
        bursts: dict[str, dict[str, Any]] = {}
        for c in CLIENTS:
            r = gut.run(0, 0, burst) if c == "gateway" else bare[c].run(0, 0, burst)
            bursts[c] = r
            print(f"burst  {c:8s} {r['rate']:>8,} msg/s  lost {r['lost']}  (publisher {r['pub_rate']:,} msg/s)", flush=True)
        res["burst"] = bursts
        ceiling = bursts["aiomqtt"]["rate"]
        clients = (
            args.sweep_clients.split(",") if args.sweep_clients else (["aiomqtt", "gateway"] if args.quick else list(CLIENTS))
        )
        sweep: dict[str, list[dict[str, Any]]] = {c: [] for c in clients}
        for f in steps:
            rate = round(ceiling * f)
            for c in clients:
                r = gut.run(rate, seconds, None) if c == "gateway" else bare[c].run(rate, seconds, None)
                sweep[c].append(r)
                print(
                    f"offered {rate:>7,}/s  {c:8s} got {r['rate']:>7,}/s  lost {r['lost']:>5}  lag {r['lag_s']} s  "
                    f"{'ok' if r['sustained'] else 'NOT sustained'}",
                    flush=True,
                )
        res["sweep"] = sweep
        best = {}
        for c in clients:
            best[c] = 0
            for r in sweep[c]:
                if not r["sustained"]:
                    break
                best[c] = r["offered"]
        res["max_sustained"] = best
        res["ratio_gateway_vs_aiomqtt"] = round(best["gateway"] / best["aiomqtt"], 2) if best["aiomqtt"] else None
        res["burst_ratio_gateway_vs_aiomqtt"] = round(bursts["gateway"]["rate"] / ceiling, 2) if ceiling else None
        res["gateway_rss_mb"] = gut.snapshot().get("rss_mb")
    finally:
        gut.close()
        for b in bare.values():
            b.close()
        broker.stop()
    print(
        f"max sustained, zero loss: {', '.join(f'{c} {v:,}/s' for c, v in best.items())} "
        f"-> gateway/aiomqtt {res['ratio_gateway_vs_aiomqtt']}; "
        f"burst ratio {res['burst_ratio_gateway_vs_aiomqtt']}"
    )
    print(f"wrote {write(args.name, res)}")
    return res


if __name__ == "__main__":
    main()
