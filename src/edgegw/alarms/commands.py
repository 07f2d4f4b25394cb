"""Alarm commands over MQTT on the local broker (ISA-18.2 / OPC UA Part 9 style), always listening.

`cmd/{gateway}/alarms/ack`       {asset, kind, source, by, note}
`cmd/{gateway}/alarms/shelve`    {asset, kind, source, by, note, duration_s}
`cmd/{gateway}/alarms/unshelve`  {asset, kind, source, by, note}
`cmd/{gateway}/alarms/clear`     {asset, kind, source, by, note}

Every command gets a reply on `cmd/{gateway}/alarms/response`: `{ok, command, reason, ...}`. A
malformed payload, an unknown command or an alarm the gateway does not know changes nothing and
the reply says why. `request_id`, when given, is echoed so a client can match its reply. The one
handler (`Gateway.alarm_command`) also serves the operator's page. Anyone who may publish there
may act on alarms: restrict the topic with the broker's ACLs.

With a state directory, the listener notes where it listens (`<gateway>.commands.json`: pid,
broker host and port, topic) while it runs, so `edgegw alarms clear -c FILE` finds the broker of
a gateway started with `--set mqtt.port=...` overrides the file does not hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edgegw.backoff import Backoff
from edgegw.config import GatewayConfig
from edgegw.mqttconn import NODELAY, client_kwargs
from edgegw.ratelimit import RateLimitedLog
from edgegw.records import iso
from edgegw.runtime import Link, supervise

log = structlog.get_logger("edgegw.alarms.commands")
_rl = RateLimitedLog(log)

COMMANDS = ("ack", "shelve", "unshelve", "clear")
MAX_PAYLOAD = 4096
DEFAULT_TOPIC = "cmd/{gateway}/alarms"
DEFAULT_MAX_SHELVE_S = 7 * 86400.0

__all__ = ["COMMANDS", "AlarmCommand", "CommandListener", "Handler", "command_topic", "listening", "parse"]


class AlarmCommand(BaseModel):
    """Names one alarm (asset, kind, source) and who acts on it."""

    model_config = ConfigDict(extra="forbid")
    asset: str = Field(min_length=1, max_length=200)
    kind: str = Field(min_length=1, max_length=100)
    source: str = Field(min_length=1, max_length=200)
    by: str = Field(min_length=1, max_length=100, description="Who acts: an operator's name or id.")
    note: str = Field("", max_length=1000)
    request_id: str | None = Field(None, max_length=200)
    duration_s: float | None = Field(None, gt=0, description="shelve only: how long the shelf lasts.")

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.asset, self.kind, self.source)


Handler = Callable[[str, AlarmCommand], tuple[bool, str]]


def command_topic(cfg: GatewayConfig) -> str:
    """`cmd/{gateway}/alarms`, or `notify.commands.topic` where a notify section sets it."""
    template = cfg.notify.commands.topic if cfg.notify is not None else DEFAULT_TOPIC
    return template.format(gateway=cfg.gateway.id, site=cfg.gateway.site)


def max_shelve_s(cfg: GatewayConfig) -> float:
    return cfg.notify.commands.max_shelve_s if cfg.notify is not None else DEFAULT_MAX_SHELVE_S


def listening(cfg: GatewayConfig) -> bool:
    """Commands are on unless a notify section turns them off (`notify.commands.enabled: false`)."""
    return cfg.notify is None or cfg.notify.commands.enabled


def parse(command: str, payload: bytes, longest_shelf_s: float) -> AlarmCommand | str:
    """The command, or the reason it is refused."""
    if command not in COMMANDS:
        return f"unknown command {command!r} (expected one of {', '.join(COMMANDS)})"
    if len(payload) > MAX_PAYLOAD:
        return f"payload of {len(payload)} bytes is over {MAX_PAYLOAD}"
    try:
        d = orjson.loads(payload)
    except orjson.JSONDecodeError as e:
        return f"not JSON: {e}"
    if not isinstance(d, dict):
        return "expected a JSON object"
    try:
        cmd = AlarmCommand.model_validate(d)
    except ValidationError as e:
        return "; ".join(f"{'.'.join(map(str, err['loc'])) or 'payload'}: {err['msg']}" for err in e.errors())
    if command == "shelve":
        if cmd.duration_s is None:
            return "shelve needs duration_s (seconds)"
        if cmd.duration_s > longest_shelf_s:
            return f"duration_s {cmd.duration_s:g} is over the longest shelf allowed ({longest_shelf_s:g} s)"
    elif cmd.duration_s is not None:
        return f"duration_s belongs to shelve, not {command}"
    return cmd


def runfile(state_dir: Path, gateway: str) -> Path:
    return state_dir / f"{gateway}.commands.json"


def where_listening(state_dir: Path | None, gateway: str) -> dict[str, Any] | None:
    """Where a running gateway takes commands ({pid, host, port, topic}), if it says so."""
    if state_dir is None:
        return None
    try:
        d = orjson.loads(runfile(state_dir, gateway).read_bytes())
        os.kill(int(d["pid"]), 0)  # still running (EPERM: running as another user)
    except PermissionError:
        return d if isinstance(d, dict) else None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return d if isinstance(d, dict) else None


class CommandListener:
    """One client on the local broker, as a supervised session: takes commands, hands them to
    `handler`, replies on `.../response`."""

    def __init__(self, cfg: GatewayConfig, handler: Handler, state_dir: Path | None = None) -> None:
        self.cfg = cfg
        self.name = "alarm commands"
        self.handler = handler
        self.base = command_topic(cfg)
        self.response_topic = f"{self.base}/response"
        self.max_shelve_s = max_shelve_s(cfg)
        self.link = Link("alarm commands", f"{cfg.mqtt.host}:{cfg.mqtt.port}")
        self.backoff = Backoff(0.5, 30.0)
        self.taken = 0
        self.refused = 0
        self.runfile = runfile(state_dir, cfg.gateway.id) if state_dir is not None else None

    @property
    def connected(self) -> bool:
        return self.link.connected

    def take(self, topic: str, payload: bytes, retained: bool) -> dict[str, Any]:
        """One message -> the reply to publish."""
        command = topic.rsplit("/", 1)[-1]
        reply: dict[str, Any] = {"command": command, "ts": iso(time.time())}
        if retained:
            parsed: AlarmCommand | str = "retained commands are ignored: publish commands without the retain flag"
        else:
            parsed = parse(command, payload, self.max_shelve_s)
        if isinstance(parsed, str):
            ok, reason = False, parsed
        else:
            reply.update(asset=parsed.asset, kind=parsed.kind, source=parsed.source, by=parsed.by)
            if parsed.request_id is not None:
                reply["request_id"] = parsed.request_id
            try:
                ok, reason = self.handler(command, parsed)
            except Exception as e:  # a bug: loud in the log, and the command loop goes on
                log.exception("alarm command failed", command=command)
                ok, reason = False, f"internal error: {type(e).__name__}"
        reply.update(ok=ok, reason=reason)
        if ok:
            self.taken += 1
        else:
            self.refused += 1
            _rl.warning(f"refused:{command}", "alarm command refused", topic=topic, reason=reason)
        return reply

    def stats(self) -> dict[str, Any]:
        return {**self.link.stats(), "taken": self.taken, "refused": self.refused}

    async def run(self) -> None:
        try:
            await supervise(self.link, self._session, self.backoff, expected=(aiomqtt.MqttError, OSError))
        finally:
            if self.runfile is not None:
                with contextlib.suppress(OSError):
                    self.runfile.unlink()

    def _note_where(self) -> None:
        if self.runfile is None:
            return
        b = self.cfg.mqtt
        d = {"pid": os.getpid(), "host": b.host, "port": b.port, "topic": self.base, "since": iso(time.time())}
        tmp = self.runfile.with_suffix(".tmp")
        try:
            tmp.write_bytes(orjson.dumps(d))
            os.replace(tmp, self.runfile)
        except OSError as e:
            _rl.warning("runfile", "cannot note where alarm commands are taken", path=str(self.runfile), error=str(e))

    async def _session(self, link: Link) -> None:
        b = self.cfg.mqtt
        ident = f"{b.client_id or 'edgegw-' + self.cfg.gateway.id}-cmd"
        async with aiomqtt.Client(**client_kwargs(b), identifier=ident, socket_options=NODELAY) as client:
            await client.subscribe(f"{self.base}/+", qos=1)
            link.up(topic=f"{self.base}/+")
            await asyncio.to_thread(self._note_where)
            async for m in client.messages:
                topic = m.topic.value
                if topic == self.response_topic:
                    continue
                payload = m.payload if isinstance(m.payload, bytes) else str(m.payload or "").encode()
                reply = self.take(topic, payload, bool(m.retain))
                await client.publish(self.response_topic, orjson.dumps(reply), qos=1)
                link.progress()
        raise aiomqtt.MqttError("alarm command connection ended")
