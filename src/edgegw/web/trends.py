"""The page's and the report's reads of history, through `history.query` only, as JSON-ready dicts.

Called in a worker thread (each call opens the file read-only and closes it again), so a long
range never stalls the loop. NaN becomes None (null in JSON): uPlot draws a gap there.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from edgegw.history import query as hq
from edgegw.records import iso

JOURNAL_LIMIT = 2000


def _col(a: np.ndarray) -> list[float | None]:
    return [None if not math.isfinite(v) else round(v, 5) for v in a.tolist()]


def tier_for(span_s: float, fine_s: float, points: int) -> str:
    """The finest tier that shows `span_s` in at most `points` buckets. Chosen here by span alone:
    history.query's "auto" also asks which tier reaches back to the start, and on a history younger
    than the range that picks the hour tier (one point) where the fine one holds everything."""
    if span_s / fine_s <= points:
        return "fine"
    return "minute" if span_s / 60.0 <= points else "hour"


class HistoryReader:
    """One history file, read by the page (trends, the alarm journal) and by reports."""

    def __init__(self, path: Path, fine_s: float = 10.0) -> None:
        self.path = path
        self.fine_s = fine_s

    def size_mb(self) -> float | None:
        try:
            return sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*")) / 2**20
        except OSError:
            return None

    def trend(self, asset: str, start: float, end: float, points: int) -> dict[str, Any]:
        """Every signal's mean, min and max per bucket of the tier that fits `points`, the model
        outputs, and the alarm spans that overlap [start, end)."""
        try:
            t = hq.query(self.path, asset, since=start, until=end, points=points, tier=tier_for(end - start, self.fine_s, points))
        except (hq.HistoryUnavailable, KeyError):
            return {"t": [], "signals": {}, "spans": [], "tier": None}
        return {
            "t": t.time.tolist(),
            "tier": t.tier,
            "bucket_s": t.bucket_s,
            "signals": {s: {c: _col(cols[c]) for c in ("mean", "min", "max")} for s, cols in t.signals.items()},
            "anomaly": _col(t.anomaly),
            "threshold": _col(t.threshold),
            "risk": _col(t.risk),
            "spans": [
                {"kind": a.kind, "source": a.source, "severity": a.severity, "start": a.start, "end": a.end, "message": a.message}
                for a in t.alarms
            ],
        }

    def journal(self, start: float, end: float, asset: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
        """Journal entries newest first (at most JOURNAL_LIMIT), with the alarm's message."""
        try:
            rows = hq.journal(self.path, start, end, asset)
        except hq.HistoryUnavailable:
            return []
        out = []
        for r in reversed(rows):
            if kind and r["kind"] != kind:
                continue
            try:
                detail = orjson.loads(r["detail"]) if r["detail"] else {}
            except orjson.JSONDecodeError:
                detail = {}
            msg = detail.get("message", "") if isinstance(detail, dict) else ""
            out.append(
                {
                    **{k: r[k] for k in ("event", "asset", "kind", "source", "severity", "by", "note")},
                    "ts": iso(r["ts"]),
                    "t": r["ts"],
                    "message": msg,
                }
            )
            if len(out) >= JOURNAL_LIMIT:
                break
        return out
