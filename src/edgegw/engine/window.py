"""Event-time windows as whole hop buckets, and the running totals that make a hop cheap.

A profile's window of `window_s` is B = window_s / hop_s whole buckets; bucket k holds the
samples with k * hop_s <= ts < (k + 1) * hop_s. Each signal accumulates its current bucket in
plain Python floats (`SignalBuckets`, fed by `Engine.ingest`) and writes it to the store when
the bucket is finished (and, at a hop, while it is still open). The store is one float64 array
`acc[field, slot, row]` (fields: LAYOUT): row = asset x signal, slot = k mod B, so slots are
aligned to absolute time and every row shares the same slot indexing. Field K remembers which
bucket a slot holds.

Per bucket, with c = the bucket's first value, d = x - c, b = k * hop_s and tau = t - b:
n, c, S1..S4 = sums of d^1..d^4, St = sum tau, Stt = sum tau^2, Std = sum tau d, k, min, max
and the last value. Centering on c keeps the sums well conditioned (a temperature of 55 with a
tiny spread, epoch timestamps).

A hop does not add up B buckets per signal. Buckets are grouped in segments of B aligned buckets
(segment s = buckets s*B .. s*B + B - 1), so a window is the tail of one segment and the head
of the next:
- `head[field, row]`: each signal's running totals of its finished buckets in its current
  segment, kept by `fold()` as a bucket finishes, about the segment's first value and start;
- `tail[field, slot, row]`: for the segment before, the totals of slots slot..B-1, built once
  per segment (`Windows.build_tail`) by shifting its buckets to one reference and a reversed
  cumulative sum;
- the signal's open bucket, if the window holds it.
A hop combines these three parts per signal (`features.window_features`). Every reference is a
value of the samples it sums (the segment's first, the segment's newest bucket's first), which
keeps the shifted sums as well conditioned as the buckets. Signals out of step with their asset's
hop (behind, ahead, or whose tail was not final when the tail was built) take the exact sum of
their B store slots instead, masked to the window's buckets. A newer bucket takes the slot of
the bucket B before it, so a hop that runs after its signals moved on loses those buckets; the
intake runs hops within a fraction of a hop, so this needs signals of one asset that arrive more
than a hop apart.
"""

from __future__ import annotations

import math
from operator import add, attrgetter
from typing import Any

import numpy as np

# A bucket record: each store field and the SignalBuckets attribute that holds it. The first
# N_SUMS fields add up over buckets; the order lets the hop multiply neighbouring fields in one
# call (features.bucket_features).
LAYOUT: dict[str, str] = {
    "s3": "sum_d3",
    "s2": "sum_d2",
    "n": "count",
    "s1": "sum_d",
    "st": "sum_t",
    "s4": "sum_d4",
    "stt": "sum_t2",
    "std": "sum_td",
    "c": "first",
    "k": "k",
    "min": "min",
    "max": "max",
    "last": "last",
}
FIELDS: tuple[str, ...] = tuple(LAYOUT)
S3, S2, N, S1, ST = (FIELDS.index(f) for f in ("s3", "s2", "n", "s1", "st"))
S4, STT, STD, C, K = (FIELDS.index(f) for f in ("s4", "stt", "std", "c", "k"))
MIN, MAX, LAST = (FIELDS.index(f) for f in ("min", "max", "last"))
N_SUMS = 8
NEVER = -(2.0**52)  # the bucket number of a slot that holds no bucket (EMPTY)


def bucket_of(ts: float, hop_s: float) -> int:
    """The bucket k of a time: k * hop_s <= ts < (k + 1) * hop_s, as the floats compare."""
    k = math.floor(ts / hop_s)
    if ts < k * hop_s:
        k -= 1
    elif ts >= (k + 1) * hop_s:
        k += 1
    return k


EMPTY = np.zeros(len(FIELDS))  # a bucket without samples: adds nothing, never the newest
EMPTY[K], EMPTY[MIN], EMPTY[MAX] = NEVER, math.nan, math.nan  # min/max reduce with fmin/fmax


def new_store(rows: int, n_buckets: int) -> np.ndarray:
    """An empty store for `rows` signals of B = n_buckets slots: acc[field, slot, row]."""
    return np.repeat(EMPTY[:, None, None], n_buckets, axis=1).repeat(rows, axis=2)


def n_buckets(window_s: float, hop_s: float) -> int:
    """B: the whole hops in a window (the config validates that window_s is a multiple of hop_s)."""
    return max(1, round(window_s / hop_s))


def shifted(sums: Any, dc: Any, dt: Any) -> list[Any]:
    """A bucket's sums (the first N_SUMS fields of a record) about a reference dc below its c and
    dt before its start: sums of (d + dc)^p, (tau + dt), (tau + dt)^2, (tau + dt)(d + dc).
    Floats or arrays; every input is read before the result is built."""
    n, s1, s2, s3, st = sums[N], sums[S1], sums[S2], sums[S3], sums[ST]
    a = n * dc
    out = list(sums[:N_SUMS])
    out[S1] = s1 + a
    out[S2] = s2 + dc * (2.0 * s1 + a)
    out[S3] = s3 + dc * (3.0 * s2 + dc * (3.0 * s1 + a))
    out[S4] = sums[S4] + dc * (4.0 * s3 + dc * (6.0 * s2 + dc * (4.0 * s1 + a)))
    out[ST] = st + n * dt
    out[STT] = sums[STT] + dt * (2.0 * st + n * dt)
    out[STD] = sums[STD] + dc * st + dt * (s1 + a)
    return out


# Below this many (row x bucket) records a hop sums the buckets directly: for a few assets that
# takes fewer numpy calls than the three parts (and the heads and tails are not kept at all).
PARTS_MIN = 1500


class Windows:
    """One profile's window state: the bucket store, the segment heads and the tail table."""

    __slots__ = (
        "acc",
        "exact_rows",
        "head",
        "hop_s",
        "kcur",
        "n_buckets",
        "next_k_end",
        "parts",
        "signals",
        "tail",
        "tail_ok",
        "tail_seg",
    )

    def __init__(self, rows: int, n_b: int, hop_s: float) -> None:
        self.n_buckets = n_b
        self.hop_s = hop_s
        self.parts = rows * n_b > PARTS_MIN  # hops of this profile may use the parts: keep heads and tails
        self.acc = new_store(rows, n_b)
        self.head = np.repeat(EMPTY[:, None], rows, axis=1)  # head[field, row]
        self.tail = new_store(rows, n_b)  # tail[field, slot, row]: slots slot..B-1 of segment tail_seg
        self.tail_seg = -(2**62)
        self.tail_ok = np.zeros(rows, dtype=bool)  # rows whose tail of segment tail_seg is built
        self.kcur = np.full(rows, NEVER)  # each row's open bucket (NEVER before its first value)
        self.signals: list[SignalBuckets | None] = [None] * rows  # each row's open bucket, to store it at a hop
        self.exact_rows = 0  # windows that took the exact sum of their slots (self-check, tests)
        self.next_k_end: float | None = None  # the window end prepare() builds tails for: set by the hop

    def uses_parts(self, n_rows: int) -> bool:
        """Whether a hop of `n_rows` rows combines parts (else it sums each row's B slots)."""
        return self.parts and n_rows * self.n_buckets > PARTS_MIN

    def build_tail(self, seg: int, rows: np.ndarray) -> None:
        """The tail table of segment `seg` for `rows`, from the store: per slot, the totals of that
        slot and the later ones, about the row's newest bucket's first value and the segment's start.

        Build a row once its signal has left the segment (its buckets there are final). Slots
        before the first one the next hop reads may already hold newer buckets: they are never
        read (later hops of the segment start later).
        """
        nb = self.n_buckets
        whole = len(rows) == self.acc.shape[2]  # rows are sorted: all of them, in order
        acc = self.acc if whole else self.acc[:, :, rows]
        k0 = float(seg * nb)
        kf = acc[K]
        have = (kf >= k0) & (kf < k0 + nb) & (acc[N] > 0)  # slot s holds bucket seg*B + s
        cols = np.arange(acc.shape[2])
        newest = nb - 1 - np.argmax(have[::-1], axis=0)  # in every non-empty suffix
        ref = acc[C, newest, cols]
        dc = np.where(have, acc[C] - ref, 0.0)
        dt = np.where(have, kf * self.hop_s - k0 * self.hop_s, 0.0)
        tail = self.tail if whole else np.empty_like(acc)  # in place: a hop's memory stays flat
        sums = tail[:N_SUMS]
        sums.fill(0.0)
        np.copyto(sums, acc[:N_SUMS], where=have)
        for i, v in enumerate(shifted(sums, dc, dt)):
            sums[i] = v
        ext = tail[MIN : MAX + 1]  # min and -max: one fmin for both
        ext[0] = np.where(have, acc[MIN], math.nan)
        ext[1] = np.where(have, -acc[MAX], math.nan)
        for i in range(nb - 2, -1, -1):  # suffix totals, slot by slot for all rows (cumsum along slots is slower)
            sums[:, i] += sums[:, i + 1]
            np.fmin(ext[:, i], ext[:, i + 1], out=ext[:, i])
        np.negative(ext[1], out=ext[1])
        tail[C] = ref
        tail[K] = k0
        tail[LAST] = acc[LAST, newest, cols]
        if not whole:
            self.tail[:, :, rows] = tail
        self.tail_ok[rows] = True

    def prepare(self) -> None:
        """Between hops: build the tail the next hop needs for every row already past its segment,
        so the hop itself only combines (it builds what is still missing when it needs it)."""
        k_end = self.next_k_end
        if k_end is None or not self.parts:
            return
        seg = math.floor((k_end - 1) / self.n_buckets)
        if k_end - seg * self.n_buckets >= self.n_buckets:
            return  # the next window is one whole segment: no tail
        self.ensure_tail(seg - 1, np.flatnonzero(self.kcur >= seg * self.n_buckets))

    def ensure_tail(self, seg: int, rows: np.ndarray) -> None:
        """Make the tail table hold segment `seg` for `rows` (signals past that segment), building
        the rows not built for it yet; a table of another segment is dropped first."""
        if self.tail_seg != seg:
            self.tail_seg = seg
            self.tail_ok[:] = False
        todo = rows[~self.tail_ok[rows]]
        if len(todo):
            self.build_tail(seg, todo)


_record = attrgetter(*LAYOUT.values())
_sums = attrgetter(*list(LAYOUT.values())[:N_SUMS])
_NO_BUCKET = -(2**62)


class SignalBuckets:
    """One signal's row of a profile's `Windows`: its open bucket in plain floats (no sample is
    kept) and, where hops combine parts, its segment head.

    The bucket's sums are about its first value and start: with d = x - first and
    t = ts - k * hop_s, `sum_d` .. `sum_d4` are the sums of d .. d^4, `sum_t`, `sum_t2` and
    `sum_td` those of t, t^2 and t d. `Engine.ingest` adds a value to them inline (a method call
    per value would cost about 5% of ingest); `open()` starts the next bucket, `record()` lays a
    bucket out as the store does (LAYOUT).
    """

    __slots__ = (
        "count",
        "end",
        "first",
        "head",
        "k",
        "last",
        "max",
        "min",
        "row",
        "start",
        "sum_d",
        "sum_d2",
        "sum_d3",
        "sum_d4",
        "sum_t",
        "sum_t2",
        "sum_td",
        "win",
    )

    def __init__(self, win: Windows, row: int) -> None:
        self.win = win
        self.row = row
        win.signals[row] = self
        self.k = _NO_BUCKET
        self.start = 0.0  # k * hop_s
        self.end = -math.inf  # the first value opens a bucket
        self.count = 0.0
        self.first = self.sum_d = self.sum_d2 = self.sum_d3 = self.sum_d4 = self.sum_t = self.sum_t2 = self.sum_td = 0.0
        self.min = self.max = self.last = math.nan
        # the totals of the finished buckets of the current segment, as a record (FIELDS order)
        self.head: list[Any] = EMPTY.tolist()
        self.head[K] = _NO_BUCKET

    def open(self, ts: float, value: float) -> None:
        """Store the open bucket (if any) and start the bucket of `ts` with this value."""
        win = self.win
        hop = win.hop_s
        k = bucket_of(ts, hop)
        if self.count:
            self.flush()
            if win.parts:
                self.fold()
        self.k = k
        win.kcur[self.row] = k
        self.start = b = k * hop
        self.end = (k + 1) * hop
        t = ts - b
        self.count = 1.0
        self.first = self.min = self.max = self.last = value
        self.sum_d = self.sum_d2 = self.sum_d3 = self.sum_d4 = self.sum_td = 0.0
        self.sum_t = t
        self.sum_t2 = t * t

    def record(self) -> tuple[Any, ...]:
        """The open bucket as a store record (FIELDS order)."""
        return _record(self)

    def flush(self) -> None:
        """Write the open bucket to its store slot (it stays open)."""
        win = self.win
        win.acc[:, self.k % win.n_buckets, self.row] = _record(self)

    def fold(self) -> None:
        """Add the finished bucket to the head: the totals of its segment's finished buckets, about
        the segment's first value and start (a new segment starts afresh)."""
        win = self.win
        nb = win.n_buckets
        k0 = self.k - self.k % nb
        h = self.head
        if k0 != h[K]:  # the segment's first finished bucket: the head starts from it
            h[:N_SUMS] = _NO_SUMS
            h[C], h[K], h[MIN], h[MAX] = self.first, k0, self.min, self.max
        else:
            if self.min < h[MIN]:
                h[MIN] = self.min
            if self.max > h[MAX]:
                h[MAX] = self.max
        h[:N_SUMS] = map(add, h[:N_SUMS], shifted(_sums(self), self.first - h[C], self.start - k0 * win.hop_s))
        h[LAST] = self.last
        win.head[:, self.row] = h


_NO_SUMS = (0.0,) * N_SUMS
