"""The root of the YAML file, `GatewayConfig`, and the `gateway:` section."""

from __future__ import annotations

import math
import socket

from pydantic import Field, PrivateAttr, model_validator

from edgegw.config.base import Base, ConfigPath, TopicName
from edgegw.config.brokers import MqttBroker
from edgegw.config.daemon import IngestConfig, LogConfig, MetricsConfig
from edgegw.config.history import HistoryConfig
from edgegw.config.learn import LEARN, LearnConfig
from edgegw.config.names import unknown
from edgegw.config.notify import NotifyConfig
from edgegw.config.outputs import AlertsConfig, RollupsConfig
from edgegw.config.profiles import AssetSpec, Profile
from edgegw.config.sources import OpcuaSource, Source
from edgegw.config.upstream import UpstreamConfig
from edgegw.config.web import ReportSchedule, WebConfig

WINDOW_MEMORY_MAX = 1 << 30  # bytes of window state over all profiles; beyond it a gateway cannot run
_WINDOW_BYTES = 2 * 13 * 8  # per row and bucket: the bucket store and the tail table, 13 float64 fields


class GatewayInfo(Base):
    id: TopicName = Field(default_factory=socket.gethostname, description="Gateway id, used in topics and alerts.")
    site: TopicName = Field("default", description="Site name, used in topics and alerts.")
    state_dir: ConfigPath | None = Field(
        None,
        description="Directory for what must survive a restart (the seq mark). Default: $STATE_DIRECTORY "
        "(systemd StateDirectory=), else /var/lib/edgegw when it exists; without one, seq is not kept.",
    )


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
    notify: NotifyConfig | None = Field(None, description="Email and webhook targets, alarm journal, ack/shelve.")
    web: WebConfig | None = Field(None, description="The operator's page (pip install 'edgegw[web]').")
    report: ReportSchedule | None = Field(None, description="Reports mailed through notify email targets on a schedule.")
    history: HistoryConfig = Field(default_factory=HistoryConfig, description="What the gateway keeps on its disk.")
    learn: LearnConfig | None = Field(None, description="Learning on the gateway, for profiles with `model: learn`.")
    _warnings: list[str] = PrivateAttr(default_factory=list)

    @property
    def warnings(self) -> list[str]:
        """Loaded but worth fixing (deprecated keys), as `file:line: field.path: what`."""
        return self._warnings

    @model_validator(mode="after")
    def _assets(self) -> GatewayConfig:
        seen: set[str] = set()
        for i, a in enumerate(self.assets):
            if a.profile not in self.profiles:
                raise ValueError(f"assets.{i}.profile: {unknown('profile', a.profile, self.profiles)}")
            if a.id in seen:
                raise ValueError(f"assets.{i}.id: duplicate asset id {a.id!r}")
            seen.add(a.id)
        return self

    @property
    def learning(self) -> LearnConfig | None:
        """The learning settings when some profile learns its model, else None."""
        return (self.learn or LearnConfig()) if self.learned_profiles else None

    @property
    def learned_profiles(self) -> list[str]:
        """Profiles whose model the gateway learns: `model: learn`, or no model while `learn:` is set."""
        return [n for n, p in self.profiles.items() if p.model == LEARN or (p.model is None and self.learn is not None)]

    @model_validator(mode="after")
    def _features_for_learning(self) -> GatewayConfig:
        """History keeps feature rows 2 days unless told; a gateway that learns keeps them as long
        as learning needs (learn.min_history_s and a day more), so the defaults work together."""
        learn = self.learning
        if learn is not None and "features_days" not in self.history.model_fields_set:
            self.history.features_days = max(self.history.features_days, math.ceil(learn.min_history_s / 86400) + 1)
        return self

    @model_validator(mode="after")
    def _node_templates(self) -> GatewayConfig:
        signals_of = {a.id: list(self.profiles[a.profile].signals) for a in self.assets if a.profile in self.profiles}
        for i, src in enumerate(self.sources):
            if isinstance(src, OpcuaSource):
                try:
                    src.expand(signals_of)
                except ValueError as e:
                    raise ValueError(f"sources.{i}.{'node' if src.node else 'browse_path'}: {e}") from None
        return self

    @model_validator(mode="after")
    def _window_memory(self) -> GatewayConfig:
        per_profile: dict[str, int] = dict.fromkeys(self.profiles, 0)
        for a in self.assets:
            per_profile[a.profile] += 1
        need = {
            name: n * len(p.signals) * p.buckets * _WINDOW_BYTES for name, p in self.profiles.items() for n in [per_profile[name]]
        }
        if sum(need.values()) > WINDOW_MEMORY_MAX:
            name = max(need, key=lambda k: need[k])
            p = self.profiles[name]
            raise ValueError(
                f"profiles.{name}: {per_profile[name]} asset(s) x {len(p.signals)} signal(s) x {p.buckets} buckets "
                f"(window_s / hop_s) need {need[name] / 2**20:,.0f} MiB of window memory; all profiles may use "
                f"{WINDOW_MEMORY_MAX // 2**20} MiB: a longer hop_s, a shorter window_s or fewer assets"
            )
        return self

    @model_validator(mode="after")
    def _asset_pumps(self) -> GatewayConfig:
        """An asset's `pump:` keys over its profile's description must make a valid one."""
        from edgegw.config.pump import asset_pump

        for i, a in enumerate(self.assets):
            if a.pump is not None:
                prof = self.profiles[a.profile]
                try:
                    asset_pump(prof.pump, a.pump).check_signals(prof.signals)
                except ValueError as e:
                    raise ValueError(f"assets.{i}.{e}") from None
        return self
