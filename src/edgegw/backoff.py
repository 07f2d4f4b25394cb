"""Capped exponential backoff with full jitter, shared by every reconnecting client."""

from __future__ import annotations

import random


class Backoff:
    def __init__(self, initial: float = 0.5, cap: float = 30.0) -> None:
        self.initial = initial
        self.cap = cap
        self.attempt = 0

    def next(self) -> float:
        """Seconds to wait before the next attempt."""
        ceiling = min(self.cap, self.initial * (2**self.attempt))
        self.attempt += 1
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempt = 0
