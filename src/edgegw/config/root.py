"""The root of the YAML file, `GatewayConfig`, and the `gateway:` section."""

from __future__ import annotations

import socket

from pydantic import Field, model_validator

from edgegw.config.base import Base
from edgegw.config.brokers import MqttBroker
from edgegw.config.daemon import IngestConfig, LogConfig, MetricsConfig
from edgegw.config.outputs import AlertsConfig, RollupsConfig
from edgegw.config.profiles import AssetSpec, Profile
from edgegw.config.sources import Source
from edgegw.config.upstream import UpstreamConfig


class GatewayInfo(Base):
    id: str = Field(default_factory=socket.gethostname, description="Gateway id, used in topics and alerts.")
    site: str = Field("default", description="Site name, used in topics and alerts.")


class GatewayConfig(Base):
    """The root of the YAML file."""

    gateway: GatewayInfo = Field(default_factory=GatewayInfo)
    mqtt: MqttBroker = Field(default_factory=MqttBroker)
    sources: list[Source] = Field(default_factory=list)
    profiles: dict[str, Profile] = Field(min_length=1)
    assets: list[AssetSpec] = Field(min_length=1)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    rollups: RollupsConfig = Field(default_factory=RollupsConfig)
    upstream: UpstreamConfig | None = None
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    log: LogConfig = Field(default_factory=LogConfig)

    @model_validator(mode="after")
    def _assets(self) -> GatewayConfig:
        seen: set[str] = set()
        for i, a in enumerate(self.assets):
            if a.profile not in self.profiles:
                raise ValueError(f"assets.{i}.profile: unknown profile {a.profile!r} (have {sorted(self.profiles)})")
            if a.id in seen:
                raise ValueError(f"assets.{i}.id: duplicate asset id {a.id!r}")
            seen.add(a.id)
        return self
