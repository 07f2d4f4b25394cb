"""What `edgegw backtest` tells a reliability engineer: early alarms apart from false ones, no daily
rate from less than a day, and a plot with a column per asset, units, limits and a legend."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from edgegw.cli import main as cli_main
from edgegw.config import Profile
from edgegw.ml.backtest import Result, Setup, figure, summary
from edgegw.ml.datasets import History
from edgegw.ml.replay import profile_config
from tests.ml.modelkit import fault_csv

ROOT = Path(__file__).resolve().parents[2]


def labelled_hour(alarm_spans: list[tuple[int, int]], assets: tuple[str, ...] = ("p1",)) -> tuple[Setup, Result]:
    """One hour a second per asset, a fault labelled from minute 30; model alarms over the spans (s)."""
    n = 3600
    profile = Profile(window_s=30, hop_s=1, signals={"vibration": {"unit": "mm/s", "hi": 7.1, "hihi": 11.0}})
    cfg = profile_config("pump", profile, list(assets))
    ts = np.tile(np.arange(n, dtype=float), len(assets)) + 1.7e9
    order = np.argsort(ts, kind="stable")
    h = History(
        signals=["vibration"],
        assets=list(assets),
        ts=ts[order],
        asset=np.repeat(np.arange(len(assets)), n)[order],
        values=np.full((n * len(assets), 1), 3.0),
        ts_text=[str(t) for t in ts[order]],
        labels=["normal" if (t - 1.7e9) < 1800 else "bearing_wear" for t in ts[order]],
    )
    anomaly = np.zeros(len(h), dtype=np.int8)
    for a, b in alarm_spans:
        anomaly[(h.ts - 1.7e9 >= a) & (h.ts - 1.7e9 < b)] = 1
    z = np.zeros(len(h), dtype=np.int8)
    res = Result(score=np.full(len(h), 0.2), anomaly=anomaly, failure_p=np.full(len(h), np.nan), failure=z, threshold=z.copy())
    return Setup(cfg, h, list(assets), {}, "pump"), res


def test_an_alarm_just_before_the_label_is_early_and_no_daily_rate_from_an_hour() -> None:
    setup, res = labelled_hour([(600, 620), (1756, 1790), (1900, 2000)])  # false, 44 s early, during the fault
    text = summary(setup, res, 0.1)
    assert "false alarms: 1 episodes in 30.0 min (less than a day: no daily rate) of normal data" in text
    assert "early alarms (at most 1.0 min before a labelled fault began, not counted false): 1" in text
    assert "per day" not in text
    assert "(early)" in text and "(false)" in text
    strict = summary(setup, res, 0.1, lead_tolerance_s=10)
    assert "false alarms: 2 episodes" in strict


def test_plot_checks_for_matplotlib_before_the_replay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    out = tmp_path / "o.csv"
    argv = ["backtest", "-c", str(ROOT / "config/example.yaml"), "--data", str(fault_csv()), "--out", str(out)]
    assert cli_main([*argv, "--plot", str(tmp_path / "p.png")]) == 1
    assert not out.exists()  # refused before the replay, not after it


def test_plot_has_a_column_per_asset_with_units_limits_and_a_legend() -> None:
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    setup, res = labelled_hour([(1900, 2000)], assets=("pump-1", "pump-2"))
    fig = figure(setup, res)
    try:
        axes = fig.axes
        assert [ax.get_title() for ax in axes if ax.get_title()] == ["pump-1", "pump-2"]
        assert "vibration [mm/s]" in [ax.get_ylabel() for ax in axes]
        limits = {round(line.get_ydata()[0], 3) for ax in axes for line in ax.get_lines() if len(set(line.get_ydata())) == 1}
        assert {7.1, 11.0} <= limits
        (legend,) = fig.legends
        names = [t.get_text() for t in legend.get_texts()]
        assert {"anomaly alarm", "threshold alarm", "labelled fault", "anomaly score"} <= set(names)
    finally:
        plt.close(fig)
