from __future__ import annotations

import numpy as np
import pytest

from edgegw.engine.features import FEATURES, feature_names, row_features, window_features


def reference(ts: np.ndarray, x: np.ndarray) -> dict[str, float]:
    mean, std = x.mean(), x.std()
    d = x - mean
    return {
        "mean": mean, "std": std, "min": x.min(), "max": x.max(), "rms": np.sqrt((x**2).mean()),
        "ptp": np.ptp(x), "slope": np.polyfit(ts, x, 1)[0], "skew": (d**3).mean() / std**3,
        "kurtosis": (d**4).mean() / std**4 - 3, "crest": np.abs(x).max() / np.sqrt((x**2).mean()),
        "last": x[-1], "count": len(x),
    }


def test_features_match_a_plain_reference() -> None:
    rng = np.random.default_rng(1)
    ts = np.sort(rng.uniform(0, 30, 200))
    x = 3 + 0.05 * ts + rng.normal(0, 0.4, 200)
    got = window_features([[(ts, x), (ts[:50], x[:50] * 2)]], length=300)
    assert got.shape == (1, 2 * len(FEATURES))
    ref = reference(ts, x)
    for i, name in enumerate(FEATURES):
        assert got[0, i] == pytest.approx(ref[name], rel=1e-9, abs=1e-9), name
    assert got[0, len(FEATURES) + FEATURES.index("count")] == 50


def test_empty_window_is_nan_and_flat_window_is_finite() -> None:
    ts = np.full((2, 4), np.nan)
    x = np.full((2, 4), np.nan)
    ts[1], x[1] = [1, 2, 3, 4], [5, 5, 5, 5]
    f = row_features(ts, x)
    assert np.isnan(f[0, :-1]).all() and f[0, -1] == 0
    assert np.isfinite(f[1]).all() and f[1, FEATURES.index("std")] == 0


def test_names_are_signal_major() -> None:
    assert feature_names(["a", "b"])[: len(FEATURES) + 1] == [f"a.{f}" for f in FEATURES] + ["b.mean"]
