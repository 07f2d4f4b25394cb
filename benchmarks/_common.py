"""Shared bits for benchmark scripts: where results go, percentiles, machine facts.

Results go to benchmarks/results/, or to $EDGEGW_BENCH_RESULTS when set (the smoke test writes
to a temporary directory). Importing this module also puts the repository root on sys.path, so
the scripts can start the peers the tests start (tests/peers.py).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(os.environ.get("EDGEGW_BENCH_RESULTS") or ROOT / "benchmarks" / "results")
if str(ROOT) not in sys.path:
    sys.path.insert(1, str(ROOT))


def pct(samples_s: list[float] | np.ndarray, q: float) -> float:
    """Percentile in microseconds."""
    return float(np.percentile(np.asarray(samples_s) * 1e6, q))


def timed(fn: Callable[[], object], repeat: int, warm: int = 50) -> list[float]:
    """Wall time of each of `repeat` calls, after `warm` untimed ones."""
    for _ in range(warm):
        fn()
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write(name: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **result}, indent=2))
    return path
