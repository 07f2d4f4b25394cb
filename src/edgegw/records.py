"""The words every part of edgegw shares: readings in, alerts and rollups out.

Readings travel as plain arguments (asset, signal, ts, value, quality) on the hot path; the
records here are rare and carry the evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from typing import Any

import numpy as np


class Quality(IntEnum):
    """How far a reading can be trusted. Sources map protocol status codes onto this."""

    GOOD = 0
    UNCERTAIN = 1
    BAD = 2


class Severity(StrEnum):
    """How urgent an alert is: hi/lo limits warn, hihi/lolo and model failure risk are critical."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertState(StrEnum):
    RAISED = "raised"
    CLEARED = "cleared"


def iso(ts: float) -> str:
    """Epoch seconds as ISO 8601 UTC with milliseconds, the one time format on the wire."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(slots=True)
class Alert:
    """An alarm transition: one message per raise, escalation or clear, never one per sample.

    `source` names what the alarm is about within the asset: the signal for threshold, stale and
    quality alarms, the model name for anomaly and failure_risk. (asset, kind, source) is the alarm;
    `id` is unique per message so consumers can de-duplicate, `seq` is monotonic per gateway.
    """

    asset: str
    kind: str
    source: str
    state: AlertState
    severity: Severity
    ts: float
    evidence: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    id: str = ""
    seq: int = 0
    gateway: str = ""
    site: str = ""
    raised_at: float | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.asset, self.kind, self.source)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "seq": self.seq,
            "ts": iso(self.ts),
            "gateway": self.gateway,
            "site": self.site,
            "asset": self.asset,
            "kind": self.kind,
            "source": self.source,
            "state": str(self.state),
            "severity": str(self.severity),
            "message": self.message,
        }
        if self.raised_at is not None:
            d["raised_at"] = iso(self.raised_at)
        d.update(self.evidence)
        return d


@dataclass(slots=True)
class SignalStats:
    """Aggregates of one signal over one rollup interval."""

    count: int = 0
    total: float = 0.0
    total_sq: float = 0.0
    min: float = float("inf")
    max: float = float("-inf")
    first_ts: float = 0.0
    last_ts: float = 0.0
    last: float = float("nan")

    def add(self, ts: float, value: float) -> None:
        if self.count == 0:
            self.first_ts = ts
        self.count += 1
        self.total += value
        self.total_sq += value * value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value
        self.last_ts = ts
        self.last = value

    def to_dict(self) -> dict[str, Any]:
        if self.count == 0:
            return {"count": 0}
        mean = self.total / self.count
        var = max(self.total_sq / self.count - mean * mean, 0.0)
        return {
            "count": self.count,
            "mean": mean,
            "min": self.min,
            "max": self.max,
            "std": var**0.5,
            "first_ts": iso(self.first_ts),
            "last_ts": iso(self.last_ts),
            "last": self.last,
        }


@dataclass(slots=True)
class Rollup:
    """Per-asset aggregates over one wall-clock-aligned interval [start, end)."""

    asset: str
    start: float
    end: float
    signals: dict[str, SignalStats]
    anomaly_max: float | None = None
    anomaly_mean: float | None = None
    alarms_raised: int = 0
    pump: dict[str, Any] | None = None  # derived pump figures and totals (engine/pump.py), with a pump description
    forecast: list[dict[str, Any]] | None = None  # signals heading for a limit (engine/forecast.py), with `forecast:`
    id: str = ""
    seq: int = 0
    gateway: str = ""
    site: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "seq": self.seq,
            "gateway": self.gateway,
            "site": self.site,
            "asset": self.asset,
            "start": iso(self.start),
            "end": iso(self.end),
            "signals": {name: s.to_dict() for name, s in self.signals.items()},
            "anomaly_max": self.anomaly_max,
            "anomaly_mean": self.anomaly_mean,
            "alarms_raised": self.alarms_raised,
            **({"pump": self.pump} if self.pump is not None else {}),
            **({"forecast": self.forecast} if self.forecast is not None else {}),
        }


@dataclass(slots=True)
class HopResult:
    """One profile's hop, for the rooms that keep or show it (history, the page, learning): arrays
    by due asset (row i is `assets[i]`), no object per asset. Handed to every sink's `hop()`.

    Finished hop buckets, flat over the hop (a usual hop has one per asset; a replay or an uploaded
    backlog may carry many): bucket j belongs to asset `bucket_asset[j]` (a row of `assets`),
    starts at `bucket_starts[j]` (event time) and holds `buckets[f, j, s]` for f in BUCKET_FIELDS
    (count, mean, min, max, last; NaN where the signal had no value) and `bucket_bad[j, s]` (values
    rejected as bad quality or out of range since the asset's previous bucket). Each bucket is
    emitted once, in time order per asset; buckets with neither values nor bad ones are left out.
    Scores are NaN where not judged."""

    profile: str
    assets: list[str]
    ends: np.ndarray  # window end (event time) per asset
    hop_s: float
    signals: list[str]  # the profile's signal names: the columns of bucket aggregates
    features: np.ndarray  # (n_assets, n_features): the rows the models got (NaN rows where not warm)
    feature_names: list[str]
    anomaly: np.ndarray | None = None  # score per asset, NaN where not judged
    threshold: np.ndarray | None = None  # the anomaly threshold the score was judged against
    risk: np.ndarray | None = None  # failure risk per asset, NaN where not judged
    cause: list[str] | None = None  # the failure model's named cause per asset ("" where none)
    judged: np.ndarray | None = None  # bool per asset: the models scored this row
    model_version: str = ""
    last: np.ndarray | None = None  # (n_assets, n_signals): each signal's newest value, NaN if none yet
    bucket_asset: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.intp))  # (n_buckets,) row of assets
    bucket_starts: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (n_buckets,) start time (event time)
    buckets: np.ndarray = field(default_factory=lambda: np.zeros((5, 0, 0)))  # (5, n_buckets, n_signals)
    bucket_bad: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # (n_buckets, n_signals)
    # every reading accepted since the profile's last hop, when the engine keeps them (Engine.keep_raw):
    # (n, 3) rows of ts, value, store row (= index in raw_assets * n_signals + signal index)
    raw: np.ndarray | None = None
    raw_assets: list[str] = field(default_factory=list)  # all of the profile's assets, by index


BUCKET_FIELDS = ("count", "mean", "min", "max", "last")  # HopResult.buckets[f]


@dataclass(slots=True)
class AlarmEvent:
    """Something that happened to an alarm besides its raise and clear: an ack, a shelve or
    unshelve, a clear by command, an orphan cleared, a suppression. History journals these next to
    the transitions; `by` names who did it (a user, `mqtt:<client>`, `gateway`)."""

    ts: float
    event: str  # acked shelved unshelved shelf_expired cleared orphan_cleared suppressed ...
    key: tuple[str, str, str]  # (asset, kind, source)
    by: str = ""
    note: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
