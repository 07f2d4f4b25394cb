"""Features: the raw-sample reference (`row_features`) against a plain one, and the engine's
streaming per-bucket moments (`bucket_features` via Engine.ingest) against `row_features` on the
very samples each window holds."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest

from edgegw.config import GatewayConfig
from edgegw.engine.engine import Engine
from edgegw.engine.features import FEATURES, N_FEATURES, feature_names, row_features

# The streaming sums and the two-pass reference agree to 1e-9 relative or 1e-12 absolute. Skew and
# kurtosis of a temperature of 55 varying by 1e-4 are only defined to ~1e-9 absolute in float64
# (each implementation is ~6e-10 off a long-double computation there), hence their own atol.
REL, ABS = 1e-9, 1e-12
SHAPE_ABS = 2e-9


def padded(windows: Sequence[tuple[np.ndarray, np.ndarray]], length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """NaN-padded, right-aligned (R, L) matrices of time and value, one window per row."""
    length = length or max(1, *(len(x) for _, x in windows))
    ts = np.full((len(windows), length), np.nan)
    xs = np.full((len(windows), length), np.nan)
    for i, (t, x) in enumerate(windows):
        if len(x):
            ts[i, length - len(x) :] = t
            xs[i, length - len(x) :] = x
    return ts, xs


def reference(ts: np.ndarray, x: np.ndarray) -> dict[str, float]:
    mean, std = x.mean(), x.std()
    d = x - mean
    return {
        "mean": mean,
        "std": std,
        "min": x.min(),
        "max": x.max(),
        "rms": np.sqrt((x**2).mean()),
        "ptp": np.ptp(x),
        "slope": np.polyfit(ts, x, 1)[0],
        "skew": (d**3).mean() / std**3,
        "kurtosis": (d**4).mean() / std**4 - 3,
        "crest": np.abs(d).max() / std,
        "last": x[-1],
        "count": len(x),
    }


def test_features_match_a_plain_reference() -> None:
    rng = np.random.default_rng(1)
    ts = np.sort(rng.uniform(0, 30, 200))
    x = 3 + 0.05 * ts + rng.normal(0, 0.4, 200)
    got = row_features(*padded([(ts, x), (ts[:50], x[:50] * 2)], 300))
    assert got.shape == (2, len(FEATURES))
    ref = reference(ts, x)
    for i, name in enumerate(FEATURES):
        assert got[0, i] == pytest.approx(ref[name], rel=1e-9, abs=1e-9), name
    assert got[1, FEATURES.index("count")] == 50


def test_empty_window_is_nan_and_flat_window_is_finite() -> None:
    ts = np.full((2, 4), np.nan)
    x = np.full((2, 4), np.nan)
    ts[1], x[1] = [1, 2, 3, 4], [5, 5, 5, 5]
    f = row_features(ts, x)
    assert np.isnan(f[0, :-1]).all() and f[0, -1] == 0
    assert np.isfinite(f[1]).all() and f[1, FEATURES.index("std")] == 0


def test_names_are_signal_major() -> None:
    assert feature_names(["a", "b"])[: len(FEATURES) + 1] == [f"a.{f}" for f in FEATURES] + ["b.mean"]


# ---------------------------------------------------------------- streaming == raw samples

SIGNALS = ("vibration", "temperature", "flow", "sparse")


def engine(window_s: float = 30, hop_s: float = 1, assets: Sequence[str] = ("p1", "p2")) -> Engine:
    cfg = GatewayConfig.model_validate(
        {
            "profiles": {
                "pump": {
                    "window_s": window_s,
                    "hop_s": hop_s,
                    "max_rate_hz": 2,  # ignored: a window holds every sample
                    "signals": {s: {} for s in SIGNALS},
                }
            },
            "assets": [{"id": a, "profile": "pump"} for a in assets],
        }
    )
    return Engine(cfg, lambda a: None, clock=lambda: 0.0)


def series(rng: np.random.Generator, t0: float, seconds: float) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Irregular series per signal: jittered rates, silent gaps, a drift, an epoch offset, a
    temperature around 55 with a tiny spread, a signal that reports rarely."""
    out = {}
    for s, (rate, base, spread) in {
        "vibration": (12.0, 3.0, 0.4),
        "temperature": (7.0, 55.0, 1e-4),
        "flow": (3.0, 60.0, 2.0),
        "sparse": (0.15, 1.0, 0.5),
    }.items():
        t = t0 + np.cumsum(rng.exponential(1.0 / rate, int(seconds * rate * 1.2)))
        t = t[t < t0 + seconds]
        gap = rng.uniform(t0 + 40, t0 + seconds - 60)
        t = t[(t < gap) | (t > gap + rng.uniform(5, 45))]  # a silent stretch, sometimes longer than the window
        drift = rng.uniform(-1, 1) * spread * (t - t0) / 20.0
        x = base + drift + spread * rng.standard_normal(len(t))
        if s == "vibration":
            x[rng.random(len(t)) < 0.01] += 8 * spread  # impacts: skew and kurtosis
        out[s] = (t, x)
    return out


def replay(
    e: Engine, data: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]], prepare: bool = False
) -> list[tuple[str, float, np.ndarray]]:
    """Feed every value in time order, hops as due (with the between-hops window upkeep after
    each when `prepare`); return (asset, end, features) per hop and check each hop against
    row_features on the samples ingested so far inside its window."""
    events = sorted(
        (float(t), a, s, float(v))
        for a, sigs in data.items()
        for s, (ts, xs) in sigs.items()
        for t, v in zip(ts, xs, strict=True)
    )
    seen: dict[tuple[str, str], list[tuple[float, float]]] = {(a, s): [] for a in data for s in SIGNALS}
    hops: list[tuple[str, float, np.ndarray]] = []

    def observe(_p: str, ids: list[str], ends: np.ndarray, x: np.ndarray, _v: object) -> None:
        for i, a in enumerate(ids):
            hops.append((a, float(ends[i]), x[i].copy()))
            wins = []
            for s in SIGNALS:
                got = [(t, v) for t, v in seen[(a, s)] if ends[i] - e.profiles["pump"].window_s <= t < ends[i]]
                wins.append((np.array([t for t, _ in got]), np.array([v for _, v in got])))
            ref = row_features(*padded(wins)).reshape(-1)
            assert_close(x[i], ref, f"{a} hop ending {ends[i]}")

    e.hop_observer = observe
    for t, a, s, v in events:
        e.ingest(a, s, t, v)
        seen[(a, s)].append((t, v))
        if e.due:
            e.run_hops()
            if prepare:
                e.prepare()
    return hops


def assert_close(got: np.ndarray, ref: np.ndarray, where: str) -> None:
    nan = np.isnan(ref)
    assert (np.isnan(got) == nan).all(), (where, got, ref)
    atol = np.tile([SHAPE_ABS if f in ("skew", "kurtosis") else ABS for f in FEATURES], len(ref) // N_FEATURES)
    bad = ~nan & ~np.isclose(got, ref, rtol=REL, atol=atol)
    if bad.any():
        names = feature_names(SIGNALS)
        raise AssertionError(f"{where}: " + ", ".join(f"{names[i]} {got[i]!r} != {ref[i]!r}" for i in np.flatnonzero(bad)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_streaming_matches_raw_samples(seed: int, parts: bool) -> None:
    rng = np.random.default_rng(seed)
    t0 = 1767600000.0 + rng.uniform(0, 1)  # epoch timestamps
    data = {a: series(rng, t0 + rng.uniform(0, 2), 240) for a in ("p1", "p2")}
    e = engine()
    assert e._windows["pump"].parts == parts
    hops = replay(e, data, prepare=seed == 1)
    assert len(hops) > 400
    if parts:  # most windows come from the segment parts; the exact sum of B slots is for signals
        # out of step (here mostly the rare one, still in the previous segment early in each segment)
        assert 0 < e._windows["pump"].exact_rows < 0.15 * len(hops) * len(SIGNALS)
    xs = np.array([x for _, _, x in hops])
    count = xs[:, [i * N_FEATURES + FEATURES.index("count") for i in range(len(SIGNALS))]]
    assert (count[:, 0] > 300).any()  # every sample of 30 s at ~12 Hz, no cap from max_rate_hz
    assert (count == 0).any() and np.isnan(xs).any()  # windows with a signal silent throughout


def test_streaming_with_a_fractional_hop(parts: bool) -> None:
    rng = np.random.default_rng(7)
    data = {"p1": series(rng, 1767600000.3, 150)}
    assert replay(engine(window_s=2.5, hop_s=0.5, assets=["p1"]), data)


def test_flat_signal_and_single_sample(parts: bool) -> None:
    e = engine(assets=["p1"])
    hops = replay(
        e,
        {
            "p1": {
                "vibration": (1767600000.0 + np.arange(0, 60, 0.1), np.full(600, 55.1)),
                "temperature": (np.array([1767600010.5]), np.array([40.0])),
                "flow": (np.array([]), np.array([])),
                "sparse": (np.array([]), np.array([])),
            }
        },
    )
    x = hops[-1][2].reshape(len(SIGNALS), N_FEATURES)
    f = dict(zip(FEATURES, x[0], strict=True))
    assert f["mean"] == pytest.approx(55.1) and f["std"] < 1e-12 and f["skew"] == 0 and f["kurtosis"] == 0
    assert f["slope"] == pytest.approx(0, abs=1e-12) and f["count"] == 300
    t = dict(zip(FEATURES, x[1], strict=True))
    assert math.isnan(t["mean"]) and t["count"] == 0  # left the window long ago
    one = next(x for _, end, x in hops if end == 1767600011.0).reshape(len(SIGNALS), N_FEATURES)[1]
    assert one[FEATURES.index("count")] == 1 and one[FEATURES.index("std")] == 0 and one[FEATURES.index("slope")] == 0


def test_values_arriving_after_the_hop_count_in_the_next_one(parts: bool) -> None:
    e = engine(window_s=5, hop_s=1, assets=["p1"])
    got: list[tuple[float, np.ndarray]] = []
    e.hop_observer = lambda p, ids, ends, x, v: got.append((float(ends[0]), x[0].copy()))
    e.ingest("p1", "vibration", 100.2, 1.0)
    e.ingest("p1", "vibration", 101.1, 2.0)  # the hop ending at 101 is due
    e.ingest("p1", "flow", 100.5, 7.0)  # flow's bucket 100 is still open
    e.run_hops()
    e.ingest("p1", "flow", 100.9, 9.0)  # late for that hop, still in bucket 100
    e.ingest("p1", "vibration", 102.1, 3.0)
    e.run_hops()
    flow_count = N_FEATURES * SIGNALS.index("flow") + FEATURES.index("count")
    flow_mean = N_FEATURES * SIGNALS.index("flow")
    assert [(end, x[flow_count]) for end, x in got] == [(101.0, 1.0), (102.0, 2.0)]
    assert got[1][1][flow_mean] == 8.0


def test_a_step_with_tiny_noise_stays_exact_across_segments(parts: bool) -> None:
    """A jump of 1000 with noise of 1e-4 either side: windows after the jump are flat around
    1055 while the previous segment's totals hold 55 (each part is summed about a value it
    holds, so nothing cancels)."""
    rng = np.random.default_rng(3)
    t = 1767600000.0 + np.arange(0, 150, 0.1) + rng.uniform(0, 0.05, 1500)
    x = np.where(t < 1767600047.35, 55.0, 1055.0) + 1e-4 * rng.standard_normal(1500)
    e = engine(assets=["p1"])
    hops = replay(e, {"p1": {"vibration": (t, x), "temperature": (t[::3], 20.0 + 1e-4 * t[::3] - 1767600000e-4)}}, prepare=True)
    assert len(hops) > 140
    stds = [h[2][FEATURES.index("std")] for h in hops]
    assert max(stds) > 400 and 0 < stds[-1] < 2e-4  # the jump in the window, then gone
