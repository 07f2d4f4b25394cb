"""The reconnect backoff: bounded, jittered over its whole range, capped, and it never overflows."""

from __future__ import annotations

import random
import statistics

import pytest

from edgegw.backoff import Backoff


def test_delays_double_up_to_the_cap_and_stay_in_range() -> None:
    b = Backoff(0.5, 30.0, rng=random.Random(1))
    ceilings = []
    for _ in range(12):
        c = b.ceiling()
        d = b.next()
        assert 0.5 <= d <= c
        ceilings.append(c)
    assert ceilings[:7] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0]
    assert set(ceilings[6:]) == {30.0}


def test_a_week_of_failures_does_not_overflow() -> None:
    """1024 failures raised OverflowError (2**1024 as a float); a week at the cap is ~20,000."""
    b = Backoff(0.5, 30.0, rng=random.Random(2))
    delays = [b.next() for _ in range(50_000)]
    assert b.attempt == 50_000
    assert max(delays) <= 30.0 and min(delays) >= 0.5
    b.attempt = 10**12  # whatever the counter reached
    assert 0.5 <= b.next() <= 30.0


def test_full_jitter_spreads_over_the_whole_range() -> None:
    """At the cap the delays cover [initial, cap] evenly (equal jitter would never go below cap/2)."""
    b = Backoff(0.5, 30.0, rng=random.Random(3))
    b.attempt = 100
    delays = [b.next() for _ in range(5000)]
    assert min(delays) < 3.0 and max(delays) > 27.0
    assert sum(d < 15.0 for d in delays) > 2000  # about half below cap/2
    assert statistics.mean(delays) == pytest.approx(15.25, abs=0.6)


def test_reset_starts_again_from_the_floor() -> None:
    b = Backoff(1.0, 8.0, rng=random.Random(4))
    for _ in range(10):
        b.next()
    b.reset()
    assert b.attempt == 0 and b.ceiling() == 1.0 and b.next() == 1.0


def test_a_floor_above_the_cap_is_a_fixed_period() -> None:
    """CoAP polling uses poll_s as the floor and reobserve_s as the cap; poll_s may be the larger."""
    b = Backoff(60.0, 30.0)
    assert [b.next() for _ in range(3)] == [60.0, 60.0, 60.0]


@pytest.mark.parametrize("initial,cap", [(0.0, 30.0), (-1.0, 30.0), (0.5, float("inf")), (float("nan"), 1.0)])
def test_nonsense_limits_are_refused(initial: float, cap: float) -> None:
    with pytest.raises(ValueError, match="finite, positive"):
        Backoff(initial, cap)
