"""The `upstream:` broker, what is sent there and the outbox that holds it meanwhile."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from edgegw.config.base import Base, ConfigPath, SecretHolder
from edgegw.config.brokers import TlsConfig


def _default_outbox() -> str:
    """In the service's state directory ($STATE_DIRECTORY, set by systemd's StateDirectory=)."""
    return os.path.join(os.environ.get("STATE_DIRECTORY", "").split(":")[0] or "/var/lib/edgegw", "outbox.db")


class OutboxConfig(Base):
    path: ConfigPath = Field(
        default_factory=_default_outbox,
        description="SQLite file of messages waiting for upstream; default $STATE_DIRECTORY/outbox.db, else "
        "/var/lib/edgegw/outbox.db.",
    )
    max_mb: float = Field(
        512, gt=0, le=2**20, description="Cap on stored messages; when full the oldest readings, then rollups go first."
    )
    commit_ms: float = Field(
        200, ge=0, le=60000, description="fsync period: a power cut loses at most this much unacknowledged traffic."
    )
    replay_rate: float = Field(500, gt=0, le=1e6, description="Backlog messages per second after a reconnect.")
    inflight: int = Field(
        32, ge=1, le=65535, description="QoS 1 publishes awaiting PUBACK at once (throughput over a slow link)."
    )


class UpstreamSend(Base):
    alerts: bool = Field(True, description="Send alerts upstream.")
    rollups: bool = Field(True, description="Send rollups upstream.")
    readings: list[str] = Field(
        default_factory=list, description="Signals whose raw readings go upstream, decimated (all assets)."
    )
    readings_every_s: float = Field(10.0, gt=0, le=86400, description="Decimation: the latest reading per signal per period.")


class UpstreamConfig(SecretHolder):
    host: str = Field(description="Upstream broker host.")
    port: int = Field(8883, ge=1, le=65535, description="Upstream broker port.")
    protocol: Literal["3.1.1", "5"] = Field("5", description="MQTT protocol version.")
    tls: TlsConfig | None = Field(
        None, description="TLS settings; TLS is on unless tls_enabled is false (verification on by default)."
    )
    tls_enabled: bool | None = Field(
        None, description="Default: on when a tls section is given or the port is 8883, off otherwise."
    )
    username: str | None = Field(None, description="User name; none: anonymous.")
    password: SecretStr | None = Field(None, description="Password; use ${ENV} or password_file, not plain text.")
    password_file: ConfigPath | None = Field(None, description="File holding the password (systemd credential).")
    client_id: str | None = Field(None, description="Client id; default edgegw-<gateway id>-up.")
    keepalive_s: int = Field(30, ge=5, le=3600, description="MQTT keep-alive.")
    topic_prefix: str = Field("edge/{gateway}", description="Prepended to the local topics; {gateway} and {site}.")
    outbox: OutboxConfig = Field(default_factory=OutboxConfig)
    send: UpstreamSend = Field(default_factory=UpstreamSend)
    hold_unheard: bool = Field(
        True,
        description="Keep a message queued, and offer it again, when an MQTT 5 server acknowledges it with 0x10 "
        "(no matching subscribers: it reached no one). Turn off when nothing subscribes upstream by design.",
    )

    @field_validator("protocol", mode="before")
    @classmethod
    def _protocol_number(cls, v: object) -> object:
        """`protocol: 5` as YAML writes it is a number: the same as "5"."""
        return "5" if v == 5 and not isinstance(v, bool) else v

    @property
    def use_tls(self) -> bool:
        """TLS unless switched off: explicit setting, else a tls section or port 8883."""
        if self.tls_enabled is not None:
            return self.tls_enabled
        return self.tls is not None or self.port == 8883

    @model_validator(mode="after")
    def _upstream(self) -> UpstreamConfig:
        if self.password is not None and not self.username:
            raise ValueError("password given without username")
        try:
            self.topic_prefix.format(gateway="g", site="s")
        except (KeyError, IndexError, ValueError):
            raise ValueError(f"topic_prefix {self.topic_prefix!r}: only {{gateway}} and {{site}} placeholders") from None
        for part in self.topic_prefix.split("/"):
            if part in ("+", "#") or not part:
                raise ValueError(f"topic_prefix {self.topic_prefix!r}: no wildcards or empty levels")
        return self
