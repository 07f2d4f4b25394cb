"""Intake on a running loop: when hop work runs relative to the readings that made it due."""

from __future__ import annotations

import asyncio
import math
import time

import numpy as np
import pytest

from edgegw.config import load_config
from edgegw.engine import window
from edgegw.engine.engine import Engine
from edgegw.intake import Intake
from tests.helpers import EXAMPLE


async def test_assets_crossing_a_boundary_are_scored_in_one_batch_with_stragglers() -> None:
    """Pumps cross a hop boundary one message at a time; they are scored together, and a reading
    stamped before the boundary that arrives just after the others crossed is still in its window."""
    cfg = load_config(EXAMPLE, ["profiles.pump.model=null"])
    engine = Engine(cfg, lambda a: None)
    intake = Intake(engine, cfg.ingest)
    batches: list[tuple[list[str], np.ndarray]] = []
    engine.hop_observer = lambda profile, ids, ends, x, verdicts: batches.append((ids, x.copy()))
    pumps = list(engine.assets)
    t0 = math.floor(time.time()) - 5.0
    for a in pumps:
        for s in ("vibration", "pressure"):
            intake.put(a, s, t0 + 0.5, 3.0)
    for a in pumps:  # each pump's next message is past the boundary t0 + 1
        intake.put(a, "vibration", t0 + 1.01, 3.0)
        await asyncio.sleep(0.003)
    intake.put(pumps[0], "pressure", t0 + 0.9, 4.0)  # late, but stamped inside the window
    await asyncio.sleep(intake.grace_s + 0.1)
    assert [ids for ids, _ in batches] == [pumps]
    x = batches[0][1]
    names = engine.feature_names("pump")
    assert x[0, names.index("pressure.count")] == 2 and x[1, names.index("pressure.count")] == 1
    assert x[0, names.index("pressure.last")] == 4.0


async def test_window_tails_are_built_between_hops_not_in_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """After the last hop of a segment the intake builds the next hop's tail tables half a hop
    later, so that hop only combines (and its windows are whole)."""
    monkeypatch.setattr(window, "PARTS_MIN", 0)  # four pumps would sum their buckets directly
    builds: list[int] = []
    real = window.Windows.build_tail
    monkeypatch.setattr(window.Windows, "build_tail", lambda self, seg, rows: (builds.append(len(rows)), real(self, seg, rows)))
    cfg = load_config(EXAMPLE, ["profiles.pump.model=null"])
    engine = Engine(cfg, lambda a: None)
    intake = Intake(engine, cfg.ingest)
    got: list[np.ndarray] = []
    engine.hop_observer = lambda profile, ids, ends, x, verdicts: got.append(x.copy())
    win = engine._windows["pump"]
    nb = win.n_buckets
    pumps = list(engine.assets)
    vibration = np.arange(len(pumps)) * len(engine.profiles["pump"].signals)  # the rows that report
    start = (math.floor(time.time() / nb) - 3) * nb  # a segment boundary, three segments ago
    for t in range(start - nb, start + 1):  # up to the hop ending at the boundary (one whole segment)
        for a in pumps:
            intake.put(a, "vibration", t + 0.5, float(t % 7))
        await asyncio.sleep(0)
    await asyncio.sleep(intake.grace_s + 0.02)
    assert got and not builds  # that hop needed no tail
    await asyncio.sleep(intake.prepare_s)
    assert builds == [len(pumps)] and win.tail_seg == start // nb - 1 and win.tail_ok[vibration].all()
    for a in pumps:
        intake.put(a, "vibration", start + 1.5, 1.0)  # the hop ending at start + 1 reads the tails
    await asyncio.sleep(intake.grace_s + 0.02)
    assert builds == [len(pumps)] and win.exact_rows == 0
    assert got[-1][:, engine.feature_names("pump").index("vibration.count")].tolist() == [nb] * len(pumps)
