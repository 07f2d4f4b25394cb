"""The `history:` section: what the gateway keeps on its own disk, for how long, within what size.

On by default wherever the gateway has a state directory (`<state_dir>/history.db`);
`history: {enabled: false}` turns it off. Tiers are built from the finer ones as time passes;
each keeps its rows for `*_days`; `max_mb` bounds the database and its WAL together.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from edgegw.config.base import Base

FILE_NAME = "history.db"


class HistoryConfig(Base):
    enabled: bool = Field(True, description="Keep history (needs a state directory or `path`).")
    path: str | None = Field(None, description="The SQLite file; default <state_dir>/history.db.")
    fine_s: float = Field(10.0, ge=1.0, le=60.0, description="The fine tier's bucket, seconds (a divisor of 60).")
    fine_days: float = Field(7.0, gt=0, description="Days the fine tier keeps its rows.")
    minute_days: float = Field(90.0, gt=0, description="Days the minute tier keeps its rows.")
    hour_days: float = Field(730.0, gt=0, description="Days the hour tier keeps its rows.")
    features_days: float = Field(2.0, gt=0, description="Days the sampled feature rows are kept (~2.7 MB per asset-day).")
    journal_days: float = Field(365.0, gt=0, description="Days alarm transitions, acks and shelves are kept.")
    features_every_hops: int = Field(
        10, ge=0, description="Keep one feature row per asset every this many hops (0: none), for learning."
    )
    max_mb: float = Field(
        2048.0, ge=1.0, description="Size cap of the file and its WAL; beyond it the oldest finest data goes first."
    )
    flush_s: float = Field(5.0, ge=0.2, le=300.0, description="One transaction per this period: a crash loses at most this.")
    raw: bool = Field(False, description="Also keep every accepted reading (big: own retention and cap).")
    raw_days: float = Field(1.0, gt=0, description="Days raw readings are kept.")
    raw_max_mb: float = Field(256.0, ge=0.1, description="Size raw readings may take within max_mb.")

    @model_validator(mode="after")
    def _fine(self) -> HistoryConfig:
        if abs(60.0 / self.fine_s - round(60.0 / self.fine_s)) > 1e-9:
            raise ValueError(f"fine_s: {self.fine_s:g} does not divide a minute (use 1, 2, 5, 10, 15, 20, 30 or 60)")
        return self

    def file(self, state_dir: Path | None) -> Path | None:
        """Where the history lives: `path`, else <state_dir>/history.db, else None (history off)."""
        if not self.enabled:
            return None
        if self.path:
            return Path(self.path)
        return state_dir / FILE_NAME if state_dir is not None else None
