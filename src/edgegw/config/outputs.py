"""What goes to the local broker: the `alerts:` and `rollups:` topics."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edgegw.config.base import Base


class AlertsConfig(Base):
    topic: str = Field("alerts/{site}/{asset}/{kind}/{source}", description="Alert topic template.")
    qos: Literal[0, 1, 2] = 1
    retain_active: bool = Field(True, description="Keep active alarms retained; a clear removes them.")


class RollupsConfig(Base):
    interval_s: float = Field(60.0, ge=1, description="Aggregation interval, aligned to wall-clock boundaries.")
    topic: str = "rollups/{site}/{asset}"
    enabled: bool = True
