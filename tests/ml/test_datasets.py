"""Historian files: wide and long CSV, irregular sampling, gaps, junk cells, labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgegw.config import Profile
from edgegw.ml.datasets import DataError, read_history
from edgegw.ml.replay import features_of


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_wide_csv_with_gaps_junk_and_labels(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        "pump.csv",
        "\n".join(
            [
                "timestamp,vibration,pressure,label,note",
                "2026-01-05 06:00:00,3.1,6.5,0,x",
                "2026-01-05 06:00:00.7,3.2,,0,x",  # irregular; pressure missing
                "2026-01-05 06:00:02,n/a,6.4,normal,x",  # junk cell
                "2026-01-05 06:10:00,3.3,6.3,bearing_wear,x",  # a 10-minute gap
                "not a time,1,1,0,x",
            ]
        )
        + "\n",
    )
    h = read_history([p])
    assert h.signals == ["vibration", "pressure"]  # numeric columns only, not label or text
    assert h.assets == ["pump"]
    assert len(h) == 4 and h.bad_cells == 2  # the junk cell and the unreadable timestamp
    assert np.isnan(h.values[1, 1]) and np.isnan(h.values[2, 0])
    assert h.ts[1] - h.ts[0] == pytest.approx(0.7)
    assert h.labels == ["0", "0", "0", "bearing_wear"]
    assert h.fault.tolist() == [False, False, False, True]
    assert h.ts_text[0] == "2026-01-05 06:00:00"


def test_long_form_merges_values_of_one_time(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        "long.csv",
        "\n".join(
            [
                "ts;asset;signal;value",
                "1767592800;pump-2;flow;60",
                "1767592800;pump-1;flow;70",
                "1767592800;pump-1;current;30",
                "1767592801;pump-1;flow;71",
            ]
        )
        + "\n",
    )
    h = read_history([p])
    assert sorted(h.assets) == ["pump-1", "pump-2"]
    assert h.signals == ["flow", "current"]
    assert len(h) == 3
    row = next(i for i in range(3) if h.assets[h.asset[i]] == "pump-1" and h.ts[i] == 1767592800)
    assert h.values[row].tolist() == [70.0, 30.0]


def test_options_and_errors(tmp_path: Path) -> None:
    p = _write(tmp_path, "x.csv", "when|a|b\n05.01.2026 06:00:00|1|2\n05.01.2026 06:00:01|2|3\n")
    h = read_history([p], timestamp_column="when", timestamp_format="%d.%m.%Y %H:%M:%S", signals=["b"])
    assert h.signals == ["b"] and h.ts[1] - h.ts[0] == 1.0
    ms = _write(tmp_path, "ms.csv", "t,a\n1000,1\n2500,2\n")
    assert read_history([ms], timestamp_unit="ms").ts.tolist() == [1.0, 2.5]
    with pytest.raises(DataError, match="no column for signal 'zz'"):
        read_history([p], timestamp_column="when", timestamp_format="%d.%m.%Y %H:%M:%S", signals=["zz"])
    with pytest.raises(DataError, match="no such file"):
        read_history([tmp_path / "missing.csv"])
    with pytest.raises(DataError, match="no label column"):
        read_history([ms], label_column="lab")


def test_irregular_sampling_and_gaps_replay_through_the_engine(tmp_path: Path) -> None:
    """Jittered, partly 10 Hz, with a long gap and a signal silent for a while: windows are
    computed by the engine, NaN windows are flagged, nothing breaks."""
    rng = np.random.default_rng(0)
    t = np.concatenate([np.arange(0, 300, 1.0), np.arange(300, 360, 0.1), np.arange(900, 1200, 1.0)])
    t = t + rng.uniform(0, 0.05, len(t))
    lines = ["timestamp,a,b"]
    for x in t:
        b = "" if 1000 < x < 1100 else f"{np.cos(x):.3f}"
        lines.append(f"{1767592800 + x:.3f},{np.sin(x):.3f},{b}")
    p = _write(tmp_path, "irr.csv", "\n".join(lines) + "\n")
    h = read_history([p])
    prof = Profile(window_s=30, hop_s=1, max_rate_hz=10, signals={"a": {}, "b": {}})
    rec, _ = features_of(h, "p", prof)
    x = rec.matrix()
    assert x.shape[1] == 24 and len(x) > 500
    nan_rows = np.isnan(x).any(axis=1)
    assert nan_rows.any()  # b silent for > one window
    assert not nan_rows.all()
    count_b = x[:, 12 + 11]
    assert count_b.max() > 250  # the 10 Hz stretch fills a window with up to 300 samples
