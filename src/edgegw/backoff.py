"""Capped exponential backoff with full jitter above a floor, shared by every reconnecting loop.

The n-th delay is drawn uniformly from [initial, min(cap, initial * 2**n)]: full jitter (spread
over the whole range, so gateways that lost the same broker do not come back in step), except
that it never goes below `initial` (a poll period or a minimum pause must stay one). The exponent
stops growing once the cap is reached, so a loop may fail for ever (a week-long outage is about
20,000 attempts at a 30 s cap) without the arithmetic overflowing.
"""

from __future__ import annotations

import math
import random


class Backoff:
    def __init__(self, initial: float = 0.5, cap: float = 30.0, rng: random.Random | None = None) -> None:
        if not (math.isfinite(initial) and math.isfinite(cap) and initial > 0 and cap > 0):
            raise ValueError(f"backoff needs finite, positive delays (got initial={initial}, cap={cap})")
        self.initial = initial
        self.cap = max(cap, initial)
        self.attempt = 0  # consecutive failures since the last reset; grows without limit
        self._rng = rng or random.Random()
        self._top = math.ceil(math.log2(cap / initial)) if self.cap > initial else 0  # exponent that reaches the cap

    def ceiling(self) -> float:
        """The largest delay the next attempt may draw."""
        return min(self.cap, self.initial * 2.0 ** min(self.attempt, self._top))

    def next(self) -> float:
        """Seconds to wait before the next attempt."""
        ceiling = self.ceiling()
        self.attempt += 1
        return self._rng.uniform(self.initial, ceiling)

    def reset(self) -> None:
        self.attempt = 0
