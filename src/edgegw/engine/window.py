"""Event-time windows as whole hop buckets, and the running totals that make a hop cheap.

A profile's window of `window_s` is B = window_s / hop_s whole buckets; bucket k holds the
samples with k * hop_s <= ts < (k + 1) * hop_s. Each signal accumulates its current bucket in
plain Python floats (in `Engine.ingest`) and writes it to the store when the bucket is finished
(and, at a hop, while it is still open). The store is one float64 array `acc[field, slot, row]`:
row = asset x signal, slot = k mod B, so slots are aligned to absolute time and every row shares
the same slot indexing. Field K remembers which bucket a slot holds.

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
from typing import Any

import numpy as np

# the order lets the hop multiply neighbouring fields in one call (features.bucket_features)
FIELDS: tuple[str, ...] = ("s3", "s2", "n", "s1", "st", "s4", "stt", "std", "c", "k", "min", "max", "last")
S3, S2, N, S1, ST, S4, STT, STD, C, K, MIN, MAX, LAST = range(len(FIELDS))
N_SUMS = 8  # fields 0..7 are summed over a window's buckets
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


def shifted(s3: Any, s2: Any, n: Any, s1: Any, st: Any, s4: Any, stt: Any, sd: Any, dc: Any, dt: Any) -> tuple[Any, ...]:
    """A bucket's sums (FIELDS[:N_SUMS] order) about a reference dc below its c and dt before its
    start: sums of (d + dc)^p, (tau + dt), (tau + dt)^2, (tau + dt)(d + dc). Floats or arrays."""
    a = n * dc
    return (
        s3 + dc * (3.0 * s2 + dc * (3.0 * s1 + a)),
        s2 + dc * (2.0 * s1 + a),
        n,
        s1 + a,
        st + n * dt,
        s4 + dc * (4.0 * s3 + dc * (6.0 * s2 + dc * (4.0 * s1 + a))),
        stt + dt * (2.0 * st + n * dt),
        sd + dc * st + dt * (s1 + a),
    )


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
        self.signals: list[Any] = [None] * rows  # the SignalState of each row (to store open buckets)
        self.exact_rows = 0  # windows that took the exact sum of their slots (self-check, tests)
        self.next_k_end: float | None = None  # the window end of the next hop, once one ran

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
        s3, s2, n, s1, st, s4, stt, sd = sums
        for i, v in enumerate(shifted(s3, s2, n, s1, st, s4, stt, sd, dc, dt)):  # all read before any is written
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
