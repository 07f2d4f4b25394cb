"""`edgegw backtest`: history through the exact engine, one output row per input row."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from edgegw.cli import main as cli_main
from edgegw.ml.backtest import COLUMNS
from edgegw.ml.synthetic import write_csv
from tests.ml.modelkit import fault_csv, model_dir

ROOT = Path(__file__).resolve().parents[2]


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_backtest_with_model_dir_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "scores.csv"
    assert cli_main(["backtest", "--model", str(model_dir()), "--data", str(fault_csv()), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    rows = _rows(out)
    with fault_csv().open() as f:
        src = list(csv.DictReader(f))
    assert tuple(rows[0]) == COLUMNS
    assert len(rows) == len(src) and [r["timestamp"] for r in rows] == [r["timestamp"] for r in src]
    assert rows[0]["anomaly_score"] == ""  # nothing scored before the first full window
    fault = [r for r, s in zip(rows, src, strict=True) if s["label"] != "0"]
    normal = [r for r, s in zip(rows, src, strict=True) if s["label"] == "0"]
    assert sum(r["anomaly"] == "1" for r in fault) / len(fault) > 0.6
    assert sum(r["anomaly"] == "1" for r in normal) / len(normal) < 0.05
    assert sum(r["failure"] == "1" for r in fault) / len(fault) > 0.5
    assert all(r["threshold"] == "0" for r in rows)  # no limits without a config
    assert "precision" in text and "fault 'bearing_wear'" in text and "detected after" in text


def test_backtest_with_the_example_config_and_shipped_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The example config's `pump` profile with models/pump: limits, model and delays as in the daemon."""
    data = write_csv(tmp_path / "h.csv", 2400, seed=21, episodes=[("bearing_wear", 900, 2400)], gaps=False)
    out = tmp_path / "scores.csv"
    text = (ROOT / "config/example.yaml").read_text()
    assert "hi: 7.1," in text and "model: models/pump" in text
    cfg = tmp_path / "gw.yaml"  # the example, with a vibration limit the wear will cross
    cfg.write_text(text.replace("hi: 7.1,", "hi: 5.5,").replace("model: models/pump", f"model: {ROOT / 'models/pump'}"))
    argv = ["backtest", "-c", str(cfg), "--asset", "pump-2", "--data", str(data), "--out", str(out)]
    assert cli_main(argv) == 0
    rows = _rows(out)
    assert {r["asset"] for r in rows} == {"pump-2"}
    assert any(r["anomaly"] == "1" for r in rows[1800:])
    assert any(r["threshold"] == "1" for r in rows[2200:])  # vibration climbs past its hi limit
    assert "alarms raised" in capsys.readouterr().out


def test_backtest_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "o.csv")
    assert cli_main(["backtest", "--data", str(fault_csv()), "--out", out]) == 2
    assert cli_main(["backtest", "--model", str(tmp_path), "--data", str(fault_csv()), "--out", out]) == 1
    assert "not a model directory" in capsys.readouterr().err
    cfg = ROOT / "config/example.yaml"
    assert cli_main(["backtest", "-c", str(cfg), "--asset", "nope", "--data", str(fault_csv()), "--out", out]) == 1
    assert "no asset 'nope'" in capsys.readouterr().err


def test_plot(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    png = tmp_path / "run.png"
    argv = [
        "backtest",
        "--model",
        str(model_dir()),
        "--data",
        str(fault_csv()),
        "--out",
        str(tmp_path / "o.csv"),
        "--plot",
        str(png),
    ]
    assert cli_main(argv) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
