"""Labelled history as a wide CSV, the shape `edgegw train` and `edgegw backtest` read:

    timestamp,asset,vibration,pressure,temperature,flow,current,suction_pressure,motor_temperature,label
    2026-01-01T00:00:00.000Z,pump-1,2.41,4.68,55.3,62.5,31.0,1.29,55.9,normal

One row per pump per sample; a dropped-out signal is an empty cell; `label` is the fault mode
from the moment the fault shows in the signals (`edgegw.sim.faults.ONSET`), else `normal`.
With `truth`, columns `true_head_m`, `true_hydraulic_kw` ... follow the label: what the gateway's
pump figures (engine/pump.py) should read, from the physics.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from edgegw.records import iso
from edgegw.sim.fleet import REPORTED, Fleet, Sample
from edgegw.sim.physics import TRUTH

HEADER = ("timestamp", "asset", *REPORTED, "label")


class HistoryWriter:
    """Writes samples as CSV rows; `start_ts` is the epoch time of simulation second 0."""

    def __init__(self, out: TextIO, start_ts: float, signals: Sequence[str] = REPORTED, truth: bool = False) -> None:
        self.signals = tuple(signals)
        self.start_ts = start_ts
        self.truth = TRUTH if truth else ()
        self._w = csv.writer(out, lineterminator="\n")
        self._w.writerow(("timestamp", "asset", *self.signals, "label", *(f"true_{k}" for k in self.truth)))
        self.rows = 0

    def write(self, samples: Sequence[Sample]) -> None:
        for s in samples:
            cells = [_cell(s.values.get(k)) for k in self.signals]
            extra = [_cell(round(float(v), 5) if (v := s.truth.get(k)) is not None and v == v else None) for k in self.truth]
            self._w.writerow((iso(self.start_ts + s.t), s.asset, *cells, s.label, *extra))
        self.rows += len(samples)


def _cell(v: float | None) -> str:
    return "" if v is None else repr(v)


def write_history(path: str | Path, fleet: Fleet, duration_s: float, start_ts: float, truth: bool = False) -> int:
    """Run the fleet for duration_s (as fast as it computes) into a CSV file; return the row count."""
    steps = round(duration_s * fleet.rate_hz)
    with open(path, "w", newline="") as f:
        w = HistoryWriter(f, start_ts, truth=truth)
        for _ in range(steps):
            w.write(fleet.step())
    return w.rows
