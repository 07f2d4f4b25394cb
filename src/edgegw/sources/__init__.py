"""Southbound adapters. Each turns one protocol into values handed to an `Intake`.

A source only emits readings: reconnecting with backoff is its own business, but counting,
rejecting, hop scheduling and alarms live once, in the intake and the engine.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from edgegw.config import GatewayConfig
    from edgegw.intake import Intake
    from edgegw.runtime import Link


class Source(Protocol):
    name: str
    assets: frozenset[str]  # the assets it feeds (what its link alarm names and suppresses)
    link: Link

    @property
    def connected(self) -> bool: ...

    async def run(self) -> None:
        """Run until cancelled; reconnect by itself after any outage (capped backoff + jitter)."""
        ...


# source type -> module with `build(spec, cfg, intake) -> Source`; imported only when configured
_KINDS = {"mqtt": "edgegw.sources.mqtt", "opcua": "edgegw.sources.opcua", "coap": "edgegw.sources.coap"}


def build_sources(cfg: GatewayConfig, intake: Intake) -> list[Source]:
    out = []
    for i, spec in enumerate(cfg.sources):
        module = importlib.import_module(_KINDS[spec.type])
        src: Source = module.build(spec, cfg, intake, f"{spec.type}-{i}")
        out.append(src)
    return out
