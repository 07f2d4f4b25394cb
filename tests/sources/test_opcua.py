"""OPC UA source against a real asyncua server: security None and Basic256Sha256 SignAndEncrypt
with generated certificates, user names, Bad status, timestamps, and a server restart mid-test."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from edgegw.config import ConfigError, GatewayConfig, load_config
from edgegw.records import Quality
from edgegw.sources.opcua import OpcuaTelemetrySource, build
from tests.peers import Certs, until
from tests.sources.conftest import Recorder

pytest.importorskip("asyncua")


def config(source: dict[str, Any], assets: tuple[str, ...] = ("pump-1",)) -> GatewayConfig:
    return GatewayConfig.model_validate(
        {
            "profiles": {"pump": {"signals": {"vibration": {"hi": 7.1}, "pressure": {}}}},
            "assets": [{"id": a, "profile": "pump"} for a in assets],
            "sources": [source],
        }
    )


def opcua_spec(endpoint: str, **over: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "type": "opcua",
        "endpoint": endpoint,
        "sampling_ms": 50,
        "publishing_ms": 50,
        "keepalive_s": 1,
        "watchdog_s": 0.5,
        "timeout_s": 2,
        "reconnect_max_s": 1,
        "nodes": [
            {"node": "ns=2;s=pump-1.vibration", "asset": "pump-1", "signal": "vibration"},
            {"browse_path": "2:Pumps/2:pump-1/2:pressure", "asset": "pump-1", "signal": "pressure"},
        ],
    }
    spec.update(over)
    return spec


@contextlib.asynccontextmanager
async def running(source: dict[str, Any]) -> AsyncIterator[tuple[OpcuaTelemetrySource, Recorder]]:
    cfg = config(source)
    rec = Recorder()
    src = build(cfg.sources[0], cfg, rec, "opcua-0")  # type: ignore[arg-type]
    task = asyncio.create_task(src.run())
    try:
        yield src, rec
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_security_none_values_bad_status_and_source_timestamps(opcua_server_factory: Any) -> None:
    server = await opcua_server_factory()
    async with running(opcua_spec(server.endpoint)) as (src, rec):
        await until(lambda: src.connected, what="subscribed")
        assert src.items_created == 2  # the NodeId and the browse path both resolved
        stamp = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
        await server.write("pump-1", "vibration", 4.25, source_ts=stamp)
        await server.write("pump-1", "pressure", 5.5)
        await until(lambda: (stamp.timestamp(), 4.25, Quality.GOOD) in rec.of("pump-1", "vibration"))
        await until(lambda: any(v == 5.5 for _, v, _ in rec.of("pump-1", "pressure")))
        await server.write("pump-1", "vibration", 0.0, bad=True)
        await until(lambda: any(q == Quality.BAD for _, _, q in rec.of("pump-1", "vibration")))
        bad = [v for _, v, q in rec.of("pump-1", "vibration") if q == Quality.BAD]
        assert all(v != v for v in bad)  # a Bad value is NaN with quality BAD, never a number


async def test_receive_timestamps_when_configured(opcua_server_factory: Any) -> None:
    server = await opcua_server_factory()
    async with running(opcua_spec(server.endpoint, timestamp="receive")) as (src, rec):
        await until(lambda: src.connected, what="subscribed")
        old = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
        await server.write("pump-1", "vibration", 6.5, source_ts=old)
        got = await until(lambda: [t for t, v, _ in rec.of("pump-1", "vibration") if v == 6.5])
        assert got[0] > old.timestamp() + 86400


async def test_unknown_node_does_not_block_the_others(opcua_server_factory: Any) -> None:
    server = await opcua_server_factory()
    spec = opcua_spec(server.endpoint)
    spec["nodes"] += [
        {"node": "ns=2;s=pump-9.vibration", "asset": "pump-1", "signal": "vibration"},
        {"browse_path": "2:Pumps/2:pump-9/2:flow", "asset": "pump-1", "signal": "pressure"},
        {"node": "nsu=urn:test:elsewhere;s=pump-1.flow", "asset": "pump-1", "signal": "pressure"},
        {"node": "nsu=urn:test:pumps:model;s=pump-1.temperature", "asset": "pump-1", "signal": "pressure"},
    ]
    async with running(spec) as (src, rec):
        await until(lambda: src.connected, what="subscribed")
        assert src.items_created == 3  # NodeId, browse path, and a NodeId by namespace URI
        assert rec.rejected.get("opcua_item_refused") == 1
        assert rec.rejected.get("opcua_node_unknown") == 2
        await server.write("pump-1", "temperature", 0.5)  # reaches the engine as 'pressure' (by nsu=)
        await until(lambda: any(v == 0.5 for _, v, _ in rec.of("pump-1", "pressure")))
        await server.write("pump-1", "vibration", 1.5)
        await until(lambda: any(v == 1.5 for _, v, _ in rec.of("pump-1", "vibration")))


async def test_server_restart_recreates_session_and_every_item(opcua_server_factory: Any) -> None:
    server = await opcua_server_factory()
    async with running(opcua_spec(server.endpoint)) as (src, rec):
        await until(lambda: src.connected, what="subscribed")
        await server.write("pump-1", "vibration", 1.0)
        await until(lambda: any(v == 1.0 for _, v, _ in rec.of("pump-1", "vibration")))

        await server.stop()  # mid-test: the same port goes dark
        await until(lambda: not src.connected, what="loss detected")
        await asyncio.sleep(0.5)  # a reconnect attempt or two against nothing
        await server.start()  # a new server process on the same port: no sessions, no subscriptions

        await until(lambda: src.sessions == 2, what="second session")
        assert src.items_created == 4  # every monitored item created again
        await server.write("pump-1", "vibration", 2.0)
        await server.write("pump-1", "pressure", 3.0)
        await until(lambda: any(v == 2.0 for _, v, _ in rec.of("pump-1", "vibration")), what="vibration")
        await until(lambda: any(v == 3.0 for _, v, _ in rec.of("pump-1", "pressure")), what="pressure")


def secure_spec(endpoint: str, certs: Certs, **sec: Any) -> dict[str, Any]:
    security = {
        "policy": "Basic256Sha256",
        "mode": "SignAndEncrypt",
        "certificate": str(certs.client_cert),
        "private_key": str(certs.client_key),
        "server_certificate": str(certs.server_cert),
    }
    security.update(sec)
    return opcua_spec(endpoint, security=security)


async def test_basic256sha256_sign_and_encrypt_with_user(opcua_server_factory: Any, certs: Certs, tmp_path: Path) -> None:
    server = await opcua_server_factory(secure=certs, users={"gateway": "s3cret"})
    pw = tmp_path / "opcua-password"
    pw.write_text("s3cret\n")
    spec = secure_spec(server.endpoint, certs)
    spec.update(username="gateway", password_file=str(pw))
    async with running(spec) as (src, rec):
        await until(lambda: src.connected, what="secure session")
        await server.write("pump-1", "vibration", 7.75)
        await until(lambda: any(v == 7.75 for _, v, _ in rec.of("pump-1", "vibration")))


async def test_wrong_password_and_wrong_server_certificate_are_refused(opcua_server_factory: Any, certs: Certs) -> None:
    server = await opcua_server_factory(secure=certs, users={"gateway": "s3cret"})
    wrong_pw = secure_spec(server.endpoint, certs)
    wrong_pw.update(username="gateway", password="nope")
    pinned_other = secure_spec(server.endpoint, certs, server_certificate=str(certs.other_cert))
    pinned_other.update(username="gateway", password="s3cret")
    for spec in (wrong_pw, pinned_other):
        async with running(spec) as (src, rec):
            await until(lambda: src.attempts >= 3, what="three attempts")
            assert src.sessions == 0 and not rec.values


def test_security_config_is_checked_at_load(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "profiles: {pump: {signals: {vibration: {}}}}\nassets: [{id: pump-1, profile: pump}]\n"
        "sources:\n  - type: opcua\n    endpoint: opc.tcp://127.0.0.1:4840\n"
        "    security: {policy: Basic256Sha256, mode: SignAndEncrypt, certificate: c.der, private_key: k.pem}\n"
        "    nodes: [{node: 'ns=2;s=x', asset: pump-1, signal: vibration}]\n"
    )
    with pytest.raises(ConfigError, match="server_certificate"):
        load_config(bad)
    bad.write_text(bad.read_text().replace("private_key: k.pem}", "private_key: k.pem, trust_any_server: true}"))
    with pytest.raises(ConfigError, match=rf"certificate: cannot read {tmp_path}/c\.der"):  # beside the config
        load_config(bad)
    bad.write_text(bad.read_text().replace("ns=2;s=x", "pump-1.vibration"))
    with pytest.raises(ConfigError, match="NodeId"):
        load_config(bad)


# ---------------------------------------------------------------- through the real gateway


async def test_gateway_secure_opcua_alerts_and_survives_server_restart(
    opcua_server_factory: Any, certs: Certs, mosquitto: Any
) -> None:
    from edgegw.config import OpcuaSource
    from tests.helpers import Collector, example_config, running_gateway

    server = await opcua_server_factory(assets=("pump-1", "pump-2"), secure=certs)
    spec = secure_spec(server.endpoint, certs)
    spec["nodes"] = [
        {"node": f"ns=2;s={a}.{s}", "asset": a, "signal": s}
        for a in ("pump-1", "pump-2")
        for s in ("vibration", "pressure", "temperature", "flow", "current")
    ]
    cfg = example_config(mosquitto.port, "profiles.pump.signals.vibration.on_delay_s=0")
    cfg.sources.append(OpcuaSource.model_validate(spec))
    async with Collector(mosquitto.port, "alerts/#") as alerts, running_gateway(cfg) as gw:
        src = gw.sources[-1]
        await until(lambda: src.connected, what="secure session")
        await server.write("pump-1", "vibration", 12.0)
        got = await alerts.wait(
            lambda c: c.alerts(site=cfg.gateway.site, asset="pump-1", kind="threshold", source="vibration", state="raised")
        )
        assert got[0]["value"] == 12.0

        await server.stop()
        await until(lambda: not src.connected, what="loss detected")
        await server.start()  # same port, same certificate, a server with no memory of us
        await until(lambda: src.sessions == 2, what="second session")
        await server.write("pump-2", "vibration", 13.0)
        got = await alerts.wait(
            lambda c: c.alerts(site=cfg.gateway.site, asset="pump-2", kind="threshold", source="vibration", state="raised")
        )
        assert got[0]["value"] == 13.0
        assert src.items_created == 20


OPENSSL_RECIPE = (  # the README's recipe, word for word apart from the file names
    "openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -sha256 -keyout {key} -out {cert} -subj /CN=edgegw "
    "-addext subjectAltName=URI:urn:plant-a:edgegw,DNS:localhost "
    "-addext keyUsage=critical,digitalSignature,nonRepudiation,keyEncipherment,dataEncipherment "
    "-addext extendedKeyUsage=clientAuth -addext basicConstraints=critical,CA:FALSE"
)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
async def test_openssl_recipe_client_certificate_works(opcua_server_factory: Any, certs: Certs, tmp_path: Path) -> None:
    cert, key = tmp_path / "client-cert.pem", tmp_path / "client-key.pem"
    subprocess.run(OPENSSL_RECIPE.format(key=key, cert=cert).split(), check=True, capture_output=True)
    server = await opcua_server_factory(secure=certs)
    spec = secure_spec(server.endpoint, certs, certificate=str(cert), private_key=str(key))
    async with running(spec) as (src, rec):
        await until(lambda: src.connected, what="secure session with the openssl certificate")
        await server.write("pump-1", "vibration", 2.5)
        await until(lambda: any(v == 2.5 for _, v, _ in rec.of("pump-1", "vibration")))


async def test_a_silent_endpoint_does_not_hold_up_another(opcua_server_factory: Any) -> None:
    """One endpoint accepts TCP and never answers (a hung PLC), the other works: values flow."""
    from tests.peers import free_port

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # takes the Hello, answers nothing, until the client gives up
        writer.close()

    silent = await asyncio.start_server(swallow, "127.0.0.1", free_port())
    silent_port = silent.sockets[0].getsockname()[1]
    server = await opcua_server_factory()
    try:
        async with (
            running(opcua_spec(f"opc.tcp://127.0.0.1:{silent_port}/hung")) as (hung, _),
            running(opcua_spec(server.endpoint)) as (src, rec),
        ):
            await until(lambda: src.connected, what="live endpoint subscribed")
            await server.write("pump-1", "vibration", 3.25)
            await until(lambda: any(v == 3.25 for _, v, _ in rec.of("pump-1", "vibration")))
            await until(lambda: hung.attempts >= 2, what="hung endpoint retried")
            assert hung.sessions == 0 and not hung.connected
    finally:
        silent.close()
        await silent.wait_closed()


@pytest.mark.parametrize(
    ("policy", "mode"),
    [
        ("Aes128_Sha256_RsaOaep", "SignAndEncrypt"),
        ("Aes256_Sha256_RsaPss", "SignAndEncrypt"),
        ("Basic256Sha256", "Sign"),
    ],
)
async def test_other_security_policies_and_modes(opcua_server_factory: Any, certs: Certs, policy: str, mode: str) -> None:
    server_policy = f"{policy.replace('_', '')}_{mode}"  # Aes128_Sha256_RsaOaep -> Aes128Sha256RsaOaep_...
    server = await opcua_server_factory(secure=certs, policies=(server_policy,))
    async with running(secure_spec(server.endpoint, certs, policy=policy, mode=mode)) as (src, rec):
        await until(lambda: src.connected, what=f"{policy} {mode} session")
        await server.write("pump-1", "vibration", 8.5)
        await until(lambda: any(v == 8.5 for _, v, _ in rec.of("pump-1", "vibration")))


async def test_absolute_deadband_is_requested_from_the_server(opcua_server_factory: Any) -> None:
    server = await opcua_server_factory()
    async with running(opcua_spec(server.endpoint, deadband=1.0)) as (src, rec):
        await until(lambda: src.connected, what="subscribed")
        for v in (2.0, 2.5, 4.0):  # 2.5 is within 1.0 of 2.0: the server keeps it to itself
            await server.write("pump-1", "vibration", v)
            await asyncio.sleep(0.15)  # let each value be sampled on its own (ordering only, not asserted)
        await until(lambda: any(v == 4.0 for _, v, _ in rec.of("pump-1", "vibration")))
        seen = [v for _, v, _ in rec.of("pump-1", "vibration")]
        assert 2.0 in seen and 2.5 not in seen


async def test_trust_any_server_takes_the_endpoint_certificate(opcua_server_factory: Any, certs: Certs) -> None:
    server = await opcua_server_factory(secure=certs)
    spec = secure_spec(server.endpoint, certs, server_certificate=None, trust_any_server=True)
    async with running(spec) as (src, rec):
        await until(lambda: src.connected, what="session with the offered certificate")
        await server.write("pump-1", "vibration", 6.0)
        await until(lambda: any(v == 6.0 for _, v, _ in rec.of("pump-1", "vibration")))
