"""`edgegw watch`: a live table of the alarms that are active now, for operators.

It subscribes to `alerts/#` (or the topics given) and learns what is active from the retained
messages the broker hands a new subscriber; after that, raises add a row and clears remove it
(an empty retained payload — the gateway deleting a cleared alarm — removes it too). On a
terminal the table redraws in place, coloured by severity; otherwise each change is a line.
On a terminal, up/down (or k/j) select an alarm and `a` acknowledges it: a command to the
gateway on `cmd/{gateway}/alarms/ack`, which re-publishes the alarm with `acked_by`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

import orjson

_SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}
_COLOURS = {"critical": "\x1b[1;31m", "warning": "\x1b[33m", "info": "\x1b[36m", "ok": "\x1b[32m"}
_RESET = "\x1b[0m"
_DIM = "\x1b[2m"
CLEAR_SCREEN = "\x1b[H\x1b[2J"
ACK_TOPIC = "cmd/{gateway}/alarms/ack"
_UP, _DOWN = ("\x1b[A", "k"), ("\x1b[B", "j")


def host_port(text: str, default_port: int = 1883) -> tuple[str, int]:
    """`HOST[:PORT]` -> (host, port); raises ValueError on a bad port."""
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, default_port
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"bad port in {text!r}")
    return host or "127.0.0.1", int(port)


def colour(text: str, severity: str, on: bool) -> str:
    return f"{_COLOURS.get(severity, '')}{text}{_RESET}" if on and severity in _COLOURS else text


@dataclass(slots=True)
class Change:
    """What one message did to the board: `raised`, `escalated` (more severe), `changed` (another
    level, not more severe), `cleared`, or `deleted`."""

    action: str
    alert: dict[str, Any]
    retained: bool


def alarm_key(topic: str, d: dict[str, Any]) -> tuple[str, str, str]:
    if d.get("asset") and d.get("kind"):
        return (str(d["asset"]), str(d["kind"]), str(d.get("source", "")))
    return (topic, "", "")


class AlarmBoard:
    """The set of active alarms, keyed by (asset, kind, source), fed one MQTT message at a time."""

    def __init__(self) -> None:
        self.active: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.by_topic: dict[str, tuple[str, str, str]] = {}
        self.messages = 0
        self.bad = 0

    def apply(self, topic: str, payload: bytes, retained: bool = False) -> Change | None:
        """Take one message; return the change it made, or None (nothing changed, or unreadable)."""
        self.messages += 1
        if not payload:
            key = self.by_topic.pop(topic, None)
            gone = self.active.pop(key, None) if key else None
            return Change("deleted", gone, retained) if gone else None
        try:
            d = orjson.loads(payload)
        except orjson.JSONDecodeError:
            self.bad += 1
            return None
        if not isinstance(d, dict) or d.get("state") not in ("raised", "cleared"):
            self.bad += 1
            return None
        key = alarm_key(topic, d)
        if d["state"] == "cleared":
            self.by_topic.pop(topic, None)
            return Change("cleared", d, retained) if self.active.pop(key, None) is not None else None
        prev = self.active.get(key)
        self.by_topic[topic] = key
        if prev is None:
            self.active[key] = d
            return Change("raised", d, retained)
        d.setdefault("raised_at", prev.get("raised_at") or prev.get("ts"))
        self.active[key] = d
        if d.get("acked_by") and not prev.get("acked_by"):
            return Change("acked", d, retained)
        if (d.get("severity"), d.get("level")) == (prev.get("severity"), prev.get("level")):
            return None  # the same alarm again: a re-publish after a reconnect, or a retained copy
        more = _SEVERITY_ORDER.get(str(d.get("severity")), 3) < _SEVERITY_ORDER.get(str(prev.get("severity")), 3)
        return Change("escalated" if more else "changed", d, retained)

    def rows(self) -> list[dict[str, Any]]:
        """Active alarms, most severe first, then oldest first."""
        return sorted(
            self.active.values(),
            key=lambda d: (_SEVERITY_ORDER.get(str(d.get("severity")), 3), str(d.get("raised_at") or d.get("ts", ""))),
        )


def clock_of(iso_ts: Any) -> str:
    """HH:MM:SS (local time) of an ISO 8601 timestamp; the text itself when it does not parse."""
    try:
        return datetime.fromisoformat(str(iso_ts).replace("Z", "+00:00")).astimezone().strftime("%H:%M:%S")
    except ValueError:
        return str(iso_ts)[:8]


def ack_command(d: dict[str, Any], by: str, template: str = ACK_TOPIC) -> tuple[str, bytes]:
    """The topic and payload that acknowledge alarm `d` at the gateway that raised it."""
    body = {"asset": d.get("asset"), "kind": d.get("kind"), "source": d.get("source"), "by": by, "note": "edgegw watch"}
    return template.format(gateway=d.get("gateway", "")), orjson.dumps(body)


def render_table(rows: Sequence[dict[str, Any]], colour_on: bool, width: int = 120, selected: int | None = None) -> list[str]:
    """The alarm table as lines of text; `selected` marks one row (the one `a` acknowledges)."""
    head = f"{'SEVERITY':<9} {'SINCE':<8} {'ASSET':<10} {'KIND':<13} {'SOURCE':<16} MESSAGE"
    out = [f"{_DIM}{head}{_RESET}" if colour_on else head]
    if not rows:
        out.append("(no active alarms)")
    for i, d in enumerate(rows):
        sev = str(d.get("severity", ""))
        msg = str(d.get("message", ""))
        if d.get("acked_by"):
            msg = f"[acked by {d['acked_by']}] {msg}"
        if d.get("shelved_until"):
            msg = f"[shelved by {d.get('shelved_by', '?')} until {clock_of(d['shelved_until'])}] {msg}"
        mark = ("> " if i == selected else "  ") if selected is not None else ""
        line = mark + (
            f"{sev:<9} {clock_of(d.get('raised_at') or d.get('ts')):<8} {d.get('asset', '')!s:<10} "
            f"{d.get('kind', '')!s:<13} {d.get('source', '')!s:<16} {msg}"
        )
        out.append(colour(line[:width], sev, colour_on))
    return out


def event_line(ch: Change, colour_on: bool, when: str | None = None) -> str:
    """One change as a log-style line (for pipes and files); `when` replaces the alert's clock time."""
    d = ch.alert
    sev = str(d.get("severity", ""))
    what = f"{ch.action.upper():<9}"
    old = " (retained)" if ch.retained else ""
    line = (
        f"{when or clock_of(d.get('ts'))} {what} {sev:<8} {d.get('asset', '')} {d.get('kind', '')}/{d.get('source', '')}"
        f"  {d.get('message', '')}{old}"
    )
    return colour(line, sev if ch.action in ("raised", "escalated", "changed") else "info", colour_on)


async def watch(
    host: str,
    port: int,
    topics: Sequence[str],
    out: TextIO,
    tty: bool,
    colour_on: bool,
    stop: asyncio.Event | None = None,
    exit_after: float | None = None,
    keys: asyncio.Queue[str] | None = None,
    user: str = "operator",
) -> AlarmBoard:
    """Follow the alarms until `stop` is set or `exit_after` seconds passed; return the final board.
    `keys` (terminal key presses) move the selection and acknowledge the selected alarm as `user`."""
    import aiomqtt

    from edgegw.backoff import Backoff

    board = AlarmBoard()
    stop = stop or asyncio.Event()
    deadline = None if exit_after is None else time.monotonic() + exit_after
    backoff = Backoff(0.5, 10.0)
    status = "connecting"
    selected = 0
    note = ""
    current: list[aiomqtt.Client] = []

    def draw() -> None:
        if tty:
            lines = [f"edgegw watch  {host}:{port}  {' '.join(topics)}  — {status}, {len(board.active)} active", ""]
            rows = board.rows()
            lines += render_table(rows, colour_on, selected=min(selected, len(rows) - 1) if keys and rows else None)
            if keys is not None:
                lines += ["", note or "up/down select, a acknowledges the selected alarm"]
            out.write(CLEAR_SCREEN + "\n".join(lines) + "\n")
            out.flush()

    async def follow(client: aiomqtt.Client) -> None:
        async for m in client.messages:
            payload = m.payload if isinstance(m.payload, bytes | bytearray) else str(m.payload).encode()
            ch = board.apply(str(m.topic), bytes(payload), bool(m.retain))
            if ch is None:
                continue
            if tty:
                draw()
            else:
                out.write(event_line(ch, colour_on) + "\n")
                out.flush()

    async def take_keys() -> None:
        nonlocal selected, note
        assert keys is not None
        while True:
            key = await keys.get()
            rows = board.rows()
            if key in _UP:
                selected = max(0, min(selected, len(rows) - 1) - 1)
            elif key in _DOWN:
                selected = min(len(rows) - 1, selected + 1) if rows else 0
            elif key == "a" and rows and current:
                d = rows[min(selected, len(rows) - 1)]
                topic, payload = ack_command(d, user)
                try:
                    await current[0].publish(topic, payload, qos=1)
                    note = f"acknowledgement sent for {d.get('asset')} {d.get('kind')}/{d.get('source')}"
                except aiomqtt.MqttError as e:
                    note = f"acknowledgement not sent: {e}"
            draw()

    key_task = asyncio.create_task(take_keys()) if keys is not None else None
    while not stop.is_set():
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            break
        try:
            async with aiomqtt.Client(host, port, timeout=10) as client:
                backoff.reset()
                for t in topics:
                    await client.subscribe(t, qos=1)
                status = "connected"
                current[:] = [client]
                draw()
                reader = asyncio.create_task(follow(client))
                stopper = asyncio.create_task(stop.wait())
                await asyncio.wait({reader, stopper}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
                for task in (reader, stopper):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                if reader.done() and not reader.cancelled() and reader.exception():
                    raise reader.exception()  # type: ignore[misc]
                if deadline is not None and time.monotonic() >= deadline:
                    break
        except aiomqtt.MqttError as e:
            status = f"disconnected ({e}); retrying"
            if not tty:
                out.write(f"broker {host}:{port}: {e}; retrying\n")
                out.flush()
            draw()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff.next())
        finally:
            current.clear()
    if key_task is not None:
        key_task.cancel()
    return board


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("topics", nargs="*", metavar="TOPIC", help="topic filters (default alerts/#)")
    p.add_argument("--broker", default="127.0.0.1:1883", metavar="HOST:PORT", help="MQTT broker (default 127.0.0.1:1883)")
    p.add_argument("--exit-after", type=float, metavar="S", help="stop after S seconds and print the table once")
    p.add_argument("--no-colour", "--no-color", dest="colour", action="store_false", help="plain text even on a terminal")


def main(args: argparse.Namespace) -> int:
    try:
        host, port = host_port(args.broker)
    except ValueError as e:
        print(f"edgegw watch: {e}", file=sys.stderr)
        return 2
    topics = args.topics or ["alerts/#"]
    tty = sys.stdout.isatty()

    async def run() -> AlarmBoard:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        keys: asyncio.Queue[str] | None = None
        if tty and sys.stdin.isatty():
            q: asyncio.Queue[str] = asyncio.Queue()
            fd = sys.stdin.fileno()
            loop.add_reader(fd, lambda: q.put_nowait(os.read(fd, 16).decode(errors="replace")))
            keys = q
        try:
            return await watch(
                host, port, topics, sys.stdout, tty, args.colour and tty, stop, args.exit_after, keys=keys, user=getpass.getuser()
            )
        finally:
            if keys is not None:
                loop.remove_reader(sys.stdin.fileno())

    if tty and sys.stdin.isatty():
        import termios
        import tty as terminal

        saved = termios.tcgetattr(sys.stdin)
        terminal.setcbreak(sys.stdin)
        try:
            board = asyncio.run(run())
        finally:
            termios.tcsetattr(sys.stdin, termios.TCSADRAIN, saved)
    else:
        board = asyncio.run(run())
    if not tty:
        print(f"-- {len(board.active)} active alarm(s)")
        for line in render_table(board.rows(), False):
            print(line)
    return 0
