"""Acknowledge and shelve over MQTT (ISA-18.2 / OPC UA Part 9 style), on the local broker.

`cmd/{gateway}/alarms/ack`       {asset, kind, source, by, note}
`cmd/{gateway}/alarms/shelve`    {asset, kind, source, by, note, duration_s}
`cmd/{gateway}/alarms/unshelve`  {asset, kind, source, by, note}

Every command gets a reply on `cmd/{gateway}/alarms/response`: `{ok, command, reason, ...}`. A
malformed payload, an unknown command or an alarm the gateway does not know changes nothing and
the reply says why. `request_id`, when given, is echoed so a client can match its reply.
Anyone who may publish there may acknowledge: restrict the topic with the broker's ACLs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
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

log = structlog.get_logger("edgegw.notify.commands")
_rl = RateLimitedLog(log)

COMMANDS = ("ack", "shelve", "unshelve")
MAX_PAYLOAD = 4096


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
    assert cfg.notify is not None
    return cfg.notify.commands.topic.format(gateway=cfg.gateway.id, site=cfg.gateway.site)


def parse(command: str, payload: bytes, max_shelve_s: float) -> AlarmCommand | str:
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
        if cmd.duration_s > max_shelve_s:
            return f"duration_s {cmd.duration_s:g} is over the longest shelf allowed ({max_shelve_s:g} s)"
    elif cmd.duration_s is not None:
        return f"duration_s belongs to shelve, not {command}"
    return cmd


class CommandListener:
    """One client on the local broker: takes commands, hands them to `handler`, replies."""

    def __init__(self, cfg: GatewayConfig, handler: Handler) -> None:
        assert cfg.notify is not None
        self.cfg = cfg
        self.handler = handler
        self.base = command_topic(cfg)
        self.response_topic = f"{self.base}/response"
        self.max_shelve_s = cfg.notify.commands.max_shelve_s
        self.connected = False
        self.taken = 0
        self.refused = 0

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

    async def run(self) -> None:
        b = self.cfg.mqtt
        ident = f"{b.client_id or 'edgegw-' + self.cfg.gateway.id}-cmd"
        backoff = Backoff()
        while True:
            try:
                async with aiomqtt.Client(**client_kwargs(b), identifier=ident, socket_options=NODELAY) as client:
                    await client.subscribe(f"{self.base}/+", qos=1)
                    self.connected = True
                    backoff.reset()
                    async for m in client.messages:
                        topic = m.topic.value
                        if topic == self.response_topic:
                            continue
                        payload = m.payload if isinstance(m.payload, bytes) else str(m.payload or "").encode()
                        reply = self.take(topic, payload, bool(m.retain))
                        await client.publish(self.response_topic, orjson.dumps(reply), qos=1)
            except aiomqtt.MqttError as e:
                self.connected = False
                delay = backoff.next()
                _rl.warning("connection", "alarm command connection lost", error=str(e), retry_in_s=round(delay, 1))
                await asyncio.sleep(delay)
            finally:
                self.connected = False
