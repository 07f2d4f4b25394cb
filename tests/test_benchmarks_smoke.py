"""The benchmark scripts still run end to end and write their JSON (tiny sizes; no figures are
judged here: benchmarks report times, tests never assert them). They write into the test's
temporary directory ($EDGEGW_BENCH_RESULTS), never into the checkout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"


def run_bench(results: Path, script: str, name: str, *args: str, timeout: float = 90) -> dict:
    r = subprocess.run(
        [sys.executable, str(BENCH / script), "--name", name, *args],
        cwd=ROOT,
        env={**os.environ, "EDGEGW_BENCH_RESULTS": str(results)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert not (BENCH / "results" / f"{name}.json").exists()
    return json.loads((results / f"{name}.json").read_text())


def test_hotpath_bench_writes_json(tmp_path: Path) -> None:
    d = run_bench(tmp_path, "bench_hotpath.py", "_smoke_hotpath", "--messages", "2000", "--repeat", "1", "--assets", "5")
    assert [r["model"] for r in d["rows"]] == [False, True]
    assert all(r["us_per_message"] > 0 for r in d["rows"])


@pytest.mark.skipif(not (shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists()), reason="needs mosquitto")
def test_ingest_bench_runs_the_three_subscribers(tmp_path: Path) -> None:
    d = run_bench(
        tmp_path,
        "bench_ingest.py",
        "_smoke_ingest",
        "--burst",
        "1500",
        "--steps",
        "0.2",
        "--seconds",
        "1",
        "--assets",
        "5",
        timeout=120,
    )
    assert set(d["burst"]) == {"aiomqtt", "paho", "gateway"}
    for client in ("aiomqtt", "paho", "gateway"):
        assert d["burst"][client]["lost"] == 0, d["burst"][client]
        assert len(d["sweep"][client]) == 1


def test_pump_bench_writes_json(tmp_path: Path) -> None:
    d = run_bench(tmp_path, "bench_pump.py", "_smoke_pump", "--seconds", "40", "--assets", "3")
    assert [r["model"] for r in d["rows"]] == [True, False]
    assert all(r["plain_mean_us"] > 0 and r["pump_mean_us"] > 0 for r in d["rows"])
    assert d["forecast"]["rows"] == 3 * 6  # 3 pumps x the example's 6 signals with a limit
