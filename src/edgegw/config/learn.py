"""The `learn:` section: when the gateway trains a model from its own history, what it learns
from, and the guards a new model must pass before it serves (see docs/learning.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edgegw.config.base import Base

LEARN = "learn"  # `profiles.NAME.model: learn`: the gateway learns this profile's model itself
DAY = 86400.0
FeatureName = Literal["mean", "std", "min", "max", "rms", "ptp", "slope", "skew", "kurtosis", "crest", "last", "count"]
SHAPE_FEATURES: tuple[FeatureName, ...] = ("std", "ptp", "slope", "skew", "kurtosis", "crest")


class TrendGuard(Base):
    """A slow fault must not become the new normal: before a new model replaces the old one, the
    stretch of history it would newly absorb is checked for a steady creep, on the old model's
    score and on each signal's window mean."""

    enabled: bool = True
    limit: float = Field(
        3.0,
        gt=0,
        description="Refuse when the recent stretch moves steadily by more than this many robust spreads "
        "(of the older normal history) from its start to its end.",
    )
    steadiness: float = Field(
        0.8, gt=0, le=1, description="... and the move is this steady: R^2 of a line through the stretch's binned medians."
    )
    bins: int = Field(24, ge=6, le=1000, description="The stretch is cut into this many bins of time; their medians are fitted.")


class LearnConfig(Base):
    min_history_s: float = Field(
        3 * DAY,
        gt=0,
        le=365 * DAY,
        description="Event time of normal feature rows an asset needs before its first model is trained.",
    )
    min_windows: int = Field(200, ge=70, description="... and at least this many normal windows (held-out ones included).")
    every_s: float = Field(
        7 * DAY, ge=60, le=365 * DAY, description="Retrain an armed asset this often (event time of new rows)."
    )
    check_every_s: float = Field(
        10.0, ge=1, le=3600, description="How often the daemon checks the commissioning rule (wall clock)."
    )
    margin_s: float = Field(
        3600.0,
        ge=0,
        le=30 * DAY,
        description="Rows this long before an alarm was raised are never learned from (a fault's lead-in).",
    )
    per: Literal["asset", "profile"] = Field("asset", description="A model per asset (its own normal) or one per profile.")
    keep: int = Field(5, ge=1, le=100, description="Model versions kept per asset for `edgegw models rollback`.")
    validate_share: float = Field(
        0.2, gt=0, lt=0.5, description="The latest share of normal rows held out to compare the candidate with the current model."
    )
    features: list[Literal["mean", "std", "min", "max", "rms", "ptp", "slope", "skew", "kurtosis", "crest", "last", "count"]] = (
        Field(
            default_factory=lambda: list(SHAPE_FEATURES),
            min_length=1,
            description="Per-signal features a learned model reads. Default: spread, rate and shape, not levels: "
            "a few days of history never show every load and season a level moves with.",
        )
    )
    false_alarm_rate: float = Field(0.001, gt=0, lt=0.5, description="Target share of normal windows above the threshold.")
    nice: int = Field(19, ge=0, le=19, description="Niceness of the training process.")
    memory_mb: int = Field(
        1024,
        ge=64,
        le=65536,
        description="Cap of the training process's private memory (RLIMIT_DATA, MiB; virtual, so above its "
        "resident peak, ~370 MB for 4 pumps and 7 days): a runaway guard. Under systemd, MemoryMax= of its unit.",
    )
    timeout_s: float = Field(1800.0, gt=0, le=86400, description="A training process running longer is stopped.")
    trend: TrendGuard = Field(default_factory=TrendGuard)


__all__ = ["DAY", "LEARN", "LearnConfig", "TrendGuard"]
