"""`edgegw demo`: a simulated pump house, the gateway and a live alarm table in one process.

It uses the broker at the config's `mqtt` address when one answers there, and otherwise starts
an embedded one (amqtt) on that address. The simulator publishes telemetry exactly as a plant
would, the gateway (the real one, with the shipped model) reads it over MQTT and publishes
alarms, and the table follows `alerts/#` like any operator's client. At the end a scorecard
matches the alarms against the injected faults (rules in `edgegw.sim.scorecard`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from edgegw.records import iso
from edgegw.sim.faults import Fault, make_fault
from edgegw.sim.scorecard import FaultRecord, Scorecard
from edgegw.watch import CLEAR_SCREEN, AlarmBoard, Change, colour, event_line, render_table

if TYPE_CHECKING:
    from edgegw.config import GatewayConfig
    from edgegw.gateway import Gateway
    from edgegw.pump.report import EnergyRow
    from edgegw.sim.broker import EmbeddedBroker
    from edgegw.sim.clock import LiveClock

_ROOT = Path(__file__).resolve().parents[3]  # the checkout, for an editable install


def demo_schedule(assets: list[str], duration: float) -> list[Fault]:
    """The faults of a demo run, spread over `duration` so each develops inside it.

    Bearing wear, cavitation and motor overload on the first three pumps, a bearing-temperature
    drop-out on the fourth; any further pumps stay healthy, as a control group.
    """
    plan = [
        ("bearing_wear", 0.20, 0.35, None),
        ("cavitation", 0.30, 0.20, None),
        ("motor_overload", 0.42, 0.20, None),
        ("dropout", 0.62, None, max(15.0, 0.12 * duration)),
    ]
    out = []
    for asset, (mode, at, ramp, dur) in zip(assets, plan, strict=False):
        ramp_s = None if ramp is None else round(ramp * duration, 1)
        out.append(make_fault(asset, mode, round(at * duration, 1), ramp_s, dur))
    return out


def find_config(name: str = "example.yaml") -> Path | None:
    for base in (Path.cwd(), _ROOT):
        p = base / "config" / name
        if p.is_file():
            return p
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--duration", type=float, default=180.0, help="seconds of simulated operation (default 180)")
    p.add_argument("--seed", type=int, default=1, help="simulator seed (default 1)")
    p.add_argument("--summary", metavar="FILE.json", help="write the scorecard as JSON")
    p.add_argument("-c", "--config", help="gateway config (default config/example.yaml)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    p.add_argument("--rate", type=float, default=2.0, help="samples per second per pump (default 2)")
    p.add_argument("--no-colour", "--no-color", dest="colour", action="store_false", help="no ANSI colours")


class Display:
    """The live view: a redrawn screen on a terminal, one line per event otherwise."""

    def __init__(self, out: TextIO, tty: bool, colour_on: bool, duration: float) -> None:
        self.out = out
        self.tty = tty
        self.colour = colour_on
        self.duration = duration
        self.t0 = time.time()
        self.header = ""
        self.board = AlarmBoard()
        self.faults: list[FaultRecord] = []
        self.events: list[str] = []
        self.energy: Callable[[], list[EnergyRow]] | None = None  # the pumps' figures so far

    def line(self, text: str) -> None:
        if self.tty:
            self.events = [*self.events[-7:], text]
        else:
            self.out.write(text + "\n")
            self.out.flush()

    def stamp(self, ts: float) -> str:
        return f"+{ts - self.t0:5.1f} s"

    def fault_injected(self, f: FaultRecord) -> None:
        extra = f" ({f.signal})" if f.signal else ""
        self.line(f"{self.stamp(f.injected_at)}  FAULT     {f.asset} {f.mode}{extra} injected")

    def alert(self, ch: Change, received: float, caught: FaultRecord | None) -> None:
        self.line(event_line(ch, self.colour, self.stamp(received) + " "))
        if caught is not None:
            self.line(
                f"{self.stamp(received)}  CAUGHT    {caught.asset} {caught.mode} after {caught.delay_s:.1f} s "
                f"({caught.detected_by})"
            )

    def draw(self) -> None:
        if not self.tty:
            return
        now = time.time()
        lines = [f"{self.header}   t = {min(now - self.t0, self.duration):5.1f} / {self.duration:g} s", ""]
        lines.append("Injected faults")
        if not self.faults:
            lines.append("  (none yet)")
        for f in self.faults:
            if f.detected_at is None:
                state = "developing, not caught yet" if now < f.ends_at else "ended, not caught"
            else:
                state = colour(f"caught after {f.delay_s:.1f} s by {f.detected_by}", "ok", self.colour)
            extra = f" ({f.signal})" if f.signal else ""
            lines.append(f"  {self.stamp(f.injected_at)}  {f.asset:<8} {f.mode + extra:<26} {state}")
        lines += ["", f"Active alarms ({len(self.board.active)})"]
        lines += ["  " + s for s in render_table(self.board.rows(), self.colour, shutil.get_terminal_size().columns - 4)]
        rows = self.energy() if self.energy is not None else []
        if rows:
            lines += ["", "Energy so far"] + ["  " + energy_line(r) for r in rows]
        lines += ["", "Recent events"] + ["  " + e for e in self.events]
        self.out.write(CLEAR_SCREEN + "\n".join(lines) + "\n")
        self.out.flush()


@dataclass
class Setup:
    """What a demo runs against: the config as it will run, its file, and the broker it uses."""

    cfg: GatewayConfig
    cfg_path: Path
    host: str
    port: int
    broker: EmbeddedBroker | None  # started here, stopped at the end; None: one was already there
    broker_note: str
    model_note: str
    page_note: str = ""
    page_dir: Path | None = None


def _page(cfg: GatewayConfig, overrides: list[str]) -> tuple[str, Path | None]:
    """Turn the operator's page on (loopback, port 8080 or a free one) with a user `demo` (operator)
    whose random password is printed: no anonymous access even in the demo. (note, folder to remove)."""
    import importlib.util
    import secrets
    import tempfile

    if cfg.web is not None:
        return f"page {cfg.web.listen} (users from {cfg.web.users_file or 'the state dir'})", None
    if importlib.util.find_spec("aiohttp") is None:
        return "page off (pip install 'edgegw[web]')", None
    from edgegw.web.auth import User, hash_password, write_users

    folder = Path(tempfile.mkdtemp(prefix="edgegw-demo-"))
    password = secrets.token_urlsafe(9)
    write_users(folder / "users", {"demo": User("demo", "operator", hash_password(password))})
    with socket.socket() as s:
        port = 8080 if s.connect_ex(("127.0.0.1", 8080)) != 0 else free_port()
    overrides += [f"web.listen=127.0.0.1:{port}", f"web.users_file={folder / 'users'}"]
    return f"page http://127.0.0.1:{port}/ (user demo, password {password})", folder


def _load(args: argparse.Namespace) -> tuple[Path, list[str], str]:
    """The config file, the overrides that point each profile's model at a directory that exists
    (else at none: thresholds only), and what the header says about the model."""
    from edgegw.config import load_config, resolve_path

    cfg_path = Path(args.config) if args.config else find_config()
    if cfg_path is None:
        raise SystemExit("edgegw demo: no config/example.yaml here; run it from the checkout or give --config")
    overrides = ["log.level=warning", *args.set]
    cfg = load_config(cfg_path, overrides)
    model_note = "none (thresholds only)"
    for name, prof in cfg.profiles.items():
        if prof.model:
            mp = resolve_path(prof.model, cfg_path)
            if not mp.is_dir() and (_ROOT / prof.model).is_dir():
                mp = _ROOT / prof.model
            if mp.is_dir():
                overrides.append(f"profiles.{name}.model={mp}")
                model_note = str(prof.model)
            else:
                overrides.append(f"profiles.{name}.model=null")
                model_note = f"none: {prof.model} not found (thresholds only)"
    return cfg_path, overrides, model_note


async def _setup(args: argparse.Namespace) -> Setup:
    """The config, and the broker at its mqtt address, else an embedded one there, else on a free port."""
    from edgegw.config import load_config
    from edgegw.sim.broker import EmbeddedBroker, broker_reachable

    cfg_path, overrides, model_note = _load(args)
    cfg = load_config(cfg_path, overrides)
    host, port = cfg.mqtt.host, cfg.mqtt.port
    broker = None
    if broker_reachable(host, port):
        broker_note = f"broker at {host}:{port}"
    else:
        broker = EmbeddedBroker(host, port)
        try:
            await broker.start()
        except Exception:
            port = free_port()
            host = "127.0.0.1"
            broker = EmbeddedBroker(host, port)
            await broker.start()
            overrides += [f"mqtt.host={host}", f"mqtt.port={port}"]
            cfg = load_config(cfg_path, overrides)
        broker_note = f"embedded broker (amqtt) on {host}:{port}"
    page_note, page_dir = _page(cfg, overrides)
    if page_dir is not None:
        cfg = load_config(cfg_path, overrides)
    return Setup(cfg, cfg_path, host, port, broker, broker_note, model_note, page_note, page_dir)


async def _start_gateway(st: Setup) -> tuple[asyncio.Task[None], asyncio.Event, Gateway]:
    """The real gateway, running once it says it is ready; (its task, the event that stops it)."""
    from edgegw.gateway import Gateway

    gw = Gateway(st.cfg, str(st.cfg_path))
    stop_gw = asyncio.Event()
    gw_task = asyncio.create_task(gw.run(stop_gw), name="gateway")
    ready = asyncio.create_task(gw.ready.wait())
    done, _ = await asyncio.wait({gw_task, ready}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if gw_task in done:
        gw_task.result()
    if ready not in done:
        raise RuntimeError("the gateway did not start within 30 s")
    return gw_task, stop_gw, gw


def _alert_filter(cfg: GatewayConfig) -> str:
    """The subscription that follows every alert topic of the config."""
    prefix = cfg.alerts.topic.split("{", 1)[0]
    return (prefix if prefix.endswith("/") or not prefix else prefix + "/") + "#"


async def _monitor(st: Setup, display: Display, score: Scorecard, subscribed: asyncio.Event) -> None:
    """Follow the alerts like an operator's client: the board, the events and the scorecard."""
    import aiomqtt

    async with aiomqtt.Client(st.host, st.port, timeout=10) as client:
        await client.subscribe(_alert_filter(st.cfg), qos=1)
        subscribed.set()
        async for m in client.messages:
            payload = m.payload if isinstance(m.payload, bytes | bytearray) else b""
            ch = display.board.apply(str(m.topic), bytes(payload), bool(m.retain))
            if ch is None or ch.retained or ch.action == "deleted":
                continue
            received = time.time()
            caught = score.observe(ch.alert, received)
            display.alert(ch, received, caught)
            display.draw()


def _injector(clock: LiveClock, faults: list[Fault], score: Scorecard, display: Display) -> Callable[[float, object], None]:
    """A clock output that records each fault as the simulation reaches its start."""
    pending = sorted(faults, key=lambda f: f.start_s)

    def on_step(ts: float, _samples: object) -> None:
        while pending and pending[0].start_s <= ts - clock.start_ts:
            f = pending.pop(0)
            ends = clock.wall(f.end_s) if math.isfinite(f.end_s) else math.inf
            rec = FaultRecord(f.asset, f.mode, clock.wall(f.start_s), ends, f.signal)
            score.faults.append(rec)
            display.faults.append(rec)
            display.fault_injected(rec)
            display.draw()

    return on_step


async def _redraw(display: Display) -> None:
    while True:
        display.draw()
        await asyncio.sleep(1.0)


async def _cancel(*tasks: asyncio.Task[Any] | None) -> None:
    for t in tasks:
        if t is not None:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t


async def run_demo(args: argparse.Namespace, out: TextIO = sys.stdout) -> tuple[Scorecard, dict[str, Any]]:
    """Everything `edgegw demo` does; returns the scorecard and the run's facts for the summary."""
    from edgegw.log import setup
    from edgegw.sim.clock import LiveClock
    from edgegw.sim.fleet import Fleet
    from edgegw.sim.mqtt_out import TOPIC, MqttPublisher

    st = await _setup(args)
    setup("warning", "console")
    tty = out.isatty()
    display = Display(out, tty, args.colour and tty, args.duration)
    display.header = f"edgegw demo — {st.broker_note} — gateway {st.cfg.gateway.id} — model {st.model_note}\n{st.page_note}"
    if not tty:
        out.write(display.header + "\n")
        out.flush()
    pump_assets = [a.id for a in st.cfg.assets]
    faults = demo_schedule(pump_assets, args.duration)
    source_topic = next(
        (s.topic for s in st.cfg.sources if s.type == "mqtt" and "{asset}" in s.topic and "{signal}" not in s.topic), TOPIC
    )

    gw_task, stop_gw, gw = await _start_gateway(st)
    display.energy = lambda: energy_rows(st.cfg, gw)
    score = Scorecard([])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    subscribed = asyncio.Event()
    mon_task = asyncio.create_task(_monitor(st, display, score, subscribed), name="monitor")
    await asyncio.wait_for(subscribed.wait(), 15)

    fleet = Fleet(pump_assets, faults, seed=args.seed, rate_hz=args.rate)
    publisher = MqttPublisher(st.host, st.port, source_topic)
    pub_task = asyncio.create_task(publisher.run(), name="publisher")
    clock = LiveClock(fleet, [publisher.update], args.duration)
    clock.outputs.append(_injector(clock, faults, score, display))
    draw_task = asyncio.create_task(_redraw(display)) if tty else None
    display.t0 = time.time()
    try:
        await clock.run(stop)
        await publisher.drain(3.0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 2.0)  # last alarms on their way
    finally:
        await _cancel(draw_task, pub_task, mon_task)
        stop_gw.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(gw_task, 15)
        if st.broker is not None:
            with contextlib.suppress(Exception):
                await st.broker.stop()
        if st.page_dir is not None:
            shutil.rmtree(st.page_dir, ignore_errors=True)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    # faults scheduled but not reached (run stopped early) are not judged
    facts = {
        "duration_s": args.duration,
        "seed": args.seed,
        "broker": st.broker_note,
        "model": st.model_note,
        "page": st.page_note.split(" (")[0],
        "started_at": iso(clock.start_ts),
        "messages_sent": publisher.sent,
        "messages_dropped": publisher.dropped,
        "ran_s": round(fleet.t, 1),
        "energy": [r.to_dict() for r in energy_rows(st.cfg, gw)],
    }
    return score, facts


def energy_rows(cfg: GatewayConfig, gw: Gateway) -> list[EnergyRow]:
    """The pumps' energy figures since the demo's gateway started (engine/pump.py's totals)."""
    from edgegw.config.pump import pumps_of
    from edgegw.pump.report import rows_from_totals

    return rows_from_totals(gw.engine.pump_totals(), pumps_of(cfg.assets, cfg.profiles))


def energy_line(r: EnergyRow | dict[str, Any]) -> str:
    """pump-1  0.52 kWh  3.1 m3  0.168 kWh/m3  wire-to-water 0.58 (BEP 0.58)  preferred region 100 %"""
    d = r.to_dict() if not isinstance(r, dict) else r
    per = f"{d['kwh_m3']:.3f} kWh/m3" if d.get("kwh_m3") is not None else "– kWh/m3"
    eff = f"{d['efficiency']:.2f}" if d.get("efficiency") is not None else "–"
    pref = f"{100 * d['preferred_hours'] / d['run_hours']:.0f} %" if d.get("run_hours") else "–"
    return (
        f"{d['asset']:<8} {d['kwh']:7.2f} kWh {d['m3']:7.1f} m3  {per}  wire-to-water {eff} "
        f"(BEP {d['bep_efficiency']:.2f})  preferred region {pref}"
    )


def main(args: argparse.Namespace) -> int:
    try:
        score, facts = asyncio.run(run_demo(args))
    except Exception as e:
        from edgegw.config import ConfigError

        if isinstance(e, ConfigError):
            print("edgegw demo: bad config:\n  " + "\n  ".join(e.problems), file=sys.stderr)
        else:
            print(f"edgegw demo: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print()
    if facts["ran_s"] < args.duration:
        print(f"stopped early, after {facts['ran_s']:g} of {args.duration:g} s: faults not yet injected are not judged")
    print("Scorecard")
    for line in score.lines():
        print("  " + line)
    if facts.get("energy"):
        print("Energy")
        for d in facts["energy"]:
            print("  " + energy_line(d))
    if args.summary:
        summary = {**score.summary(), **facts}
        Path(args.summary).write_text(json.dumps(summary, indent=2) + "\n")
        print(f"summary written to {args.summary}")
    return 0
