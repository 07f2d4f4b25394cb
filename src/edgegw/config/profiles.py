"""The `profiles:` (signals, windows, model alarms) and the `assets:` that use them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from edgegw.config.base import Base, ConfigPath, TopicName
from edgegw.config.forecast import ForecastSpec
from edgegw.config.pump import PumpSpec


class SignalSpec(Base):
    unit: str | None = None
    hi: float | None = None
    hihi: float | None = None
    lo: float | None = None
    lolo: float | None = None
    deadband: float = Field(0.0, ge=0, description="Hysteresis: clear only below hi - deadband (above lo + deadband).")
    on_delay_s: float = Field(0.0, ge=0, description="Condition must hold this long (event time) to raise.")
    off_delay_s: float = Field(0.0, ge=0, description="Condition must be gone this long (event time) to clear.")
    range: tuple[float, float] | None = Field(None, description="Physical range; outside it a reading is bad.")
    resolution: float | None = Field(
        None, gt=0, description="Smallest step worth showing: alarm texts and rollups round to it (default: deadband / 10)."
    )

    @model_validator(mode="after")
    def _order(self) -> SignalSpec:
        if self.hi is not None and self.hihi is not None and self.hihi < self.hi:
            raise ValueError("hihi must be >= hi")
        if self.lo is not None and self.lolo is not None and self.lolo > self.lo:
            raise ValueError("lolo must be <= lo")
        if self.range is not None and self.range[0] >= self.range[1]:
            raise ValueError("range must be [min, max] with min < max")
        return self


class ModelAlarmSpec(Base):
    on_delay_s: float | None = Field(
        None, ge=0, description="Model verdict must hold this long (event time) to raise (default: the model's delay)."
    )
    off_delay_s: float | None = Field(None, ge=0, description="... and be gone this long to clear (default: the model's).")
    failure_threshold: float = Field(0.5, gt=0, lt=1, description="failure_risk raises above this probability.")


MAX_BUCKETS = 3600


class Profile(Base):
    window_s: float = Field(
        30.0,
        gt=0,
        le=86400,
        description="Feature window length; a whole multiple of hop_s (the window is window_s/hop_s hops).",
    )
    hop_s: float = Field(
        1.0, ge=0.01, le=3600, description="How often features and models run per asset; windows end on multiples of it."
    )
    stale_after_s: float = Field(10.0, gt=0, le=7 * 86400, description="A signal silent this long (wall clock) raises stale.")
    max_rate_hz: float = Field(
        10.0,
        gt=0,
        le=10000,
        description="Expected highest sample rate per signal. Accepted for compatibility; it no longer limits "
        "the window, which holds every sample of the last window_s.",
    )
    model: Literal["learn"] | ConfigPath | None = Field(
        None, description="Model directory (anomaly + failure ONNX and metadata)."
    )
    model_alarms: ModelAlarmSpec = Field(default_factory=ModelAlarmSpec)
    signals: dict[str, SignalSpec] = Field(min_length=1)
    pump: PumpSpec | None = Field(None, description="The pump these assets are (config/pump.py).")
    forecast: ForecastSpec | None = Field(None, description="When signals will reach their limits (config/forecast.py).")

    @model_validator(mode="after")
    def _hop(self) -> Profile:
        if self.hop_s > self.window_s:
            raise ValueError("hop_s must be <= window_s")
        hops = self.window_s / self.hop_s
        if abs(hops - round(hops)) > 1e-9 * hops:
            raise ValueError(
                f"window_s ({self.window_s:g}) must be a whole multiple of hop_s ({self.hop_s:g}): a window is made of whole hops"
            )
        if self.buckets > MAX_BUCKETS:
            raise ValueError(
                f"window_s / hop_s is {self.buckets:,} buckets (at most {MAX_BUCKETS:,}): a longer hop_s or a shorter window_s"
            )
        return self

    @model_validator(mode="after")
    def _pump_signals(self) -> Profile:
        if self.pump is not None:
            self.pump.check_signals(self.signals)
        derived = self.pump.limits if self.pump is not None else {}
        for name in (self.forecast.signals or []) if self.forecast is not None else []:
            if name not in self.signals and name not in derived:
                raise ValueError(f"forecast.signals: {name!r} is neither a signal of this profile nor a derived one with limits")
        return self

    @property
    def buckets(self) -> int:
        """Buckets in a window: window_s / hop_s."""
        return max(1, round(self.window_s / self.hop_s))


class AssetSpec(Base):
    id: TopicName = Field(description="Asset id as it appears in topics.")
    profile: str
    pump: dict[str, Any] | None = Field(None, description="Keys laid over the profile's pump description for this asset.")
