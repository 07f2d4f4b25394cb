"""`edgegw alarms clear ASSET/KIND/SOURCE -c FILE`: clear one alarm on a running gateway.

The command goes where every alarm command goes, `cmd/{gateway}/alarms/clear` on the local
broker named by the config's `mqtt` section, and waits for the gateway's reply: exit 0 when it
cleared the alarm, 1 with the gateway's reason when it refused, or when no reply came.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
import uuid
from typing import Any

import orjson

REPLY_TIMEOUT_S = 10.0


def _who() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name for this uid (a container)
        return "cli"


def clear(args: argparse.Namespace) -> int:
    """`args.config`, `args.key` (ASSET/KIND/SOURCE), optional `args.set` and `args.note`."""
    from edgegw.config import EX_CONFIG, ConfigError, load_config

    key = str(args.key or "")
    parts = key.split("/", 2)
    if len(parts) != 3 or not all(parts):
        print(f"edgegw alarms clear: {key!r}: expected ASSET/KIND/SOURCE, e.g. pump-1/threshold/vibration", file=sys.stderr)
        return 2
    if not getattr(args, "config", None):
        print("edgegw alarms clear: -c FILE is needed (the gateway's config names its broker and id)", file=sys.stderr)
        return 2
    try:
        cfg = load_config(args.config, getattr(args, "set", None) or [])
    except ConfigError as e:
        print("\n".join(e.problems), file=sys.stderr)
        return EX_CONFIG
    asset, kind, source = parts
    payload = {"asset": asset, "kind": kind, "source": source, "by": _who(), "request_id": uuid.uuid4().hex}
    note = getattr(args, "note", None)
    if note:
        payload["note"] = note
    reply = asyncio.run(_ask(cfg, "clear", payload))
    if isinstance(reply, str):
        print(f"edgegw alarms clear: {reply}", file=sys.stderr)
        return 1
    if not reply.get("ok"):
        print(f"edgegw alarms clear {key}: refused: {reply.get('reason', '?')}", file=sys.stderr)
        return 1
    print(f"{key}: {reply.get('reason', 'cleared')} (by {payload['by']})")
    return 0


async def _ask(cfg: Any, command: str, payload: dict[str, Any]) -> dict[str, Any] | str:
    """Publish one command and wait for its reply (matched by request_id); a str: why none came."""
    import aiomqtt

    from edgegw.alarms.commands import command_topic, where_listening
    from edgegw.mqttconn import client_kwargs
    from edgegw.preflight import state_dir_of

    base, broker = command_topic(cfg), cfg.mqtt
    running = where_listening(state_dir_of(cfg)[0], cfg.gateway.id)
    if running is not None:  # the broker the gateway really uses (run with --set overrides, say)
        base = str(running.get("topic", base))
        broker = broker.model_copy(update={"host": running.get("host", broker.host), "port": running.get("port", broker.port)})
    where = f"{broker.host}:{broker.port}"
    try:
        async with asyncio.timeout(REPLY_TIMEOUT_S):
            async with aiomqtt.Client(**client_kwargs(broker), identifier=f"edgegw-cli-{uuid.uuid4().hex[:12]}") as c:
                await c.subscribe(f"{base}/response", qos=1)
                await c.publish(f"{base}/{command}", orjson.dumps(payload), qos=1)
                async for m in c.messages:
                    try:
                        d = orjson.loads(m.payload if isinstance(m.payload, bytes) else b"")
                    except orjson.JSONDecodeError:
                        continue
                    if isinstance(d, dict) and d.get("request_id") == payload["request_id"]:
                        return d
    except (aiomqtt.MqttError, OSError) as e:
        return f"cannot reach the broker {where}: {e}"
    except TimeoutError:
        pass
    return f"no reply from gateway {cfg.gateway.id} on {where} in {REPLY_TIMEOUT_S:g} s (is it running?)"
