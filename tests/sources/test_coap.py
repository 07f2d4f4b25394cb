"""CoAP source against real peers: libcoap's coap-client (not written here) POSTing to the
gateway's endpoint, an aiocoap client for the content formats, an aiocoap device observed and
polled, restarted mid-test so the observation must be registered again."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import cbor2
import pytest

from edgegw.config import GatewayConfig
from edgegw.records import Quality
from edgegw.sources.coap import CoapTelemetrySource, build
from tests.peers import free_port, senml, until
from tests.sources.conftest import Recorder

aiocoap = pytest.importorskip("aiocoap")
COAP_CLIENT = shutil.which("coap-client-notls") or shutil.which("coap-client")


def config(source: dict[str, Any], assets: tuple[str, ...] = ("pump-4",)) -> GatewayConfig:
    return GatewayConfig.model_validate(
        {
            "profiles": {"pump": {"signals": {"vibration": {"hi": 7.1}, "pressure": {}, "temperature": {}}}},
            "assets": [{"id": a, "profile": "pump"} for a in assets],
            "sources": [source],
        }
    )


@contextlib.asynccontextmanager
async def running(source: dict[str, Any]) -> AsyncIterator[tuple[CoapTelemetrySource, Recorder]]:
    cfg = config(source)
    rec = Recorder()
    src = build(cfg.sources[0], cfg, rec, "coap-0")  # type: ignore[arg-type]
    task = asyncio.create_task(src.run())
    try:
        await until(lambda: src.connected or task.done(), what="source up")
        yield src, rec
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def server_spec(port: int, **over: Any) -> dict[str, Any]:
    return {"type": "coap", "mode": "server", "bind": "127.0.0.1", "port": port, "format": "senml", **over}


async def coap_client(*args: str) -> str:
    """Run libcoap's command-line client; its stdout+stderr (the response code on errors)."""
    p = await asyncio.create_subprocess_exec(
        COAP_CLIENT,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,  # type: ignore[arg-type]
    )
    out, _ = await asyncio.wait_for(p.communicate(), 20)
    return out.decode(errors="replace")


@pytest.mark.skipif(COAP_CLIENT is None, reason="libcoap3-bin (coap-client-notls) not installed")
async def test_libcoap_client_posts_senml_and_gets_204_or_400() -> None:
    port = free_port(socket.SOCK_DGRAM)
    async with running(server_spec(port)) as (_, rec):
        uri = f"coap://127.0.0.1:{port}/pumps/pump-4"
        pack = [{"bn": "pump-4/", "bt": time.time(), "n": "vibration", "u": "mm/s", "v": 12.5}, {"n": "pressure", "v": 5.0}]
        out = await coap_client("-v", "6", "-m", "post", "-t", "110", "-e", json.dumps(pack), uri)
        assert "2.04" in out, out
        assert [v for _, v, _ in rec.of("pump-4", "vibration")] == [12.5]
        assert [v for _, v, _ in rec.of("pump-4", "pressure")] == [5.0]

        out = await coap_client("-m", "post", "-t", "110", "-e", "[{not senml", uri)
        assert "4.00" in out, out
        out = await coap_client("-m", "put", "-t", "41", "-e", "<xml/>", uri)  # application/xml
        assert "4.15" in out, out
        out = await coap_client("-m", "post", "-t", "110", "-e", "[]", f"coap://127.0.0.1:{port}/valves/v-1")
        assert "4.04" in out, out
        out = await coap_client("-m", "post", "-t", "110", "-e", json.dumps(pack), f"coap://127.0.0.1:{port}/pumps/p-9")
        assert "4.04" in out, out  # not a configured asset
        assert rec.rejected == {"malformed_senml": 1, "unsupported_format": 1, "unknown_path": 1, "unknown_asset": 1}
        assert len(rec.values) == 2


async def test_content_formats_and_oversized_payloads() -> None:
    port = free_port(socket.SOCK_DGRAM)
    spec = server_spec(port, path="site/{asset}/{signal}", max_payload_bytes=256, fields={"vib": "vibration"})
    async with running(spec) as (_, rec):
        ctx = await aiocoap.Context.create_client_context(transports=["udp6"])
        try:
            base = f"coap://127.0.0.1:{port}/site/pump-4"

            async def post(path: str, payload: bytes, cf: int | None) -> str:
                msg = aiocoap.Message(code=aiocoap.POST, uri=f"{base}/{path}", payload=payload, content_format=cf)
                return str((await ctx.request(msg).response).code)

            cbor_pack = cbor2.dumps([{-2: "pump-4/", 0: "temperature", 2: 61.0}])
            assert (await post("x", cbor_pack, 112)).startswith("2.04")  # SenML CBOR, integer labels
            assert (await post("x", cbor_pack, None)).startswith("2.04")  # no option: CBOR recognised
            assert (await post("x", b'{"vib": 4.5, "other": "x"}', 50)).startswith("2.04")  # JSON mapping
            assert (await post("pressure", b"6.25", 0)).startswith("2.04")  # text/plain, signal from path
            assert (await post("x", b"not json", 50)).startswith("4.00")
            assert (await post("pressure", b"six", 0)).startswith("4.00")
            assert (await post("x", b"\xff\x00", 112)).startswith("4.00")
            big = json.dumps([{"bn": "pump-4/", "n": "vibration", "v": 1.0}] * 20).encode()
            assert len(big) > 256
            assert (await post("x", big, 110)).startswith("4.13")  # arrives blockwise, refused whole
        finally:
            await ctx.shutdown()
    assert [v for _, v, _ in rec.of("pump-4", "temperature")] == [61.0, 61.0]
    assert [v for _, v, _ in rec.of("pump-4", "vibration")] == [4.5]
    assert [v for _, v, _ in rec.of("pump-4", "pressure")] == [6.25]
    assert rec.rejected["oversized"] == 1
    assert all(q == Quality.GOOD for *_, q in rec.values)


async def test_observe_reregisters_after_device_restart(coap_device_factory: Any) -> None:
    device = await coap_device_factory(("pump-4",))
    spec = {
        "type": "coap",
        "mode": "observe",
        "uri": f"coap://127.0.0.1:{device.port}/pumps/pump-4",
        "observe_timeout_s": 1.5,
        "poll_s": 0.2,
        "reobserve_s": 1,
        "request_timeout_s": 1,
    }
    async with running(spec) as (src, rec):
        await until(lambda: src.registrations == 1, what="observing")
        for i in range(3):
            device.notify("pump-4", senml("pump-4", vibration=10.0 + i))
            await until(lambda i=i: any(v == 10.0 + i for _, v, _ in rec.of("pump-4", "vibration")))

        await device.stop()  # the device reboots: it forgets its observers, the gateway hears nothing
        await device.start()
        await until(lambda: src.registrations >= 2, what="registered again")
        device.notify("pump-4", senml("pump-4", vibration=20.0))
        await until(lambda: any(v == 20.0 for _, v, _ in rec.of("pump-4", "vibration")), what="resumed")


async def test_observe_falls_back_to_polling_a_resource_without_observe(coap_device_factory: Any) -> None:
    device = await coap_device_factory(("pump-4",))
    spec = {
        "type": "coap",
        "mode": "observe",
        "uri": f"coap://127.0.0.1:{device.port}/plain/pump-4",
        "poll_s": 0.05,
        "reobserve_s": 60,
        "request_timeout_s": 1,
    }
    async with running(spec) as (src, rec):
        device.notify("pump-4", senml("pump-4", vibration=5.5))
        await until(lambda: src.polls >= 3, what="polling")
        assert src.registrations == 0
        await until(lambda: any(v == 5.5 for _, v, _ in rec.of("pump-4", "vibration")))


async def test_poll_mode_counts_and_drops_bad_payloads(coap_device_factory: Any) -> None:
    device = await coap_device_factory(("pump-4",))
    spec = {"type": "coap", "mode": "poll", "uri": f"coap://127.0.0.1:{device.port}/plain/pump-4", "poll_s": 0.05}
    async with running(spec) as (src, rec):
        device.notify("pump-4", b"[{broken", cf=110)
        await until(lambda: rec.rejected.get("malformed_senml", 0) >= 2, what="malformed counted")
        device.notify("pump-4", b"<a/>", cf=41)
        await until(lambda: rec.rejected.get("unsupported_format", 0) >= 2, what="format counted")
        device.notify("pump-4", senml("pump-4", pressure=3.5))
        await until(lambda: any(v == 3.5 for _, v, _ in rec.of("pump-4", "pressure")), what="good value")
        assert src.connected


# ---------------------------------------------------------------- through the real gateway


@pytest.mark.skipif(COAP_CLIENT is None, reason="libcoap3-bin (coap-client-notls) not installed")
async def test_gateway_coap_endpoint_raises_alert_from_libcoap_posts(mosquitto: Any) -> None:
    from edgegw.config import CoapSource
    from tests.helpers import Collector, example_config, running_gateway

    port = free_port(socket.SOCK_DGRAM)
    cfg = example_config(mosquitto.port, "profiles.pump.signals.vibration.on_delay_s=0")
    cfg.sources.append(CoapSource.model_validate(server_spec(port)))
    async with Collector(mosquitto.port, "alerts/#") as alerts, running_gateway(cfg) as gw:
        src = gw.sources[-1]
        await until(lambda: src.connected, what="coap endpoint up")
        uri = f"coap://127.0.0.1:{port}/pumps/pump-4"
        t = time.time()
        for i in range(3):
            pack = [
                {"bn": "pump-4/", "bt": t + i * 0.1, "n": "vibration", "u": "mm/s", "v": 12.5},
                {"n": "pressure", "v": 5.0},
                {"n": "temperature", "v": 55.0},
                {"n": "flow", "v": 60.0},
                {"n": "current", "v": 30.0},
            ]
            out = await coap_client("-m", "post", "-t", "110", "-e", json.dumps(pack), uri)
            assert "4." not in out and "5." not in out, out
        got = await alerts.wait(lambda c: c.alerts(asset="pump-4", kind="threshold", state="raised"))
        assert got[0]["signal"] == "vibration" and got[0]["value"] == 12.5
        assert "4.00" in await coap_client("-m", "post", "-t", "110", "-e", "[{not senml", uri)
        assert gw.engine.rejected.get("malformed_senml") == 1


async def test_observing_source_stops_when_cancelled_during_a_notification_flood(coap_device_factory: Any) -> None:
    device = await coap_device_factory(("pump-4",))
    cfg = config({"type": "coap", "mode": "observe", "uri": f"coap://127.0.0.1:{device.port}/pumps/pump-4"})
    rec = Recorder()
    src = build(cfg.sources[0], cfg, rec, "coap-0")  # type: ignore[arg-type]
    task = asyncio.create_task(src.run())
    stop_flood = asyncio.Event()

    async def flood() -> None:
        k = 0
        while not stop_flood.is_set():
            k += 1
            device.notify("pump-4", senml("pump-4", vibration=1.0 + k % 5))
            await asyncio.sleep(0)

    flooding = asyncio.create_task(flood())
    try:
        await until(lambda: src.notifications > 50, what="notifications flowing")
        task.cancel()  # while notifications keep arriving: the cancel must not be lost
        done, _ = await asyncio.wait({task}, timeout=15)
        assert task in done, "source task ignored its cancellation"
        assert task.cancelled()
    finally:
        stop_flood.set()
        await flooding
