"""Event-time windows as whole hop buckets: the per-profile store of per-bucket moments.

A profile's window of `window_s` is B = window_s / hop_s whole buckets; bucket k holds the
samples with k * hop_s <= ts < (k + 1) * hop_s. Each signal accumulates its current bucket in
plain Python floats (in `Engine.ingest`) and writes it here when the bucket is finished (and, at
a hop, while it is still open). The store is one float64 array `acc[field, slot, row]`: row =
asset x signal, slot = k mod B, so slots are aligned to absolute time and every row shares the
same slot indexing (rows are the fast axis: a hop reduces over slots for all rows at once).
Field K remembers which bucket a slot holds.

At a hop, a row whose signal's newest bucket is the hop's last one (stored then if still open)
or the next one, and which skipped no bucket lately, holds in its B slots exactly the window's
buckets: no masking is needed (the usual case). Rows that skipped buckets or fell silent first
have their slots of buckets that left the window emptied (EMPTY) in place; rows whose signal
is already past the hop hold newer buckets and are masked. (A newer bucket takes the slot of the
bucket B before it, so a hop that runs after its signals moved on loses those buckets; the
intake runs hops within a fraction of a hop, so this needs signals of one asset that arrive
more than a hop apart.)

Per bucket, with c = the bucket's first value, d = x - c, b = k * hop_s and tau = t - b:
n, c, S1..S4 = sums of d^1..d^4, St = sum tau, Stt = sum tau^2, Std = sum tau d, k, min, max
and the last value. Centering on c keeps the sums well conditioned (a temperature of 55 with a
tiny spread, epoch timestamps).
"""

from __future__ import annotations

import math

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
