"""`edgegw browse opc.tcp://...`: the variables an OPC UA server offers, as a config fragment.

Walks the address space from Objects (Organizes and HasComponent references, the server's own
namespace 0 skipped), reads each variable's EngineeringUnits, and prints a `sources:` entry ready
to paste: a node template (`ns=2;s={asset}.{signal}`) when every NodeId follows one pattern of
its parent object's name (the asset) and its own (the signal), else one line per node. Needs the
`opcua` extra.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from dataclasses import dataclass
from typing import cast

MAX_NODES = 20000  # a walk stops here: a server's whole address space is not a config


@dataclass
class Variable:
    node: str  # NodeId string
    path: str  # browse path from Objects, ns:Name steps
    asset: str  # its parent object's name
    signal: str  # its own name
    unit: str | None


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("endpoint", help="opc.tcp://host:port/path of the server (no security: a commissioning look)")
    p.add_argument("--timeout", type=float, default=10.0, metavar="S", help="per request (default 10)")


def main(args: argparse.Namespace) -> int:
    if not args.endpoint.startswith("opc.tcp://"):
        print("edgegw browse: the endpoint must start with opc.tcp://", file=sys.stderr)
        return 2
    try:
        import asyncua  # noqa: F401
    except ImportError:
        print("edgegw browse: needs asyncua: pip install 'edgegw[opcua]'", file=sys.stderr)
        return 1
    try:
        found = asyncio.run(variables(args.endpoint, args.timeout))
    except (OSError, TimeoutError) as e:
        print(f"edgegw browse: cannot browse {args.endpoint}: {e or type(e).__name__}", file=sys.stderr)
        return 1
    print(fragment(args.endpoint, found))
    return 0


async def variables(endpoint: str, timeout: float) -> list[Variable]:
    """Every variable under Objects outside namespace 0, with its units where the server gives them."""
    from asyncua import Client, ua

    logging.getLogger("asyncua").setLevel(logging.ERROR)  # its session-timeout notes are not for this user
    mask = cast(ua.NodeClass, ua.NodeClass.Object | ua.NodeClass.Variable)
    out: list[Variable] = []
    async with Client(endpoint, timeout=timeout) as client:
        todo = [(client.nodes.objects, "", "")]
        seen: set[str] = set()
        while todo and len(seen) < MAX_NODES:
            node, path, parent = todo.pop(0)
            children = []
            for ref in (ua.ObjectIds.Organizes, ua.ObjectIds.HasComponent):
                children += await node.get_children(refs=ref, nodeclassmask=mask)
            for child in children:
                nid = child.nodeid
                key = nid.to_string()
                if nid.NamespaceIndex == 0 or key in seen:
                    continue
                seen.add(key)
                name = await child.read_browse_name()
                step = f"{path}/{name.NamespaceIndex}:{name.Name}".lstrip("/")
                if await child.read_node_class() == ua.NodeClass.Variable:
                    out.append(Variable(key, step, parent, name.Name, await _unit(child)))
                todo.append((child, step, name.Name))
    return out


async def _unit(var: object) -> str | None:
    from asyncua import ua

    try:
        eu = await var.get_child("0:EngineeringUnits")  # type: ignore[attr-defined]
        info = await eu.read_value()
    except (ua.UaError, ValueError):
        return None
    text = getattr(getattr(info, "DisplayName", None), "Text", None)
    return str(text) if text else None


def template_of(found: list[Variable]) -> str | None:
    """The NodeId pattern every variable follows, with {asset} and {signal}, or None."""
    patterns = set()
    for v in found:
        if not v.asset or not v.signal or "{" in v.node:
            return None
        t = v.node.replace(v.asset, "{asset}", 1)
        t = t[: t.index("{asset}") + 7] + t[t.index("{asset}") + 7 :].replace(v.signal, "{signal}", 1)
        if "{signal}" not in t or t.format(asset=v.asset, signal=v.signal) != v.node:
            return None
        patterns.add(t)
    return patterns.pop() if len(patterns) == 1 else None


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def fragment(endpoint: str, found: list[Variable]) -> str:
    """A `sources:` entry for these variables, with the signals' units as a profile hint."""
    if not found:
        return f"# {endpoint}: no variables under Objects (outside namespace 0)"
    assets = list(dict.fromkeys(v.asset for v in found))
    signals = list(dict.fromkeys(v.signal for v in found))
    units = {v.signal: v.unit for v in found if v.unit}
    lines = [
        f"# {endpoint}: {len(found)} variables, {len(assets)} object(s) x {len(signals)} name(s)",
        "sources:",
        "  - type: opcua",
        f"    endpoint: {endpoint}",
    ]
    template = template_of(found)
    pairs = {(v.asset, v.signal) for v in found}
    if template is not None and len(pairs) == len(assets) * len(signals):
        lines.append(f"    node: {_q(template)}   # one node per asset and signal of its profile")
        lines.append(f"    assets: [{', '.join(_q(a) for a in assets)}]")
        lines.append(f"    signals: [{', '.join(_q(s) for s in signals)}]")
    else:
        lines.append("    nodes:")
        for v in found:
            unit = f"  # {v.unit}" if v.unit else ""
            lines.append(f"      - {{node: {_q(v.node)}, asset: {_q(v.asset)}, signal: {_q(v.signal)}}}{unit}")
    lines.append("# profiles.NAME.signals, with the server's units:")
    lines += [f"#   {s}: {{unit: {_q(units[s]) if s in units else 'null'}}}" for s in signals]
    return "\n".join(lines)
