"""The benchmark scripts still run end to end and write their JSON (tiny sizes; no figures are
judged here: benchmarks report times, tests never assert them)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
RESULTS = BENCH / "results"


def run_bench(script: str, name: str, *args: str, timeout: float = 90) -> dict:
    out = RESULTS / f"{name}.json"
    try:
        r = subprocess.run(
            [sys.executable, str(BENCH / script), "--name", name, *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        return json.loads(out.read_text())
    finally:
        out.unlink(missing_ok=True)


def test_hotpath_bench_writes_json() -> None:
    d = run_bench("bench_hotpath.py", "_smoke_hotpath", "--messages", "2000", "--repeat", "1", "--assets", "5")
    assert [r["model"] for r in d["rows"]] == [False, True]
    assert all(r["us_per_message"] > 0 for r in d["rows"])


@pytest.mark.skipif(not (shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists()), reason="needs mosquitto")
def test_ingest_bench_runs_the_three_subscribers() -> None:
    d = run_bench(
        "bench_ingest.py", "_smoke_ingest", "--burst", "1500", "--steps", "0.2", "--seconds", "1", "--assets", "5", timeout=120
    )
    assert set(d["burst"]) == {"aiomqtt", "paho", "gateway"}
    for client in ("aiomqtt", "paho", "gateway"):
        assert d["burst"][client]["lost"] == 0, d["burst"][client]
        assert len(d["sweep"][client]) == 1
