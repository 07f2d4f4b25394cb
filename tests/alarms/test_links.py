"""Link alarms against a real asyncua server and mosquitto: the server stops, one `link` alarm
names the pumps it fed and no `stale` alarm is published; it comes back, one clear; a signal
still silent on the healthy link is `stale` again."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest

from edgegw.config import GatewayConfig
from tests.alarms.conftest import leaves
from tests.helpers import Collector, running_gateway
from tests.peers import SIGNALS, OpcuaPumpServer, until

pytest.importorskip("asyncua")
ASSETS = ("pump-1", "pump-2")
_n = itertools.count(1)


def link_config(port: int, endpoint: str) -> GatewayConfig:
    n = next(_n)
    return GatewayConfig.model_validate(
        {
            "gateway": {"id": f"gw-links-{os.getpid()}-{n}", "site": f"site-links-{os.getpid()}-{n}"},
            "mqtt": {"host": "127.0.0.1", "port": port},
            "profiles": {"pump": {"stale_after_s": 2, "signals": {s: {} for s in SIGNALS}}},
            "assets": [{"id": a, "profile": "pump"} for a in ASSETS],
            "sources": [
                {
                    "type": "opcua",
                    "endpoint": endpoint,
                    "timestamp": "receive",
                    "sampling_ms": 50,
                    "publishing_ms": 100,
                    "keepalive_s": 1,
                    "watchdog_s": 0.5,
                    "timeout_s": 2,
                    "reconnect_max_s": 1,
                    "nodes": [{"node": f"ns=2;s={a}.{s}", "asset": a, "signal": s} for a in ASSETS for s in SIGNALS],
                }
            ],
        }
    )


@contextlib.asynccontextmanager
async def feeding(server: OpcuaPumpServer, skip: tuple[str, str] | None = None) -> AsyncIterator[None]:
    """Every node of the server changes every 0.2 s (but `skip`, which stays silent)."""

    async def run() -> None:
        for i in itertools.count():
            for a in ASSETS:
                for s in SIGNALS:
                    if (a, s) != skip:
                        await server.write(a, s, 3.0 + (i % 2) * 0.1)
            await asyncio.sleep(0.2)

    task = asyncio.create_task(run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def kinds(col: Collector, kind: str, state: str) -> list[dict[str, Any]]:
    return col.alerts(kind=kind, state=state)


async def test_lost_link_is_one_alarm_and_its_stale_alarms_are_suppressed(mosquitto: Any, opcua_server_factory: Any) -> None:
    server = await opcua_server_factory(ASSETS)
    cfg = link_config(mosquitto.port, server.endpoint)
    leaves(mosquitto.port, cfg.gateway.site)
    async with Collector(mosquitto.port, f"alerts/{cfg.gateway.site}/#") as col, running_gateway(cfg) as gw:
        async with feeding(server):
            await until(lambda: gw.sources[0].connected, what="subscribed")
            await asyncio.sleep(1.0)
        await server.stop()
        raised = await col.wait(lambda c: kinds(c, "link", "raised"), timeout=15)
        await asyncio.sleep(3.0)  # twice stale_after_s: every signal would be stale by now
        assert len(kinds(col, "link", "raised")) == 1
        link = raised[0]
        assert link["asset"] == cfg.gateway.id and link["source"] == "opcua-0" and link["assets"] == list(ASSETS)
        assert "pump-1, pump-2" in link["message"] and server.endpoint in link["message"]
        assert kinds(col, "stale", "raised") == []
        assert gw.alarms.counts["suppressed"] == len(ASSETS) * len(SIGNALS)

        server = OpcuaPumpServer(server.port, ASSETS)
        await server.start()
        try:
            async with feeding(server, skip=("pump-2", "flow")):
                cleared = await col.wait(lambda c: kinds(c, "link", "cleared"), timeout=15)
                assert "is back" in cleared[0]["message"]
                stale = await col.wait(lambda c: kinds(c, "stale", "raised"), timeout=10)
                await asyncio.sleep(0.5)
        finally:
            await server.stop()
    assert [(d["asset"], d["source"]) for d in stale] == [("pump-2", "flow")]  # re-armed: the silent one only
    assert len(kinds(col, "link", "raised")) == 1 and len(kinds(col, "link", "cleared")) == 1
    assert kinds(col, "stale", "cleared") == []  # nobody saw the suppressed raises: nor their clears
