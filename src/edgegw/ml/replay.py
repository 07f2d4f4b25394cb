"""History through the real engine, at full speed: the one way training and backtest see windows.

Training collects the feature rows the engine computes on each hop (via `hop_observer`), so a
model is fitted on exactly what the daemon will score; backtest also gets the engine's alerts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from edgegw.config import GatewayConfig, Profile
from edgegw.engine.engine import Engine
from edgegw.engine.models import ModelSet, Verdict
from edgegw.ml.datasets import History
from edgegw.records import Alert


def profile_config(name: str, profile: Profile, assets: Sequence[str]) -> GatewayConfig:
    """A gateway config holding just one profile and the given assets (no sources, no sinks)."""
    return GatewayConfig.model_validate(
        {
            "profiles": {name: profile.model_dump()},
            "assets": [{"id": a, "profile": name} for a in assets],
        }
    )


def replay(
    history: History,
    engine: Engine,
    asset_ids: Sequence[str],
    after_row: Callable[[int], None] | None = None,
) -> None:
    """Feed every row to the engine in time order, running due hops after each row.

    asset_ids[k] is the engine asset that history asset k is fed to. Signals the engine's
    profile does not know are not fed (they are not part of its windows).
    """
    names = history.signals
    ingest = engine.ingest
    known = [[j for j, s in enumerate(names) if s in engine.assets[a].signals] for a in asset_ids]
    ts = history.ts.tolist()
    aidx = history.asset.tolist()
    vals = history.values.tolist()
    for i in range(len(ts)):
        k = aidx[i]
        a = asset_ids[k]
        row = vals[i]
        t = ts[i]
        for j in known[k]:
            v = row[j]
            if v == v:  # not NaN
                ingest(a, names[j], t, v)
        if engine.due:
            engine.run_hops()
        if after_row is not None:
            after_row(i)


class HopRecorder:
    """A hop observer that keeps every hop's features (and verdicts) with its asset and end time."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.assets: list[str] = []
        self.ends: list[float] = []
        self.warm: list[bool] = []
        self.rows: list[np.ndarray] = []
        self.verdicts: list[list[Verdict] | None] = []
        engine.hop_observer = self

    def __call__(
        self, profile: str, asset_ids: list[str], ends: np.ndarray, x: np.ndarray, verdicts: list[list[Verdict]] | None
    ) -> None:
        p = self.engine.profiles[profile]
        for i, a in enumerate(asset_ids):
            first = self.engine.assets[a].first_ts
            self.assets.append(a)
            self.ends.append(float(ends[i]))
            self.warm.append(float(ends[i]) - first >= p.window_s - p.hop_s)
            self.rows.append(x[i].copy())
            self.verdicts.append(verdicts[i] if verdicts is not None else None)

    def matrix(self) -> np.ndarray:
        if not self.rows:
            return np.empty((0, 0))
        return np.vstack(self.rows)


def null_emit(_: Alert) -> None:
    """An alert sink that drops everything (training does not need alerts)."""


def features_of(
    history: History, name: str, profile: Profile, models: dict[str, ModelSet] | None = None
) -> tuple[HopRecorder, list[str]]:
    """Replay history through a fresh engine for `profile` and record every hop."""
    ids = list(history.assets)
    engine = Engine(profile_config(name, profile, ids), null_emit, models=models or {}, clock=_zero)
    rec = HopRecorder(engine)
    replay(history, engine, ids)
    return rec, ids


def _zero() -> float:
    return 0.0


__all__ = ["HopRecorder", "features_of", "profile_config", "replay"]
