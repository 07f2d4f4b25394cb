"""The fleet as a CoAP server (aiocoap): one observable resource per pump, SenML payloads.

    GET / observe coap://HOST:PORT/pumps/<asset>
    -> [{"bn": "<asset>/", "bt": <epoch s>, "n": "vibration", "u": "mm/s", "v": 2.41}, {"n": "pressure", ...}]

Content format 110 (application/senml+json) by default, 112 (senml+cbor) when the client asks
for it with Accept. `/.well-known/core` lists the resources. An observer gets every new sample.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import aiocoap
import aiocoap.resource as resource
import orjson
from aiocoap.numbers import ContentFormat

from edgegw.sim.fleet import Sample
from edgegw.sim.physics import SIGNALS

SENML_JSON = ContentFormat(110)
SENML_CBOR = ContentFormat(112)


def senml_pack(asset: str, ts: float, values: dict[str, float]) -> list[dict[str, Any]]:
    """One sample as a SenML pack (RFC 8428): base name `<asset>/`, base time the event time."""
    pack: list[dict[str, Any]] = []
    for i, (sig, v) in enumerate(values.items()):
        rec: dict[str, Any] = {"n": sig, "u": SIGNALS[sig][0], "v": v}
        if i == 0:
            rec = {"bn": f"{asset}/", "bt": round(ts, 3), **rec}
        pack.append(rec)
    return pack


class PumpResource(resource.ObservableResource):
    """The latest sample of one pump."""

    def __init__(self, asset: str) -> None:
        super().__init__()
        self.asset = asset
        self.pack: list[dict[str, Any]] = []

    def publish(self, ts: float, values: dict[str, float]) -> None:
        self.pack = senml_pack(self.asset, ts, values)
        self.updated_state()

    def get_link_description(self) -> dict[str, str]:
        return {**super().get_link_description(), "rt": "pump", "ct": "110 112", "obs": ""}

    async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
        if not self.pack:
            return aiocoap.Message(code=aiocoap.SERVICE_UNAVAILABLE, payload=b"no sample yet")
        if request.opt.accept == SENML_CBOR:
            import cbor2

            return aiocoap.Message(payload=cbor2.dumps(self.pack), content_format=SENML_CBOR)
        return aiocoap.Message(payload=orjson.dumps(self.pack), content_format=SENML_JSON)


class CoapPumpServer:
    """Start with `await start()`, feed with `update(ts, samples)`, end with `await stop()`."""

    def __init__(self, assets: Sequence[str], port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port
        self.resources = {a: PumpResource(a) for a in assets}
        self.site = resource.Site()
        self.site.add_resource([".well-known", "core"], resource.WKCResource(self.site.get_resources_as_linkheader))
        for asset, res in self.resources.items():
            self.site.add_resource(["pumps", asset], res)
        self.context: aiocoap.Context | None = None

    def uri(self, asset: str) -> str:
        return f"coap://{self.host}:{self.port}/pumps/{asset}"

    async def start(self) -> None:
        logging.getLogger("coap-server").setLevel(logging.WARNING)
        self.context = await aiocoap.Context.create_server_context(self.site, bind=(self.host, self.port))

    def update(self, ts: float, samples: Sequence[Sample]) -> None:
        for s in samples:
            res = self.resources.get(s.asset)
            if res is not None and s.values:
                res.publish(ts, s.values)

    async def stop(self) -> None:
        if self.context is not None:
            await self.context.shutdown()
            self.context = None
