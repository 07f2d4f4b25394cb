"""The `pump:` description of a profile (overridable per asset): which signals are flow, pressures
and current, the liquid, the motor, the pump curve and the alarm limits a pump engineer sets.

Units are fixed so a figure is never ambiguous: flow m3/h, pressures bar gauge, head and NPSH m,
efficiency 0..1, temperature degC, density kg/m3, voltage V line to line, power kW.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import Field, ValidationError, model_validator

from edgegw.config.base import Base

# Derived signals and their units, in the order the engine computes them (also the rollup's keys).
DERIVED: dict[str, str] = {
    "head_m": "m",
    "hydraulic_kw": "kW",
    "electrical_kw": "kW",
    "efficiency": "1",  # wire to water: hydraulic / electrical
    "pump_efficiency": "1",  # hydraulic / (electrical x motor efficiency)
    "specific_kwh_m3": "kWh/m3",
    "bep_ratio": "1",  # flow / BEP flow
    "npsh_available_m": "m",
    "npsh_margin_m": "m",
    "head_deficit_pct": "%",
    "efficiency_deficit_pct": "%",
}


class DerivedLimit(Base):
    """hi/hihi/lo/lolo on a derived signal, as `signals:` has them for measured ones."""

    hi: float | None = None
    hihi: float | None = None
    lo: float | None = None
    lolo: float | None = None
    deadband: float = Field(0.0, ge=0)
    on_delay_s: float = Field(0.0, ge=0)
    off_delay_s: float = Field(0.0, ge=0)
    unit: str | None = Field(None, description="Set from the derived signal; not configurable.", exclude=True)

    @model_validator(mode="after")
    def _order(self) -> DerivedLimit:
        if self.hi is not None and self.hihi is not None and self.hihi < self.hi:
            raise ValueError("hihi must be >= hi")
        if self.lo is not None and self.lolo is not None and self.lolo > self.lo:
            raise ValueError("lolo must be <= lo")
        return self


class Motor(Base):
    voltage: float = Field(gt=0, le=100_000, description="Line-to-line supply voltage, V (3-phase).")
    power_factor: float = Field(0.85, gt=0, le=1, description="cos phi at the usual load.")
    efficiency: float = Field(0.9, gt=0, le=1, description="Motor efficiency (shaft / electrical).")


class Curve(Base):
    """The maker's curve as points at rising flow: m3/h -> m, 0..1, m."""

    flow: list[float] = Field(min_length=2, description="m3/h, strictly rising.")
    head: list[float] = Field(min_length=2, description="m at each flow, not rising (the stable part of the curve).")
    efficiency: list[float] | None = Field(None, description="Pump efficiency 0..1 at each flow.")
    npsh_required: list[float] | None = Field(None, description="NPSH required, m, at each flow.")

    @model_validator(mode="after")
    def _shape(self) -> Curve:
        n = len(self.flow)
        for name in ("head", "efficiency", "npsh_required"):
            v = getattr(self, name)
            if v is not None and len(v) != n:
                raise ValueError(f"{name}: {len(v)} point(s), flow has {n}: one value per flow point")
        if any(b <= a for a, b in zip(self.flow, self.flow[1:], strict=False)) or self.flow[0] < 0:
            raise ValueError("flow: must start at >= 0 and rise strictly (m3/h)")
        if any(b > a for a, b in zip(self.head, self.head[1:], strict=False)) or min(self.head) < 0:
            raise ValueError("head: must not rise with flow and must be >= 0 (m): give the stable part of the curve")
        if self.efficiency is not None and not all(0 <= e <= 1 for e in self.efficiency):
            raise ValueError("efficiency: each point must be within 0..1 (not %)")
        if self.efficiency is not None and max(self.efficiency) <= 0:
            raise ValueError("efficiency: at least one point must be above 0")
        if self.npsh_required is not None and min(self.npsh_required) <= 0:
            raise ValueError("npsh_required: each point must be > 0 (m)")
        return self


class Region(Base):
    preferred: tuple[float, float] = Field((0.7, 1.2), description="Preferred operating region, shares of BEP flow.")
    allowable: tuple[float, float] = Field((0.5, 1.3), description="Allowable operating region, shares of BEP flow.")
    delay_s: float = Field(900.0, ge=0, description="Outside the preferred region this long raises operating_region.")

    @model_validator(mode="after")
    def _order(self) -> Region:
        for name in ("preferred", "allowable"):
            lo, hi = getattr(self, name)
            if not 0 <= lo < hi:
                raise ValueError(f"{name}: [lo, hi] shares of BEP flow with 0 <= lo < hi (e.g. [0.7, 1.2])")
        if self.allowable[0] > self.preferred[0] or self.allowable[1] < self.preferred[1]:
            raise ValueError("allowable: must hold the preferred region")
        return self


class Npsh(Base):
    min_margin_m: float = Field(1.0, ge=0, description="NPSH available - required below this (m) raises npsh.")
    min_ratio: float | None = Field(None, ge=1, description="... or available / required below this ratio.")
    delay_s: float = Field(60.0, ge=0, description="The margin stays low this long to raise.")


class Wear(Base):
    head_deficit_pct: float | None = Field(5.0, gt=0, le=100, description="Head % under the curve that raises performance.")
    efficiency_deficit_pct: float | None = Field(
        10.0, gt=0, le=100, description="Pump efficiency under the curve by more than this % raises performance."
    )
    over_s: float = Field(86400.0, gt=0, description="Averaged over about this long (wear is slow).")


class DryRun(Base):
    max_flow_share: float = Field(0.05, ge=0, lt=1, description="Flow below this share of BEP flow while the motor runs.")
    delay_s: float = Field(10.0, ge=0, description="Held this long raises dry_run.")


class PumpSpec(Base):
    """What the gateway needs to know about one pump (units in the module's docstring)."""

    flow: str = Field(description="Signal: flow, m3/h.")
    discharge_pressure: str = Field(description="Signal: discharge pressure, bar gauge.")
    suction_pressure: str | None = Field(None, description="Signal: suction pressure, bar gauge (needed for NPSH).")
    current: str | None = Field(None, description="Signal: motor phase current, A (or give power).")
    power: str | None = Field(None, description="Signal: measured electrical input power, kW (instead of current).")
    liquid_temperature: float | str = Field(20.0, description="degC: a constant, or the signal that measures it.")
    density: float = Field(998.0, gt=100, le=5000, description="Liquid density, kg/m3.")
    ambient_pressure: float = Field(1.01325, gt=0.5, le=1.1, description="Ambient pressure, bar absolute.")
    motor: Motor | None = Field(None, description="Needed with current (voltage, power factor).")
    curve: Curve
    bep_flow: float | None = Field(None, gt=0, description="Best-efficiency flow, m3/h (default: the efficiency curve's top).")
    run_min_kw: float | None = Field(None, ge=0, description="Running above this input, kW (default: 5 % of BEP input).")
    suction_pipe_mm: float | None = Field(None, gt=0, description="Suction pipe bore, mm: velocity head in NPSH.")
    discharge_pipe_mm: float | None = Field(None, gt=0, description="Discharge pipe bore, mm: velocity heads in head.")
    gauge_elevation_m: float = Field(0.0, description="Discharge gauge height above the suction gauge, m (added to head).")
    region: Region = Field(default_factory=Region)
    npsh: Npsh = Field(default_factory=Npsh)
    wear: Wear = Field(default_factory=Wear)
    dry_run: DryRun = Field(default_factory=DryRun)
    limits: dict[str, DerivedLimit] = Field(default_factory=dict, description="Limits on derived signals.")

    @model_validator(mode="after")
    def _consistent(self) -> PumpSpec:
        if (self.current is None) == (self.power is None):
            raise ValueError("current: give current (with motor) or power, one of them")
        if self.current is not None and self.motor is None:
            raise ValueError("motor: needed with current (voltage, power_factor)")
        if self.bep_flow is None and self.curve.efficiency is None:
            raise ValueError("bep_flow: give it, or an efficiency curve to find it from")
        if self.bep_flow is not None and not self.curve.flow[0] < self.bep_flow <= self.curve.flow[-1]:
            lo, hi = self.curve.flow[0], self.curve.flow[-1]
            raise ValueError(f"bep_flow: {self.bep_flow:g} m3/h is outside the curve's flow ({lo:g}..{hi:g})")
        for name in self.limits:
            if name not in DERIVED:
                raise ValueError(f"limits.{name}: not a derived signal (have {', '.join(DERIVED)})")
            self.limits[name].unit = DERIVED[name]
        return self

    def signals(self) -> dict[str, str]:
        """Field -> signal name of every signal this description reads."""
        out = {k: getattr(self, k) for k in ("flow", "discharge_pressure", "suction_pressure", "current", "power")}
        if isinstance(self.liquid_temperature, str):
            out["liquid_temperature"] = self.liquid_temperature
        return {k: v for k, v in out.items() if v is not None}

    def check_signals(self, have: dict[str, Any]) -> None:
        """ValueError naming the field whose signal the profile does not have, or that collides."""
        for field, name in self.signals().items():
            if name not in have:
                raise ValueError(f"pump.{field}: signal {name!r} is not in this profile's signals (have {', '.join(have)})")
        for name in DERIVED:
            if name in have:
                raise ValueError(f"signals.{name}: the name of a derived pump signal: rename the measured one")


def asset_pump(base: PumpSpec | None, override: dict[str, Any]) -> PumpSpec:
    """A profile's description with an asset's keys laid over it (mappings merge, lists replace);
    ValueError naming the field as `pump.path: what`."""
    merged = _merge(base.model_dump() if base is not None else {}, override)
    try:
        return PumpSpec.model_validate(merged)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ValueError(f"pump{'.' + where if where else ''}: {err['msg'].removeprefix('Value error, ')}") from None


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def pumps_of(assets: list[Any], profiles: dict[str, Any]) -> dict[str, PumpSpec]:
    """Asset id -> its pump description (the profile's, with the asset's keys over it), for the
    assets that have one. The config validated each already."""
    out: dict[str, PumpSpec] = {}
    for a in assets:
        base = profiles[a.profile].pump
        if a.pump is not None:
            out[a.id] = asset_pump(base, a.pump)
        elif base is not None:
            out[a.id] = base
    return out
