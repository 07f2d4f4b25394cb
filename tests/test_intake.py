"""Intake on a running loop: when hop work runs relative to the readings that made it due."""

from __future__ import annotations

import asyncio
import math
import time

import numpy as np

from edgegw.config import load_config
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
