"""Footprint: resident memory of the running daemon, start to READY, import time.

    python benchmarks/bench_footprint.py [--quick] [--venv DIR]

--venv measures the edgegw installed in another venv instead of the one running this script,
e.g. a production install like systemd/install.sh makes (`pip install '.[opcua,coap]'`): the
development venv also holds the demo and test tools, and structlog imports `rich` whenever it
is installed (~4 MB resident in the daemon for nothing).

For 1 and 50 MQTT pumps, with all three source kinds configured: the MQTT source, an OPC UA
source subscribed to 5 nodes of a local asyncua server (the simulator's, own process, pump
opc-1) and a CoAP server source listening on a loopback UDP port. The shipped model serves
the `pump` profile. Measured:

  ready_s        spawn of `edgegw run` -> retained status/{gateway} = online seen by a
                 subscriber (the daemon announces online once its local broker connection is
                 up and the sources are starting: the READY point); median of 3 starts
  rss_idle_mb    RSS right after READY
  rss_loaded_mb  RSS after 10 Hz per pump for a while (windows full, models scoring each hop)

References in the same run: a bare aiomqtt subscriber's RSS (the floor of this design) and
the imports (`import edgegw.gateway`; + onnxruntime; + asyncua; + aiocoap), each best of 3
in fresh interpreters, next to a bare `python -c pass`.

Writes benchmarks/results/footprint.json.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _rig
from _common import write

SIGNALS = ("vibration", "pressure", "temperature", "flow", "current", "suction_pressure")
IMPORTS = {
    "python -c pass": "",
    "import edgegw.gateway": "import edgegw.gateway",
    "+ onnxruntime (a model configured)": "import edgegw.gateway, onnxruntime",
    "+ asyncua (an OPC UA source)": "import edgegw.gateway, onnxruntime, asyncua",
    "+ aiocoap (a CoAP source)": "import edgegw.gateway, onnxruntime, asyncua, aiocoap",
}


def import_times(reps: int, python: str = _rig.PY) -> dict[str, float]:
    out = {}
    for label, stmt in IMPORTS.items():
        best = float("inf")
        for _ in range(reps):
            t0 = time.perf_counter()
            subprocess.run([python, "-c", stmt or "pass"], check=True, cwd=_rig.ROOT)
            best = min(best, time.perf_counter() - t0)
        out[label] = round(best, 3)
    return out


def all_sources(opc_endpoint: str, coap_port: int) -> Any:
    def mutate(d: dict[str, Any]) -> None:
        d["assets"].append({"id": "opc-1", "profile": "pump"})
        d["sources"].append(
            {
                "type": "opcua",
                "endpoint": opc_endpoint,
                "sampling_ms": 100,
                "publishing_ms": 500,
                "nodes": [{"node": f"ns=2;s=opc-1.{s}", "asset": "opc-1", "signal": s} for s in SIGNALS],
            }
        )
        d["sources"].append(
            {"type": "coap", "mode": "server", "bind": "127.0.0.1", "port": coap_port, "path": "pumps/{asset}", "format": "senml"}
        )

    return mutate


def bare_rss(port: int) -> float:
    p = subprocess.Popen(
        [_rig.PY, str(_rig.HERE / "bare_sub.py"), "--client", "aiomqtt", "--port", str(port), "--timeout", "60"],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert p.stdout is not None
    p.stdout.readline()
    time.sleep(1.0)
    rss = _rig.rss_mb(p.pid)
    p.kill()
    p.wait()
    return round(rss, 1)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--assets", default="1,50")
    ap.add_argument("--load-seconds", type=float, help="10 Hz per pump for this long (default 35: a full window; quick 3)")
    ap.add_argument("--pin", help="taskset CPU list for the gateway")
    ap.add_argument("--ready-runs", type=int, help="starts per config for the READY figure, median (default 3; quick 1)")
    ap.add_argument("--venv", help="measure the edgegw installed in this venv (default: this script's)")
    ap.add_argument("--name", default="footprint")
    args = ap.parse_args(argv)
    python = _rig.PY
    if args.venv:
        python = str(Path(args.venv, "bin", "python"))
        _rig.EDGEGW = str(Path(args.venv, "bin", "edgegw"))
    load_s = args.load_seconds or (3.0 if args.quick else 35.0)
    args.ready_runs = args.ready_runs or (1 if args.quick else 3)
    wd = _rig.workdir("footprint")
    broker = _rig.broker(wd)
    opc_port = _rig.free_port()
    peer = subprocess.Popen(
        [_rig.PY, str(_rig.HERE / "peer_opcua.py"), "--port", str(opc_port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    res: dict[str, Any] = {
        "pinned": args.pin,
        "load_seconds": load_s,
        "runs": [],
        "install": args.venv or "",
    }  # "": this script's (development) venv
    try:
        assert peer.stdout is not None
        line = peer.stdout.readline().decode().split()
        if not line or line[0] != "ready":
            raise RuntimeError("OPC UA peer did not start")
        endpoint = line[1]
        res["import_reps"] = 1 if args.quick else 3
        res["imports_s"] = import_times(res["import_reps"], python)
        for k, v in res["imports_s"].items():
            print(f"{k:40s} {v:.3f} s", flush=True)
        res["bare_aiomqtt_rss_mb"] = bare_rss(broker.port)
        print(f"bare aiomqtt subscriber RSS {res['bare_aiomqtt_rss_mb']} MB", flush=True)
        for n in [int(x) for x in args.assets.split(",")]:
            w = _rig.Watcher(broker.port)
            cfg = _rig.gateway_config(
                wd,
                n,
                instant_alarms=False,
                mutate=all_sources(endpoint, _rig.free_port(socket.SOCK_DGRAM)),
                name=f"footprint-{n}.yaml",
            )
            prefix = ["taskset", "-c", args.pin] if args.pin else None
            readies = []
            for _ in range(args.ready_runs - 1):  # extra starts, only for the READY figure
                g = _rig.Gateway(cfg, broker.port, w, wd, argv_prefix=prefix)
                readies.append(g.ready_s)
                g.close()
            gw = _rig.Gateway(cfg, broker.port, w, wd, argv_prefix=prefix)
            readies.append(gw.ready_s)
            try:
                time.sleep(0.5)
                idle = gw.rss_mb()
                lg = _rig.loadgen(broker.port, n, 10.0 * n, load_s, sentinel=False)
                _rig.loadgen_result(lg, load_s + 60)
                m = w.next_metrics(5.0) or {}
                loaded = gw.rss_mb()
                row = {
                    "assets_mqtt": n,
                    "assets_total": n + 2,
                    "sources": ["mqtt", "opcua", "coap(server)"],
                    "ready_s": round(statistics.median(readies), 3),
                    "ready_best_s": round(min(readies), 3),
                    "ready_n": len(readies),
                    "rss_idle_mb": round(idle, 1),
                    "rss_loaded_mb": round(loaded, 1),
                    "peak_rss_mb": m.get("peak_rss_mb"),
                    "sources_connected": m.get("sources"),
                    "readings_in": m.get("readings_in"),
                    "hops": m.get("hops"),
                    "windows_skipped": m.get("windows_skipped"),
                    "hop_ms_p99": m.get("hop_ms_p99"),
                }
            finally:
                gw.close()
                w.close()
            res["runs"].append(row)
            print(
                f"{n:3d} pumps + OPC UA + CoAP: READY {row['ready_s']:.2f} s, RSS idle {row['rss_idle_mb']} MB, "
                f"loaded {row['rss_loaded_mb']} MB (peak {row['peak_rss_mb']}), sources {row['sources_connected']}",
                flush=True,
            )
    finally:
        _rig.stop(peer)
        broker.stop()
    res["max_rss_mb"] = max(max(r["rss_loaded_mb"], r["peak_rss_mb"] or 0) for r in res["runs"])
    res["max_ready_s"] = max(r["ready_s"] for r in res["runs"])
    print(f"wrote {write(args.name, res)}")
    return res


if __name__ == "__main__":
    main()
