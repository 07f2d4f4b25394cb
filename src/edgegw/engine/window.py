"""Per-signal ring buffers: O(1) append with no allocation, a contiguous view of the window.

Each sample is written twice, at i and i + capacity, so the last `capacity` samples are
always one contiguous slice: a hop reads its window without copying or rolling.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class RingBuffer:
    """Timestamps and values of one signal, oldest first, holding at most `capacity` samples."""

    __slots__ = ("_head", "_n", "_tm", "_ts", "_vals", "_vm", "capacity")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self._ts = np.empty(2 * capacity, dtype=np.float64)
        self._vals = np.empty(2 * capacity, dtype=np.float64)
        # appends write through memoryviews: ~40 % cheaper than numpy item assignment
        self._tm: Any = self._ts.data
        self._vm: Any = self._vals.data
        self._head = 0  # next write position in [0, capacity)
        self._n = 0

    def append(self, ts: float, value: float) -> None:
        h = self._head
        c = self.capacity
        t = self._tm
        v = self._vm
        t[h] = ts
        t[h + c] = ts
        v[h] = value
        v[h + c] = value
        self._head = h + 1 if h + 1 < c else 0
        if self._n < c:
            self._n += 1

    def __len__(self) -> int:
        return self._n

    def view(self) -> tuple[np.ndarray, np.ndarray]:
        """All held samples, oldest first, as read-only views (valid until the next append)."""
        end = self._head + self.capacity
        start = end - self._n
        return self._ts[start:end], self._vals[start:end]

    def window(self, t_start: float, t_end: float) -> tuple[np.ndarray, np.ndarray]:
        """Samples with t_start <= ts < t_end, as views."""
        ts, vals = self.view()
        i = int(ts.searchsorted(t_start, side="left"))  # the method skips numpy's Python dispatch
        j = int(ts.searchsorted(t_end, side="left"))
        return ts[i:j], vals[i:j]

    def first_ts(self) -> float:
        ts, _ = self.view()
        return float(ts[0]) if len(ts) else float("nan")
