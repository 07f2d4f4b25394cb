"""`forecast:` in a profile: when each signal with a limit will reach it (engine/forecast.py)."""

from __future__ import annotations

from pydantic import Field, model_validator

from edgegw.config.base import Base


class ForecastSpec(Base):
    """Time to a limit from a robust trend of the signal's means; off unless the profile has it."""

    horizon_h: float = Field(168.0, gt=0, le=24 * 365, description="An alarm of kind forecast when a limit is this near (h).")
    resolution_s: float = Field(60.0, ge=1, le=86400, description="One trend point per this long (the mean of its rollups).")
    points: int = Field(30, ge=5, le=60, description="The trend's last points (30 at 60 s: the last half hour).")
    min_points: int = Field(12, ge=4, description="No forecast before this many points.")
    confidence: float = Field(0.99, description="The slope's interval (0.9, 0.95, 0.99 or 0.999); a trend must exclude 0.")
    every_s: float = Field(60.0, ge=60, description="At most one evaluation per this long (at rollup time).")
    signals: list[str] | None = Field(None, description="Signals to forecast (default: each with a hi/hihi/lo/lolo limit).")

    @model_validator(mode="after")
    def _points(self) -> ForecastSpec:
        if self.confidence not in (0.9, 0.95, 0.99, 0.999):
            raise ValueError("confidence: one of 0.9, 0.95, 0.99, 0.999")
        if self.min_points > self.points:
            raise ValueError("min_points: must be <= points")
        return self
