"""The fleet as an OPC UA server (asyncua), laid out as a PLC or SCADA server would show it:

    Objects/Pumps/<asset>/<signal>    Double, NodeId ns=2;s=<asset>.<signal>
                                      properties EngineeringUnits (UNECE code) and EURange

Values carry the simulator's event time as SourceTimestamp. No security: a loopback test peer.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import cast

from asyncua import Server, ua

from edgegw.sim.fleet import REPORTED, Sample
from edgegw.sim.physics import SIGNALS

NAMESPACE = "urn:edgegw:sim:pumps"

# UNECE Recommendation 20 codes of the simulator's units, as OPC UA EUInformation wants them.
_UNECE = {"mm/s": "C16", "bar": "BAR", "degC": "CEL", "m3/h": "MQH", "A": "AMP"}
_EU_RANGE = {
    "vibration": (0.0, 50.0),
    "pressure": (-1.0, 16.0),
    "temperature": (-20.0, 150.0),
    "flow": (0.0, 150.0),
    "current": (0.0, 100.0),
    "suction_pressure": (-1.0, 10.0),
    "motor_temperature": (-20.0, 180.0),
}


def eu_information(unit: str) -> ua.EUInformation:
    code = _UNECE.get(unit, "")
    unit_id = 0
    for ch in code:
        unit_id = (unit_id << 8) | ord(ch)
    return ua.EUInformation(
        NamespaceUri="http://www.opcfoundation.org/UA/units/un/cefact",
        UnitId=unit_id or -1,
        DisplayName=ua.LocalizedText(unit),
        Description=ua.LocalizedText(unit),
    )


def node_id(asset: str, signal: str, ns: int = 2) -> str:
    """The string NodeId of one signal, as a gateway config names it."""
    return f"ns={ns};s={asset}.{signal}"


def _node(name: str, ns: int) -> ua.NodeId:
    """A string NodeId in our namespace (asyncua types its arguments as its own int/str subclasses)."""
    return ua.NodeId(ua.String(name), ua.Int16(ns))


class OpcuaPumpServer:
    """Start with `await start()`, feed with `await update(ts, samples)`, end with `await stop()`."""

    def __init__(self, assets: Sequence[str], port: int, host: str = "127.0.0.1", signals: Sequence[str] = REPORTED) -> None:
        self.assets = list(assets)
        self.signals = list(signals)
        self.endpoint = f"opc.tcp://{host}:{port}/pumps"
        self.server = Server()
        self.ns = 2
        self._nodes: dict[tuple[str, str], ua.NodeId] = {}
        self.updates = 0

    async def start(self) -> None:
        # A loopback test peer without security: asyncua's warnings about that are expected noise.
        logging.getLogger("asyncua.server").setLevel(logging.ERROR)
        await self.server.init()
        self.server.set_endpoint(self.endpoint)
        self.server.set_server_name("edgegw pump simulator")
        self.server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        self.ns = await self.server.register_namespace(NAMESPACE)
        pumps = await self.server.nodes.objects.add_folder(_node("Pumps", self.ns), ua.QualifiedName("Pumps", self.ns))
        for asset in self.assets:
            obj = await pumps.add_object(_node(asset, self.ns), ua.QualifiedName(asset, self.ns))
            for sig in self.signals:
                unit = SIGNALS[sig][0]
                nid = _node(f"{asset}.{sig}", self.ns)
                var = await obj.add_variable(nid, ua.QualifiedName(sig, self.ns), 0.0, ua.VariantType.Double)
                await var.add_property(
                    _node(f"{asset}.{sig}.EngineeringUnits", self.ns),
                    ua.QualifiedName("EngineeringUnits", 0),
                    eu_information(unit),
                )
                lo, hi = _EU_RANGE.get(sig, (0.0, 100.0))
                await var.add_property(
                    _node(f"{asset}.{sig}.EURange", self.ns), ua.QualifiedName("EURange", 0), ua.Range(Low=lo, High=hi)
                )
                self._nodes[(asset, sig)] = nid
        await self.server.start()

    async def update(self, ts: float, samples: Sequence[Sample]) -> None:
        when = datetime.fromtimestamp(ts, UTC)
        now = datetime.now(UTC)
        for s in samples:
            for sig, v in s.values.items():
                nid = self._nodes.get((s.asset, sig))
                if nid is None:
                    continue
                dv = ua.DataValue(
                    ua.Variant(float(v), ua.VariantType.Double),
                    SourceTimestamp=cast(ua.DateTime, when),
                    ServerTimestamp=cast(ua.DateTime, now),
                )
                await self.server.write_attribute_value(nid, dv)
        self.updates += 1

    async def stop(self) -> None:
        await self.server.stop()
