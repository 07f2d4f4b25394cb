"""THE feature implementation: the daemon serves with it and `edgegw train` trains with it
(training replays history through the real Engine, so both see the same numbers).

The engine never keeps raw samples: each signal streams per-hop-bucket moments into a store
and running totals (`engine/window.py`), and `window_features` combines each window's parts
(or, for a signal out of step, its B buckets) for all due rows at once with the exact
parallel-moment formulas. `row_features` computes the same features from
raw samples (a NaN-padded matrix, one window per row); it is the reference the streaming
version is tested against, and what benchmarks and offline tools may use on raw arrays.

Definitions (both implementations): mean; population std; min; max; rms = sqrt(mean of
squares); ptp = max - min; slope = least-squares slope per second; skew = m3 / var^1.5;
kurtosis = m4 / var^2 - 3 (0 for both when the window is flat: var <= 1e-12 * max(1, mean^2));
crest = max(max - mean, mean - min) / std, the peak deviation from the window's mean over its
spread (0 for a flat window): unlike a peak over the rms about zero it does not swing with the
signal's offset, so it stays steady for signals that sit near or cross zero; last = newest
value; count. A window with no samples gives NaN for every feature but count (0).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgegw.engine import window as w

FEATURES: tuple[str, ...] = (
    "mean",
    "std",
    "min",
    "max",
    "rms",
    "ptp",
    "slope",
    "skew",
    "kurtosis",
    "crest",
    "last",
    "count",
)
N_FEATURES = len(FEATURES)
_EPS = 1e-12


def feature_names(signals: Sequence[str]) -> list[str]:
    """Column names, signal-major: vibration.mean, vibration.std, ..., pressure.mean, ..."""
    return [f"{s}.{f}" for s in signals for f in FEATURES]


def row_features(ts: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Features of each row of NaN-padded (R, L) matrices `ts` and `x`: an (R, N_FEATURES) array.

    Rows with no samples give NaN for every feature but count (0). `slope` is per second.
    Leading columns no row uses are skipped (a 1 Hz window in a matrix padded for 10 Hz is mostly
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
    crest = np.where(flat, 0.0, np.maximum(mx - mean, mean - mn) / np.sqrt(safe_var))
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
    out = np.stack([mean, std, mn, mx, rms, mx - mn, slope, skew, kurt, crest, last, n.astype(np.float64)], axis=1)
    out[n == 0, :-1] = np.nan
    return out


def window_features(win: w.Windows, rows: np.ndarray, k_end: np.ndarray) -> np.ndarray:
    """Features of store rows `rows` over the windows ending before bucket k_end (per row): an
    (R, N_FEATURES) array. Open buckets inside a window must have been stored (`flush()`).

    A row whose signal's open bucket is at most the hop's and in the segment of the window's
    newest bucket combines three parts: the tail table of the segment before, from the window's
    first slot (built for the row once per segment, when it is needed: the row's buckets in that
    segment are final by then), its segment head, and its open bucket if inside the window
    (window.py). A row with nothing in its window (silent for longer) is empty. Other rows (a
    signal ahead of its asset's hop, or still in the previous segment) take the exact masked sum
    of their B slots, and so do all rows of a small hop (window.PARTS_MIN).
    """
    nb = win.n_buckets
    if not win.uses_parts(len(rows)):  # a few rows: the exact sum is cheaper
        return bucket_features(win.acc[:, :, rows], k_end, win.hop_s)
    kc = win.kcur[rows]
    seg = np.floor((k_end - 1) / nb)  # the segment of the window's newest bucket
    j = k_end - seg * nb  # the window: segment seg - 1 from slot j (none when j == B), segment seg up to k_end
    fast = (kc >= seg * nb) & (kc <= k_end)
    tailed = fast & (j < nb)
    if tailed.any():
        want = int(seg[tailed].max()) - 1
        tailed &= seg - 1 == want
        win.ensure_tail(want, rows[tailed])
        fast &= tailed | (j == nb)
    if fast.all():  # the usual hop
        return _parts_features(win, rows, kc, seg, j)
    empty = kc < k_end - nb
    out = np.empty((len(rows), N_FEATURES))
    out[empty] = np.nan
    out[empty, -1] = 0.0
    f = np.flatnonzero(fast)
    if len(f):
        out[f] = _parts_features(win, rows[f], kc[f], seg[f], j[f])
    exact = np.flatnonzero(~fast & ~empty)
    if len(exact):
        win.exact_rows += len(exact)
        out[exact] = bucket_features(win.acc[:, :, rows[exact]], k_end[exact], win.hop_s)
    return out


def _parts_features(win: w.Windows, rows: np.ndarray, kc: np.ndarray, seg: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Features from the three parts of each row's window (see window_features)."""
    nb = win.n_buckets
    parts = np.empty((len(w.FIELDS), 3, len(rows)))
    parts[:, 0] = win.tail[:, j.astype(np.intp) % nb, rows]
    parts[:, 1] = win.head[:, rows]
    parts[:, 2] = win.acc[:, kc.astype(np.intp) % nb, rows]
    # no tail when the window is one whole segment; a head of an older segment; no open bucket
    gone = np.array([j == nb, parts[w.K, 1] != seg * nb, parts[w.K, 2] != kc])  # (3, R)
    if gone.any():
        parts[:, gone] = w.EMPTY[:, None]
    n = parts[w.N]
    newest = np.where(n[2] > 0, 2, np.where(n[1] > 0, 1, 0))
    return bucket_features(parts, None, win.hop_s, last=parts[w.LAST, newest, np.arange(len(rows))])


def bucket_features(block: np.ndarray, k_end: np.ndarray | None, hop_s: float, last: np.ndarray | None = None) -> np.ndarray:
    """Features of each row's window from bucket records: an (R, N_FEATURES) array.

    `block` is (len(window.FIELDS), B, R): a gather of the store (row r's window is the buckets
    k_end[r] - B <= k < k_end[r]; slots holding other buckets are left out), or, with k_end None,
    the parts of window_features: each a record in the same fields (sums about its own c and its
    own start K * hop_s) or window.EMPTY. `last` is the newest value of each window, when it is not
    in the slot of the newest bucket.

    Buckets combine exactly. Values: with mu the window mean and delta = c - mu per bucket,
    M2 = sum(S2 + 2 delta S1 + n delta^2), M3 = sum(S3 + 3 delta S2 + 3 delta^2 S1 + n delta^3),
    M4 likewise. Time: u = tau + f with f = b - b_newest - (about the mean of t - b_newest), so
    times are centred too (b - b_newest is exact, as both are k * hop_s), sum u = sum(St + n f),
    sum u^2 = sum(Stt + 2 f St + n f^2), sum u (x - mu) = sum(Std + delta St + f S1 + n f delta).
    """
    n_b, rows = block.shape[1], block.shape[2]
    if k_end is not None:
        ke = k_end[None, :]
        kf = block[w.K]
        valid = (kf >= ke - n_b) & (kf < ke)
        block = np.where(valid, block, w.EMPTY[:, None, None])
    sums = block[: w.N_SUMS]
    n, c, kf = block[w.N], block[w.C], block[w.K]
    ones = _ones(n_b)
    tot = ones @ sums  # (N_SUMS, R): plain sums over the window's buckets
    count = tot[w.N]
    nz = np.maximum(count, 1.0)
    mean = (np.einsum("br,br->r", n, c) + tot[w.S1]) / nz
    delta = c - mean
    k_new = kf.max(axis=0)  # the newest bucket of each window
    f = kf * hop_s  # b as ingest computed it (k * hop_s) ...
    f -= k_new * hop_s  # ... minus the newest bucket's b: exact (Sterbenz) ...
    f -= (np.einsum("br,br->r", n, f) + tot[w.ST]) / nz  # ... minus the mean time relative to it
    p = _scratch(n_b, rows)
    np.multiply(sums[w.S3 : w.ST + 1], delta, out=p[0:5])  # d S3, d S2, n d, d S1, d St
    np.multiply(sums[w.N : w.ST + 1], f, out=p[5:8])  # n f, f S1, f St
    np.multiply(p[1:4], delta, out=p[8:11])  # d^2 S2, n d^2, d^2 S1
    np.multiply(p[9:11], delta, out=p[11:13])  # n d^3, d^3 S1
    np.multiply(p[11], delta, out=p[13])  # n d^4
    np.multiply(p[5], f, out=p[14])  # n f^2
    np.multiply(p[5], delta, out=p[15])  # n f d
    # per sample: M2/N, M3/N, M4/N, mean u (~0: u is centred), mean u^2, mean u (x - mean)
    m2, m3, m4, mu, muu, mux = (_COMBINE @ np.concatenate([tot, ones @ p])) / nz
    var = np.maximum(m2, 0.0)
    mean2 = mean * mean
    flat = var <= _EPS * np.maximum(1.0, mean2)
    safe_var = np.where(flat, 1.0, var)
    skew = m3 / (safe_var * np.sqrt(safe_var))
    kurt = m4 / (safe_var * safe_var) - 3.0
    skew[flat] = 0.0
    kurt[flat] = 0.0
    mn = np.fmin.reduce(block[w.MIN], axis=0)  # an EMPTY slot holds NaN
    mx = np.fmax.reduce(block[w.MAX], axis=0)
    rms = np.sqrt(var + mean2)
    crest = np.maximum(mx - mean, mean - mn) / np.sqrt(safe_var)  # peak deviation over the spread
    crest[flat] = 0.0
    sxx = muu - mu * mu  # sum (u - mean u)^2 / N; mux is centred already, as sum (x - mean) = 0
    slope = mux / np.where(sxx * nz > _EPS, sxx, np.inf)  # 0 when all times are equal
    if last is None:
        last = block[w.LAST][(k_new % n_b).astype(np.intp), np.arange(rows)]
    out = np.array([mean, np.sqrt(var), mn, mx, rms, mx - mn, slope, skew, kurt, crest, last, count])
    out[:-1, count == 0] = np.nan
    return out.T


def _combine() -> np.ndarray:
    """Coefficients taking [plain sums (window.FIELDS[:N_SUMS]); the 16 product sums] to
    [M2, M3, M4, sum u, sum u^2, sum u (x - mean)]."""
    prod = ("dS3", "dS2", "nd", "dS1", "dSt", "nf", "fS1", "fSt", "d2S2", "nd2", "d2S1", "nd3", "d3S1", "nd4", "nf2", "nfd")
    cols = list(w.FIELDS[: w.N_SUMS]) + list(prod)
    rows = [
        {"s2": 1, "dS1": 2, "nd2": 1},
        {"s3": 1, "dS2": 3, "d2S1": 3, "nd3": 1},
        {"s4": 1, "dS3": 4, "d3S1": 4, "d2S2": 6, "nd4": 1},
        {"st": 1, "nf": 1},
        {"stt": 1, "fSt": 2, "nf2": 1},
        {"std": 1, "dSt": 1, "fS1": 1, "nfd": 1},
    ]
    m = np.zeros((len(rows), len(cols)))
    for i, r in enumerate(rows):
        for name, coef in r.items():
            m[i, cols.index(name)] = coef
    return m


_COMBINE = _combine()
_SCRATCH: dict[tuple[int, int], np.ndarray] = {}
_ONES: dict[int, np.ndarray] = {}


def _ones(n_b: int) -> np.ndarray:
    v = _ONES.get(n_b)
    if v is None:
        v = _ONES[n_b] = np.ones(n_b)
    return v


def _scratch(n_b: int, rows: int) -> np.ndarray:
    """A reusable (16, B, R) buffer for the products (allocating ~1 MB per hop costs page faults)."""
    buf = _SCRATCH.get((n_b, rows))
    if buf is None:
        if len(_SCRATCH) > 8:
            _SCRATCH.clear()
        buf = _SCRATCH[(n_b, rows)] = np.empty((16, n_b, rows))
    return buf
