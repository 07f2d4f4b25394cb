"""A fleet of simulated pumps stepping together, each deterministic from (seed, its position).

Every pump draws from its own random stream, so adding a pump or a fault on one pump leaves the
others' signals unchanged: a seed names one plant history.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from edgegw.sim.faults import NORMAL, Fault, SensorFaults, effects
from edgegw.sim.physics import Pump, PumpSpec, quantise

# Payload field order: the five signals the example config maps first, then the extras.
REPORTED = ("vibration", "pressure", "temperature", "flow", "current", "suction_pressure", "motor_temperature")


@dataclass(slots=True)
class Sample:
    """One pump's reported values at simulation time t; `label` names the fault behind them."""

    asset: str
    t: float
    values: dict[str, float]  # a dropped-out signal is absent
    label: str
    truth: dict[str, float] = field(default_factory=dict)  # the true pump figures (Pump._truth)


class Fleet:
    """Pumps, their faults, and the simulation clock (seconds since start, `1/rate_hz` per step)."""

    def __init__(
        self,
        assets: Sequence[str],
        faults: Sequence[Fault] = (),
        seed: int = 0,
        rate_hz: float = 2.0,
        spec: PumpSpec | None = None,
    ) -> None:
        if rate_hz <= 0:
            raise ValueError("rate_hz must be > 0")
        unknown = {f.asset for f in faults} - set(assets)
        if unknown:
            raise ValueError(f"faults on unknown assets: {', '.join(sorted(unknown))}")
        self.assets = list(assets)
        self.faults = sorted(faults, key=lambda f: f.start_s)
        self.rate_hz = rate_hz
        self.dt = 1.0 / rate_hz
        self.steps = 0
        base = spec or PumpSpec()
        self.pumps: list[Pump] = []
        self._faults: list[list[Fault]] = []
        self._sensor: list[SensorFaults] = []
        for i, (asset, ss) in enumerate(zip(self.assets, np.random.SeedSequence(seed).spawn(len(self.assets)), strict=True)):
            rng, sensor_rng = (np.random.default_rng(s) for s in ss.spawn(2))
            variant = replace(
                base,
                base_vibration=base.base_vibration * float(rng.uniform(0.9, 1.12)),
                suction=base.suction + float(rng.uniform(-0.08, 0.1)),
                ambient=base.ambient + float(rng.uniform(-3.0, 3.0)),
                rated_flow=base.rated_flow * float(rng.uniform(0.95, 1.05)),
            )
            phase = 2.0 * math.pi * (i / max(len(self.assets), 1)) + float(rng.uniform(-0.3, 0.3))
            self.pumps.append(Pump(asset, variant, rng, phase))
            mine = [f for f in self.faults if f.asset == asset]
            self._faults.append(mine)
            self._sensor.append(SensorFaults(mine, sensor_rng))

    @property
    def t(self) -> float:
        """Simulation time of the next step."""
        return self.steps * self.dt

    def label(self, index: int, t: float) -> str:
        """The fault behind pump `index`'s values at t, from the moment it shows (its onset)."""
        for f in self._faults[index]:
            if f.evident(t):
                return f.mode
        return NORMAL

    def step(self) -> list[Sample]:
        """Advance one sample period; one Sample per pump."""
        t = self.t
        out = []
        for i, pump in enumerate(self.pumps):
            fx = effects(self._faults[i], t)
            values = quantise(pump.step(t, self.dt, fx))
            values = self._sensor[i].apply(t, values)
            out.append(Sample(pump.asset, t, values, self.label(i, t), pump.truth))
        self.steps += 1
        return out

    def active_faults(self, t: float) -> list[Fault]:
        return [f for f in self.faults if f.active(t)]
