"""Historian files as the engine sees them: rows of (time, asset, signal values), sorted by time.

Reads CSV in wide form (a timestamp column + one column per signal, optionally `asset` and a
label column) or long form (timestamp, asset, signal, value), and Parquet when pyarrow is
installed. Only the standard library and numpy: `edgegw backtest` runs this on the gateway.
Irregular sampling and gaps are kept as they are; an empty or unparsable cell is a missing value.
"""

from __future__ import annotations

import csv
import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

TIME_NAMES = ("timestamp", "time", "ts", "datetime", "date", "_time")
NORMAL_LABELS = frozenset({"", "0", "0.0", "normal", "ok", "false"})


class DataError(Exception):
    """A history file that cannot be used, with a message naming the file and the problem."""


@dataclass
class History:
    """Rows sorted by time (stable). values[i, j] is signal j of row i, NaN when not sampled."""

    signals: list[str]
    assets: list[str]
    ts: np.ndarray
    asset: np.ndarray
    values: np.ndarray
    ts_text: list[str]
    labels: list[str] | None = None
    fingerprint: str = ""
    files: list[str] = field(default_factory=list)
    bad_cells: int = 0

    def __len__(self) -> int:
        return len(self.ts)

    @property
    def fault(self) -> np.ndarray:
        """Boolean per row: labelled as a fault (False everywhere without labels)."""
        if self.labels is None:
            return np.zeros(len(self.ts), dtype=bool)
        return np.array([lab not in NORMAL_LABELS for lab in self.labels], dtype=bool)

    def only(self, asset: str) -> History:
        """The rows of one asset."""
        k = self.assets.index(asset)
        m = self.asset == k
        idx = np.flatnonzero(m)
        return History(
            signals=self.signals,
            assets=[asset],
            ts=self.ts[m],
            asset=np.zeros(len(idx), dtype=np.int64),
            values=self.values[m],
            ts_text=[self.ts_text[i] for i in idx],
            labels=[self.labels[i] for i in idx] if self.labels is not None else None,
            fingerprint=self.fingerprint,
            files=self.files,
            bad_cells=self.bad_cells,
        )

    def rate_hz(self) -> float:
        """Typical sample rate per asset (median spacing), for sizing the engine's buffers."""
        best = 0.0
        for k in range(len(self.assets)):
            t = self.ts[self.asset == k]
            if len(t) > 1:
                d = np.diff(t)
                d = d[d > 0]
                if len(d):
                    best = max(best, 1.0 / float(np.median(d)))
        return best or 1.0


def normal_label(label: str) -> str:
    """Labels that mean 'no fault' are all spelled "0"."""
    lab = label.strip()
    return "0" if lab.lower() in NORMAL_LABELS else lab


class _TimeParser:
    """Parses one file's timestamps; picks the format from the first value and sticks to it."""

    def __init__(self, fmt: str | None, unit: str) -> None:
        self.fmt = fmt
        self.scale = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}[unit]
        self.mode: str | None = "strptime" if fmt else None

    def __call__(self, text: str) -> float:
        if self.mode is None:
            try:
                float(text)
                self.mode = "number"
            except ValueError:
                self.mode = "iso"
        if self.mode == "number":
            return float(text) * self.scale
        if self.mode == "strptime":
            d = datetime.strptime(text, self.fmt or "")
        else:
            d = datetime.fromisoformat(text.strip().replace("Z", "+00:00") if text.endswith("Z") else text.strip())
        if d.tzinfo is None:
            d = d.replace(tzinfo=UTC)
        return d.timestamp()


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _fingerprint(paths: Sequence[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _table(path: Path, delimiter: str | None) -> tuple[list[str], Iterable[Sequence[Any]]]:
    """Header and rows of one file (CSV via the csv module; Parquet via pyarrow when installed)."""
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise DataError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow)") from None
        cols = pq.read_table(path).to_pydict()
        header = list(cols)
        return header, zip(*(cols[c] for c in header), strict=True)
    f = open(path, newline="")  # noqa: SIM115 - closed when the reader is exhausted
    if delimiter is None:
        sample = f.read(8192)
        f.seek(0)
        try:
            delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    reader = csv.reader(f, delimiter=delimiter)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        f.close()
        raise DataError(f"{path}: empty file") from None

    def rows() -> Iterable[list[str]]:
        with f:
            yield from reader

    return header, rows()


def _cell_text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, datetime):
        return v.isoformat()
    return str(v)


@dataclass
class _Layout:
    """Where one file keeps what: column indexes of timestamp, label, asset (and, in long form,
    signal name and value), and the asset of rows without an asset column."""

    path: Path
    header: list[str]
    ts: int
    label: int | None
    asset: int | None
    long_form: bool
    file_asset: str

    def asset_of(self, r: Sequence[Any]) -> str:
        return _cell_text(r[self.asset]).strip() if self.asset is not None else self.file_asset

    def label_of(self, r: Sequence[Any]) -> str:
        return normal_label(_cell_text(r[self.label])) if self.label is not None else "0"


def _layout(path: Path, header: list[str], timestamp_column: str | None, label_column: str | None, asset: str | None) -> _Layout:
    """Find the timestamp, label and asset columns of one file, and whether it is in long form."""
    lower = [h.lower() for h in header]
    if timestamp_column:
        if timestamp_column not in header:
            raise DataError(f"{path}: no timestamp column {timestamp_column!r} (columns: {header})")
        ti = header.index(timestamp_column)
    else:
        ti = next((lower.index(n) for n in TIME_NAMES if n in lower), 0)
    lab_name = label_column or ("label" if "label" in lower else None)
    li = None
    if lab_name is not None:
        if lab_name in header:
            li = header.index(lab_name)
        elif lab_name.lower() in lower:
            li = lower.index(lab_name.lower())
        elif label_column:
            raise DataError(f"{path}: no label column {label_column!r} (columns: {header})")
    return _Layout(
        path=path,
        header=header,
        ts=ti,
        label=li,
        asset=lower.index("asset") if "asset" in lower else None,
        long_form="signal" in lower and "value" in lower,
        file_asset=asset or path.stem,
    )


class _Rows:
    """The rows of all files as they are read: signal and asset names get indexes in order of
    first appearance; cells that are present but unreadable are counted."""

    def __init__(self, signals: list[str] | None) -> None:
        self.signals: list[str] = list(signals) if signals else []
        self.assets: dict[str, int] = {}
        self.ts: list[float] = []
        self.asset: list[int] = []
        self.values: list[dict[int, float]] = []
        self.text: list[str] = []
        self.labels: list[str] = []
        self.labelled = False
        self.bad = 0

    def signal_index(self, name: str) -> int:
        if name not in self.signals:
            self.signals.append(name)
        return self.signals.index(name)

    def add(self, t: float, asset: str, values: dict[int, float], text: str, label: str) -> int:
        if asset not in self.assets:
            self.assets[asset] = len(self.assets)
        self.ts.append(t)
        self.asset.append(self.assets[asset])
        self.values.append(values)
        self.text.append(text)
        self.labels.append(label)
        return len(self.ts) - 1

    def history(self, files: list[Path]) -> History:
        """Everything read, sorted by time (stable)."""
        if not self.ts:
            raise DataError(f"{', '.join(map(str, files))}: no rows with a readable timestamp")
        ts = np.asarray(self.ts, dtype=np.float64)
        order = np.argsort(ts, kind="stable")
        values = np.full((len(ts), len(self.signals)), np.nan)
        for i, vals in enumerate(self.values):
            for j, v in vals.items():
                values[i, j] = v
        return History(
            signals=self.signals,
            assets=list(self.assets),
            ts=ts[order],
            asset=np.asarray(self.asset, dtype=np.int64)[order],
            values=values[order],
            ts_text=[self.text[i] for i in order],
            labels=[self.labels[i] for i in order] if self.labelled else None,
            fingerprint=_fingerprint(files),
            files=[str(p) for p in files],
            bad_cells=self.bad,
        )


def _read_long(out: _Rows, lay: _Layout, rows: Iterable[Sequence[Any]], parse_ts: _TimeParser, want: list[str] | None) -> None:
    """Long form (timestamp, asset, signal, value): the values of one (time, asset) make one row."""
    lower = [h.lower() for h in lay.header]
    ti, si, vi, li = lay.ts, lower.index("signal"), lower.index("value"), lay.label
    pending: dict[tuple[str, str], int] = {}
    for r in rows:
        if len(r) <= max(ti, si, vi):
            out.bad += 1
            continue
        text = _cell_text(r[ti])
        sname = _cell_text(r[si]).strip()
        if want is not None and sname not in want:
            continue
        aname = lay.asset_of(r)
        try:
            t = parse_ts(text)
        except ValueError:
            out.bad += 1
            continue
        v = r[vi] if isinstance(r[vi], int | float) else _float(_cell_text(r[vi]))
        key = (text, aname)
        k = pending.get(key)
        if k is None:
            if len(pending) > 10000:
                pending.clear()
            k = pending[key] = out.add(t, aname, {}, text, lay.label_of(r))
        elif li is not None and normal_label(_cell_text(r[li])) != "0":
            out.labels[k] = normal_label(_cell_text(r[li]))
        if math.isnan(v):
            out.bad += 1
        else:
            out.values[k][out.signal_index(sname)] = float(v)


def _signal_columns(out: _Rows, lay: _Layout, rows: list[Sequence[Any]], want: list[str] | None) -> dict[int, int]:
    """Wide form: column index -> signal index, for the signals asked for, else for every column
    whose cells are mostly numbers (junk cells happen)."""
    header, path = lay.header, lay.path
    cols: dict[int, int] = {}
    if want is not None:
        for s in want:
            if s not in header:
                raise DataError(f"{path}: no column for signal {s!r} (columns: {header})")
            cols[header.index(s)] = out.signal_index(s)
        return cols
    skip = {lay.ts, lay.label, lay.asset} - {None}
    probe = rows[:200]
    for c, name in enumerate(header):
        if c in skip:
            continue
        seen = [_cell_text(r[c]) for r in probe if c < len(r) and _cell_text(r[c]).strip()]
        if seen and sum(map(_is_number, seen)) >= 0.8 * len(seen):
            cols[c] = out.signal_index(name)
    if not cols:
        raise DataError(f"{path}: no numeric signal columns (columns: {header})")
    return cols


def _read_wide(out: _Rows, lay: _Layout, rows: list[Sequence[Any]], parse_ts: _TimeParser, cols: dict[int, int]) -> None:
    """Wide form: one row per line, a value per signal column; an empty cell is a missing value."""
    ti = lay.ts
    for r in rows:
        if len(r) <= ti:
            out.bad += 1
            continue
        text = _cell_text(r[ti])
        try:
            t = parse_ts(text)
        except ValueError:
            out.bad += 1
            continue
        vals: dict[int, float] = {}
        for c, j in cols.items():
            cell = r[c] if c < len(r) else ""
            v = float(cell) if isinstance(cell, int | float) else _float(_cell_text(cell))
            if math.isnan(v):
                if _cell_text(cell).strip():
                    out.bad += 1
            else:
                vals[j] = v
        out.add(t, lay.asset_of(r), vals, text, lay.label_of(r))


def read_history(
    paths: Sequence[str | Path],
    *,
    delimiter: str | None = None,
    timestamp_column: str | None = None,
    timestamp_format: str | None = None,
    timestamp_unit: str = "s",
    signals: Sequence[str] | None = None,
    label_column: str | None = None,
    asset: str | None = None,
) -> History:
    """Read and merge historian files. Wide files without an `asset` column belong to `asset`,
    else to an asset named after the file (so windows never span two machines' files).

    `label_column` None means "use a column named `label` if there is one".
    """
    files = [Path(p) for p in paths]
    if not files:
        raise DataError("no data files given")
    for p in files:
        if not p.is_file():
            raise DataError(f"{p}: no such file")
    want = list(signals) if signals else None
    out = _Rows(want)
    for path in files:
        header, rows = _table(path, delimiter)
        lay = _layout(path, header, timestamp_column, label_column, asset)
        parse_ts = _TimeParser(timestamp_format, timestamp_unit)
        if lay.long_form:
            _read_long(out, lay, rows, parse_ts, want)
        else:
            first = list(rows)
            _read_wide(out, lay, first, parse_ts, _signal_columns(out, lay, first, want))
        out.labelled = out.labelled or lay.label is not None
    return out.history(files)
