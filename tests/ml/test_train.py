"""`edgegw train`: history in, a model directory the daemon loads; deterministic for a seed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgegw.cli import main as cli_main
from edgegw.config import Profile
from edgegw.engine.features import feature_names
from edgegw.engine.models import load_model_set
from tests.ml.modelkit import SIGNALS, history_csv, model_dir

CONFIG = """
profiles:
  pump:
    window_s: 20
    hop_s: 2
    model_alarms: {on_delay_s: 4, off_delay_s: 8, failure_threshold: 0.7}
    signals:
      vibration: {unit: mm/s}
      temperature: {unit: degC}
      current: {unit: A}
assets:
  - {id: p1, profile: pump}
"""


def test_train_writes_a_loadable_model_with_metadata(capsys: pytest.CaptureFixture[str]) -> None:
    d = model_dir()
    meta = json.loads((d / "model.json").read_text())
    assert meta["signals"] == SIGNALS and meta["window_s"] == 30 and meta["hop_s"] == 1
    assert meta["feature_names"] == feature_names(SIGNALS)
    assert "vibration.count" not in meta["anomaly"]["features_used"]
    assert 0 < meta["anomaly"]["threshold"] < 1
    assert len(meta["anomaly"]["training_stats"]["mean"]) == len(meta["feature_names"])
    assert meta["failure_risk"]["classes"] == ["0", "bearing_wear", "cavitation"]
    assert len(meta["data"]["fingerprint"]) == 64 and meta["library_versions"]["scikit-learn"]
    assert (d / "anomaly.onnx").is_file() and (d / "failure.onnx").is_file()
    profile = Profile(window_s=30, signals={s: {} for s in SIGNALS})
    ms = load_model_set(d, "pump", profile)
    assert ms.version == meta["version"]


def test_report_and_determinism(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outs = []
    for k in range(2):
        out = tmp_path / f"m{k}"
        argv = ["train", "--data", str(history_csv()), "--out", str(out), "--seed", "3", "--trees", "20", "--no-labels"]
        assert cli_main(argv) == 0
        outs.append(out)
    report = capsys.readouterr().out
    assert "threshold" in report and "held-out normal windows above threshold" in report
    assert (outs[0] / "anomaly.onnx").read_bytes() == (outs[1] / "anomaly.onnx").read_bytes()
    assert not (outs[0] / "failure.onnx").exists()  # no labels, no classifier
    other = tmp_path / "seed4"
    argv = ["train", "--data", str(history_csv()), "--out", str(other), "--seed", "4", "--trees", "20", "--no-labels"]
    assert cli_main(argv) == 0
    assert (other / "anomaly.onnx").read_bytes() != (outs[0] / "anomaly.onnx").read_bytes()


def test_labelled_training_reports_per_class_scores() -> None:
    out = (model_dir() / "train-report.txt").read_text()
    assert "bearing_wear: precision" in out and "cavitation: precision" in out


def test_profile_from_config(tmp_path: Path) -> None:
    cfg = tmp_path / "gw.yaml"
    cfg.write_text(CONFIG)
    out = tmp_path / "m"
    argv = ["train", "--data", str(history_csv()), "--out", str(out), "-c", str(cfg), "--profile", "pump", "--trees", "20"]
    assert cli_main(argv) == 0
    meta = json.loads((out / "model.json").read_text())
    assert meta["name"] == "pump" and meta["signals"] == ["vibration", "temperature", "current"]
    assert meta["window_s"] == 20 and meta["hop_s"] == 2
    assert meta["units"] == {"vibration": "mm/s", "temperature": "degC", "current": "A"}
    assert meta["model_alarms"]["on_delay_s"] == 4 and meta["failure_risk"]["threshold"] == 0.7


def test_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "gw.yaml"
    cfg.write_text(CONFIG.replace("current: {unit: A}", "current: {unit: A}\n      speed: {unit: rpm}"))
    base = ["train", "--data", str(history_csv()), "--out", str(tmp_path / "m")]
    assert cli_main([*base, "-c", str(cfg)]) == 1
    assert "speed" in capsys.readouterr().err
    assert cli_main([*base, "--profile", "pump"]) == 1
    assert "--profile needs -c" in capsys.readouterr().err
    short = tmp_path / "short.csv"
    short.write_text("timestamp,a\n" + "".join(f"{1767592800 + i},{np.sin(i)}\n" for i in range(100)))
    assert cli_main(["train", "--data", str(short), "--out", str(tmp_path / "m2")]) == 1
    assert "too few normal windows" in capsys.readouterr().err
    assert cli_main([*base, "--window-s", "25", "--hop-s", "2"]) == 1  # a message, not a traceback
    assert "whole multiple of hop_s" in capsys.readouterr().err


def test_synthetic_history_without_data(tmp_path: Path) -> None:
    out = tmp_path / "syn"
    keep = tmp_path / "syn.csv"
    argv = ["train", "--synthetic", "5400", "--seed", "1", "--out", str(out), "--trees", "20", "--save-data", str(keep)]
    assert cli_main(argv) == 0
    meta = json.loads((out / "model.json").read_text())
    assert meta["signals"] == SIGNALS and keep.is_file()
    assert not list(out.glob("*.csv"))
