"""Hop buckets: numbering, the store, and what a window holds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgegw.config import GatewayConfig
from edgegw.engine import window
from edgegw.engine.engine import Engine
from edgegw.engine.features import FEATURES


def test_bucket_of_is_half_open_and_exact_at_boundaries() -> None:
    assert window.bucket_of(10.0, 1.0) == 10 and window.bucket_of(10.999, 1.0) == 10
    assert window.bucket_of(-0.5, 1.0) == -1
    for k in range(1, 2000):  # 0.1 is not exact: the bucket agrees with k * hop as the floats compare
        t = k * 0.1
        b = window.bucket_of(t, 0.1)
        assert b * 0.1 <= t < (b + 1) * 0.1
    assert window.n_buckets(30, 1) == 30 and window.n_buckets(2.5, 0.5) == 5


def test_new_store_is_empty() -> None:
    acc = window.new_store(6, 30)
    assert acc.shape == (len(window.FIELDS), 30, 6)  # field, slot, row
    assert (acc[window.N] == 0).all() and (acc[window.K] == window.NEVER).all()


def make(window_s: float = 5, hop_s: float = 1) -> tuple[Engine, list[np.ndarray]]:
    cfg = GatewayConfig.model_validate(
        {
            "profiles": {"p": {"window_s": window_s, "hop_s": hop_s, "signals": {"v": {}}}},
            "assets": [{"id": "a", "profile": "p"}, {"id": "b", "profile": "p"}],
        }
    )
    e = Engine(cfg, lambda a: None, clock=lambda: 0.0)
    rows: list[np.ndarray] = []  # asset a's feature rows, hop by hop
    e.hop_observer = lambda p, ids, ends, x, v: rows.extend(x[i].copy() for i, a in enumerate(ids) if a == "a")
    return e, rows


def test_one_store_write_per_bucket_and_every_sample_counts() -> None:
    e, rows = make()
    acc = e._windows["p"].acc
    for i in range(1000):  # 100 Hz: far above max_rate_hz (10), every sample is in the window
        e.ingest("a", "v", 100 + i * 0.01, float(i % 7))
        if e.due:
            e.run_hops()
    # buckets 100..108 finished and stored; 109 is still open (and was not due for a hop)
    assert sorted(acc[window.K, :, 0].tolist()) == [104.0, 105.0, 106.0, 107.0, 108.0]
    assert (acc[window.N, :, 0] == 100).all() and (acc[window.K, :, 1] == window.NEVER).all()
    assert rows[-1][FEATURES.index("count")] == 500


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # inf - inf, as with raw samples
def test_a_bucket_leaves_the_window_with_what_it_held(parts: bool) -> None:
    e, rows = make()
    e.ingest("a", "v", 100.5, 1.0)
    e.ingest("a", "v", 101.5, math.inf)  # no range configured: inf is a value, its windows are NaN
    for t in range(102, 112):
        e.ingest("a", "v", t + 0.5, 2.0)
        e.run_hops()
    count = [r[FEATURES.index("count")] for r in rows]
    assert count == [2, 3, 4, 5, 5, 5, 5, 5, 5, 5]  # hops ending 102 .. 111
    assert not any(np.isfinite(r).all() for r in rows[:5])  # not scored (std is NaN), as before
    assert all(np.isfinite(r).all() and r[FEATURES.index("mean")] == 2.0 for r in rows[5:])  # the inf left


def test_assets_due_apart_and_a_signal_ahead_of_the_hop(parts: bool) -> None:
    cfg = GatewayConfig.model_validate(
        {
            "profiles": {"p": {"window_s": 5, "hop_s": 1, "signals": {"u": {}, "v": {}}}},
            "assets": [{"id": i, "profile": "p"} for i in ("a", "b", "c")],
        }
    )
    e = Engine(cfg, lambda a: None, clock=lambda: 0.0)
    got: dict[str, list[np.ndarray]] = {}
    e.hop_observer = lambda p, ids, ends, x, v: [got.setdefault(a, []).append(x[i].copy()) for i, a in enumerate(ids)]
    count = len(FEATURES) - 1
    for t in range(100, 106):  # a and c only: due together, not neighbours in the store
        for a in ("a", "c"):
            e.ingest(a, "u", t + 0.5, float(t))
            e.ingest(a, "v", t + 0.5, 1.0)
        e.run_hops()
    assert "b" not in got and [r[count] for r in got["a"]] == [1, 2, 3, 4, 5] == [r[count] for r in got["c"]]
    assert got["a"][-1][FEATURES.index("mean")] == 102.0
    # a jumps to 109.5: its hop ends at 106; v then reports 106.5 and 107.5 before the hop runs,
    # so bucket 106 (past the hop) sits in the slot of bucket 101 (in the window, lost)
    e.ingest("a", "u", 109.5, 109.0)
    for t in (106.5, 107.5):
        e.ingest("a", "v", t, 5.0)
    e.run_hops()
    u, v = got["a"][-1][: len(FEATURES)], got["a"][-1][len(FEATURES) :]
    assert (u[count], u[FEATURES.index("mean")]) == (5, 103.0)  # buckets 101 .. 105
    assert (v[count], v[FEATURES.index("mean")]) == (4, 1.0)  # 102 .. 105: 106 is masked out, 101 gone
