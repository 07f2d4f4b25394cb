"""OPC UA without 24 node lines: a node template per source, and `edgegw browse` writing the source
entry from what the server offers (the simulator's asyncua server, a real peer)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from edgegw.config import ConfigError, OpcuaSource, load_config
from tests.helpers import EXAMPLE
from tests.peers import free_port

pytest.importorskip("asyncua")

SIGNALS = ("vibration", "pressure", "temperature", "flow", "current", "suction_pressure")


def with_source(tmp_path: Path, source: str) -> Path:
    head, _, tail = EXAMPLE.read_text().partition("\nsources:\n")
    rest = tail[tail.index("\nprofiles:") :]
    f = tmp_path / "gw.yaml"
    f.write_text(head + "\nsources:\n" + source + rest)
    return f


def test_a_node_template_expands_over_the_assets_and_their_signals(tmp_path: Path) -> None:
    f = with_source(tmp_path, "  - type: opcua\n    endpoint: opc.tcp://127.0.0.1:4840\n    node: 'ns=2;s={asset}.{signal}'\n")
    src = load_config(f).sources[0]
    assert isinstance(src, OpcuaSource)
    assert len(src.nodes) == 4 * 6
    assert (src.nodes[0].node, src.nodes[0].asset, src.nodes[0].signal) == ("ns=2;s=pump-1.vibration", "pump-1", "vibration")
    f = with_source(
        tmp_path,
        "  - type: opcua\n    endpoint: opc.tcp://127.0.0.1:4840\n"
        "    browse_path: '2:Pumps/2:{asset}/2:{signal}'\n    assets: [pump-2]\n    signals: [flow, curent]\n",
    )
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert any(
        "sources.0.signals.1: signal 'curent' is not in any profile (did you mean 'current'?)" in p for p in e.value.problems
    )


async def test_browse_prints_a_source_that_loads_and_names_the_servers_nodes(tmp_path: Path) -> None:
    from edgegw.sim.opcua_server import OpcuaPumpServer

    server = OpcuaPumpServer(["pump-1", "pump-2"], free_port(), signals=SIGNALS)
    await server.start()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "edgegw",
            "browse",
            server.endpoint,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        await server.stop()
    assert proc.returncode == 0, err.decode()
    text = out.decode()
    assert 'node: "ns=2;s={asset}.{signal}"' in text and '#   vibration: {unit: "mm/s"}' in text
    src = load_config(with_source(tmp_path, text.split("sources:\n", 1)[1])).sources[0]
    assert isinstance(src, OpcuaSource)
    assert {(n.node, n.asset, n.signal) for n in src.nodes} == {
        (f"ns=2;s={a}.{s}", a, s) for a in ("pump-1", "pump-2") for s in SIGNALS
    }
