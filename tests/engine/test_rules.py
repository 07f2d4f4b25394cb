from __future__ import annotations

import numpy as np

from edgegw.config import SignalSpec
from edgegw.engine.rules import Debounce, DebounceSet, ThresholdRule


def run(db: Debounce, rule: ThresholdRule, samples: list[tuple[float, float]]) -> list[tuple[float, int]]:
    out = []
    for ts, v in samples:
        lvl = db.update(ts, rule.target(v, db.active))
        if lvl is not None:
            out.append((ts, lvl))
    return out


def test_on_delay_counts_event_time_and_clear_needs_off_delay() -> None:
    spec = SignalSpec(hi=7.1, hihi=11.0, deadband=0.3, on_delay_s=2, off_delay_s=5)
    rule, db = ThresholdRule(spec), Debounce(2, 5)
    samples = [(i * 0.1, 12.5) for i in range(50)] + [(5 + i * 0.1, 3.0) for i in range(100)]
    assert run(db, rule, samples) == [(2.0, 2), (10.0, 0)]


def test_flicker_inside_on_delay_raises_nothing() -> None:
    rule, db = ThresholdRule(SignalSpec(hi=7.1, on_delay_s=2)), Debounce(2, 0)
    samples = [(i * 0.5, 8.0 if i % 2 == 0 else 6.0) for i in range(40)]
    assert run(db, rule, samples) == []


def test_deadband_holds_alarm_until_below_limit_minus_deadband() -> None:
    rule, db = ThresholdRule(SignalSpec(hi=7.1, deadband=0.3)), Debounce(0, 0)
    assert run(db, rule, [(0, 7.2), (1, 7.0), (2, 6.9), (3, 6.7)]) == [(0, 1), (3, 0)]


def test_escalation_and_low_limits() -> None:
    rule, db = ThresholdRule(SignalSpec(lo=2.0, lolo=1.0)), Debounce(0, 0)
    assert run(db, rule, [(0, 1.5), (1, 0.5), (2, 1.5), (3, 5.0)]) == [(0, -1), (1, -2), (2, -1), (3, 0)]


def test_debounce_set_visits_only_items_that_differ_or_wait() -> None:
    """Item 0 turns hot and raises after the on delay; item 1 turns hot for one hop only, so its
    pending change must be dropped when the condition returns, as Debounce.update would."""
    alarms, items, delays = DebounceSet(3), np.arange(3), (2.0, 2.0)
    raised = []
    for ts, hot in [(0.0, [1, 1, 0]), (1.0, [1, 0, 0]), (2.0, [1, 0, 0]), (3.0, [1, 1, 0]), (4.0, [1, 1, 0])]:
        cond = np.array(hot, dtype=bool)
        for j in alarms.changing(items, cond).tolist():
            if alarms.update(j, ts, int(cond[j]), delays) == 1:
                raised.append((j, ts))
    assert raised == [(0, 2.0)]  # item 1 was hot from 3.0 only: not yet 2 s
    assert alarms.active.tolist() == [True, False, False] and alarms.pending.tolist() == [False, True, False]
    assert alarms.changing(items, np.array([True, False, False])).tolist() == [1]  # only the one waiting
    alarms.restore(2)
    assert alarms.changing(items, np.array([True, False, True])).tolist() == [1]
