"""The daemon's own behaviour: `ingest:` limits, self-`metrics:` and `log:`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from edgegw.config.base import Base


class IngestConfig(Base):
    max_payload_bytes: int = Field(65536, ge=64, le=2**24, description="Larger messages are dropped.")
    max_future_s: float = Field(300.0, ge=0, le=86400, description="Event times further ahead of the clock are dropped.")
    max_age_s: float = Field(
        2 * 365 * 86400.0,
        gt=0,
        le=100 * 365 * 86400.0,
        description="Event times older than this are dropped (history replays allowed).",
    )


class MetricsConfig(Base):
    """Self-metrics on status/{gateway}/metrics, and an optional Prometheus endpoint."""

    interval_s: float = Field(10.0, ge=1, le=86400, description="Self-metrics period on status/{gateway}/metrics.")
    prometheus_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="Serve Prometheus /metrics on this port (needs edgegw[metrics]); off when unset, 0: any free port.",
    )
    prometheus_bind: str = Field(
        "127.0.0.1", description="Address of the Prometheus endpoint; localhost unless you mean to expose it."
    )

    @model_validator(mode="after")
    def _prometheus_installed(self) -> MetricsConfig:
        import importlib.util

        if self.prometheus_port is not None and importlib.util.find_spec("prometheus_client") is None:
            raise ValueError("prometheus_port is set but prometheus-client is not installed: pip install 'edgegw[metrics]'")
        return self


class LogConfig(Base):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"
