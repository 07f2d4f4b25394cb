"""A small, seeded synthetic pump history with labelled fault periods.

Stands in for plant history where none is at hand (the shipped default model is trained on it
until simulator history replaces it). Wide CSV: timestamp, vibration, pressure, temperature,
flow, current, suction_pressure, label. Normal operation follows a load cycle with slow random
drift; faults are bearing wear (vibration, temperature and current creep up) and cavitation
(the suction pressure falls first, then pressure and flow drop and vibration turns spiky).
Sampling is 1 Hz with jitter and the odd gap.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

SIGNALS = ("vibration", "pressure", "temperature", "flow", "current", "suction_pressure")
FAULTS = ("bearing_wear", "cavitation")
START = datetime(2026, 1, 5, 6, 0, 0, tzinfo=UTC).timestamp()


def pump_history(
    seconds: int,
    seed: int,
    faults: bool = True,
    episodes: list[tuple[str, int, int]] | None = None,
    gaps: bool = True,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Timestamps (epoch s), values (n, 6) in SIGNALS order, and a label per row.

    `episodes` places faults explicitly as (kind, start_s, end_s); otherwise, with `faults`, one
    episode every three hours after the first hour (histories longer than four hours).
    """
    rng = np.random.default_rng(seed)
    n = int(seconds)
    t = START + np.arange(n) + rng.uniform(-0.05, 0.05, n)
    cycle = 1800.0 * (1 + 0.1 * rng.standard_normal())
    load = 0.75 + 0.2 * np.sin(2 * np.pi * np.arange(n) / cycle)
    load += np.cumsum(rng.normal(0, 0.0015, n)) * 0.05  # slow drift
    flow = 80 * load + rng.normal(0, 1.0, n)
    pressure = 6.5 - 1.8 * (load - 0.75) + rng.normal(0, 0.05, n)
    current = 22 + 18 * load + rng.normal(0, 0.4, n)
    temperature = 48 + 10 * load + np.cumsum(rng.normal(0, 0.02, n)) * 0.05 + rng.normal(0, 0.2, n)
    vibration = 2.6 + 0.8 * load + np.abs(rng.normal(0, 0.15, n))
    # its own stream, so the other signals stay what they were for a given seed
    srng = np.random.default_rng([seed, 1])
    suction = 1.2 + srng.normal(0, 0.01, n)
    labels = ["0"] * n
    if episodes is None:
        episodes = []
        if faults and n > 4 * 3600:
            # one episode per 3 hours, after a clean first hour, alternating kinds
            for k, start in enumerate(range(3600, n - 3600, 3 * 3600)):
                a = start + int(rng.integers(0, 1800))
                episodes.append((FAULTS[k % 2], a, a + int(rng.integers(1500, 2700))))
    for kind, a, b in episodes:
        b = min(b, n)
        ramp = np.linspace(0, 1, b - a)
        if kind == "bearing_wear":
            vibration[a:b] += 2.8 * ramp + np.abs(rng.normal(0, 0.5, b - a)) * ramp
            temperature[a:b] += 9 * ramp
            current[a:b] += 3 * ramp
        else:
            suction[a:b] -= 0.7 * np.minimum(1.0, 1.5 * ramp)
            level = np.minimum(1.0, 3 * ramp)
            pressure[a:b] -= 1.2 * level + np.abs(rng.normal(0, 0.3, b - a)) * level
            flow[a:b] -= 8 * level
            spikes = rng.random(b - a) < 0.15 * level
            vibration[a:b] += spikes * rng.uniform(1.0, 4.0, b - a)
        labels[a:b] = [kind] * (b - a)
    vals = np.stack([vibration, pressure, temperature, flow, current, suction], axis=1)
    keep = np.ones(n, dtype=bool)
    for _ in range(max(1, n // 7200) if gaps else 0):  # a gap now and then, as historians have
        g = int(rng.integers(0, n))
        keep[g : g + int(rng.integers(5, 90))] = False
    idx = np.flatnonzero(keep)
    return t[idx], vals[idx], [labels[i] for i in idx]


def write_csv(
    path: str | Path,
    seconds: int,
    seed: int,
    faults: bool = True,
    episodes: list[tuple[str, int, int]] | None = None,
    gaps: bool = True,
) -> Path:
    """Write pump_history() as a wide CSV with ISO timestamps (UTC, no zone, as historians export)."""
    ts, vals, labels = pump_history(seconds, seed, faults, episodes, gaps)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["timestamp", *SIGNALS, "label"])
        for t, row, lab in zip(ts, vals, labels, strict=True):
            stamp = datetime.fromtimestamp(float(t), UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
            w.writerow([stamp, *(f"{v:.3f}" for v in row), lab])
    return p
