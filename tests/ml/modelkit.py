"""A small trained model directory, built once per test process from seeded synthetic history."""

from __future__ import annotations

import contextlib
import functools
import io
import tempfile
from pathlib import Path

from edgegw.cli import main as cli_main
from edgegw.ml.synthetic import write_csv

SIGNALS = ["vibration", "pressure", "temperature", "flow", "current", "suction_pressure"]


@functools.cache
def workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="edgegw-models-"))


@functools.cache
def history_csv() -> Path:
    """2 h of normal history with one labelled bearing-wear and one cavitation episode."""
    return write_csv(
        workdir() / "train.csv",
        7200,
        seed=11,
        episodes=[("bearing_wear", 2400, 3600), ("cavitation", 5000, 6000)],
    )


@functools.cache
def fault_csv() -> Path:
    """1 h with a bearing-wear episode from 30 to 50 min."""
    return write_csv(workdir() / "test.csv", 3600, seed=12, episodes=[("bearing_wear", 1800, 3000)])


@functools.cache
def model_dir(labelled: bool = True) -> Path:
    out = workdir() / ("model" if labelled else "model-unlabelled")
    argv = ["train", "--data", str(history_csv()), "--out", str(out), "--seed", "0"]
    if not labelled:
        argv.append("--no-labels")
    report = io.StringIO()
    with contextlib.redirect_stdout(report):
        assert cli_main(argv) == 0
    (out / "train-report.txt").write_text(report.getvalue())
    return out
