"""THE feature implementation: the daemon serves with it and `edgegw train` trains with it.

Features are computed for many windows at once: each (asset, signal) window is one row of
a NaN-padded, right-aligned matrix, and every statistic is one vectorised numpy reduction
over all rows. A hop for 50 assets x 5 signals is a handful of array operations.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

FEATURES: tuple[str, ...] = (
    "mean", "std", "min", "max", "rms", "ptp", "slope", "skew", "kurtosis", "crest", "last", "count",
)
N_FEATURES = len(FEATURES)
_EPS = 1e-12


def feature_names(signals: Sequence[str]) -> list[str]:
    """Column names, signal-major: vibration.mean, vibration.std, ..., pressure.mean, ..."""
    return [f"{s}.{f}" for s in signals for f in FEATURES]


def row_features(ts: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Features of each row of NaN-padded (R, L) matrices `ts` and `x`: an (R, N_FEATURES) array.

    Rows with no samples give NaN for every feature but count (0). `slope` is per second.
    Leading columns no row uses are skipped (a 1 Hz window in a buffer sized for 10 Hz is mostly
    padding); sums of products are einsum reductions, and times are taken relative to each row's
    newest sample, so every statistic is one pass and stays exact for epoch timestamps.
    """
    nan = np.isnan(x)
    unused = nan.all(axis=0)
    first = min(int(unused.argmin()) if not unused.all() else x.shape[1], x.shape[1] - 1)
    if first > 0:
        ts, x, nan = ts[:, first:], x[:, first:], nan[:, first:]
    n = x.shape[1] - nan.sum(axis=1)
    nz = np.maximum(n, 1)
    x0 = np.where(nan, 0.0, x)
    mean = x0.sum(axis=1) / nz
    d = np.where(nan, 0.0, x0 - mean[:, None])
    d2 = d * d
    var = d2.sum(axis=1) / nz
    std = np.sqrt(var)
    flat = var <= _EPS * np.maximum(1.0, mean * mean)
    safe_var = np.where(flat, 1.0, var)
    skew = np.where(flat, 0.0, np.einsum("ij,ij->i", d2, d) / nz / safe_var**1.5)
    kurt = np.where(flat, 0.0, np.einsum("ij,ij->i", d2, d2) / nz / (safe_var * safe_var) - 3.0)
    mn = np.fmin.reduce(x, axis=1)  # fmin/fmax skip NaN
    mx = np.fmax.reduce(x, axis=1)
    rms = np.sqrt(var + mean * mean)  # mean of squares, without another pass
    peak = np.maximum(np.abs(mn), np.abs(mx))
    crest = np.where(rms > _EPS, peak / np.where(rms > _EPS, rms, 1.0), 0.0)
    # slope = sum((t - tm) d) / sum((t - tm)^2), with t relative to the row's newest time (the last
    # column when right-aligned); as sum(d) == 0, sum((t - tm) d) == sum(t d)
    t_ref = ts[:, -1].copy()
    lost = np.isnan(t_ref) & (n > 0)
    if lost.any():  # not right-aligned
        t_ref[lost] = np.fmax.reduce(ts[lost], axis=1)
    t0 = np.where(nan, 0.0, ts - np.where(np.isnan(t_ref), 0.0, t_ref)[:, None])
    tm = t0.sum(axis=1) / nz
    sxx = np.einsum("ij,ij->i", t0, t0) - nz * tm * tm
    slope = np.where(sxx > _EPS, np.einsum("ij,ij->i", t0, d) / np.where(sxx > _EPS, sxx, 1.0), 0.0)
    last = x[:, -1]
    out = np.stack(
        [mean, std, mn, mx, rms, mx - mn, slope, skew, kurt, crest, last, n.astype(np.float64)], axis=1
    )
    out[n == 0, :-1] = np.nan
    return out


class WindowMatrix:
    """A reusable NaN-padded matrix that windows are copied into, right-aligned, one per row.

    Each row remembers where its data starts, so a put only re-pads what the previous window
    of that row filled and this one does not: usually two slice copies per window.
    """

    def __init__(self, rows: int, length: int) -> None:
        self.ts = np.full((rows, length), np.nan)
        self.x = np.full((rows, length), np.nan)
        self._start = [length] * rows

    def ensure(self, rows: int, length: int) -> None:
        if self.x.shape[0] < rows or self.x.shape[1] != length:
            self.ts = np.full((max(rows, self.x.shape[0]), length), np.nan)
            self.x = np.full_like(self.ts, np.nan)
            self._start = [length] * self.x.shape[0]

    def put(self, row: int, ts: np.ndarray, vals: np.ndarray) -> None:
        length = self.x.shape[1]
        k = min(len(vals), length)
        start = length - k
        old = self._start[row]
        if old < start:
            self.ts[row, old:start] = np.nan
            self.x[row, old:start] = np.nan
        self._start[row] = start
        if k:
            self.ts[row, start:] = ts[-k:]
            self.x[row, start:] = vals[-k:]


def window_features(windows: Sequence[Sequence[tuple[np.ndarray, np.ndarray]]], length: int) -> np.ndarray:
    """Feature vectors for several assets: windows[asset][signal] = (ts, values).

    Returns (n_assets, n_signals * N_FEATURES) in `feature_names(signals)` order. `length` caps
    the samples per window (the newest are kept).
    """
    n_assets = len(windows)
    n_signals = len(windows[0]) if n_assets else 0
    m = WindowMatrix(n_assets * n_signals, length)
    for a, sigs in enumerate(windows):
        for s, (ts, vals) in enumerate(sigs):
            m.put(a * n_signals + s, ts, vals)
    feats = row_features(m.ts, m.x)
    return feats.reshape(n_assets, n_signals * N_FEATURES)
