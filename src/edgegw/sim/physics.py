"""One centrifugal pump's physics, compressed in time so a fault develops in tens of seconds.

The operating point follows a load cycle (flow demand); head follows the pump curve, power the
hydraulic load over efficiency, motor current the power over voltage and power factor, and the
temperatures settle towards their load-dependent targets with thermal lag. Faults act through
`Effects`, so each one changes the physics in its own way rather than painting on a signal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

# Signals a simulated pump reports: name -> (unit, quantisation step of its transmitter).
SIGNALS: dict[str, tuple[str, float]] = {
    "vibration": ("mm/s", 0.01),  # velocity RMS at the drive-end bearing
    "pressure": ("bar", 0.01),  # discharge pressure
    "temperature": ("degC", 0.1),  # drive-end bearing temperature
    "flow": ("m3/h", 0.1),
    "current": ("A", 0.1),  # motor phase current
    "suction_pressure": ("bar", 0.01),
    "motor_temperature": ("degC", 0.1),  # stator winding
}

_RHO_G = 1000.0 * 9.81  # water, N/m3
_SQRT3 = math.sqrt(3.0)


@dataclass(slots=True)
class PumpSpec:
    """Name-plate and installation of one pump; defaults give about 60 m3/h at 4.5 bar, 30 A."""

    rated_flow: float = 60.0  # m3/h, best efficiency point
    shutoff_head: float = 52.0  # m, head at zero flow
    curve_k: float = 0.0044  # m per (m3/h)^2: head = shutoff_head - k Q^2
    efficiency: float = 0.74  # hydraulic efficiency at the best efficiency point
    voltage: float = 230.0  # V line-to-line, 3-phase
    power_factor: float = 0.86
    motor_efficiency: float = 0.9
    magnetising_a: float = 8.0  # A, no-load current
    rated_current: float = 40.0  # A, name plate
    ambient: float = 25.0  # degC
    suction: float = 1.2  # bar, from the feed tank level
    base_vibration: float = 2.2  # mm/s at the best efficiency point
    bearing_tau_s: float = 40.0  # s, thermal lag of the bearing housing (compressed)
    motor_tau_s: float = 60.0  # s, thermal lag of the winding (compressed)
    cycle_s: float = 900.0  # s, period of the load cycle (compressed day)
    load_swing: float = 0.15  # +- fraction of rated flow over the cycle


@dataclass(slots=True)
class Effects:
    """What active faults do to the physics at one instant; all zero for a healthy pump."""

    vib_add: float = 0.0  # mm/s added to the vibration level
    vib_noise: float = 0.0  # extra relative spread of vibration (broadband content)
    vib_impulse: float = 0.0  # probability per sample of an impact burst (bearing defects)
    bearing_heat: float = 0.0  # degC added to the bearing's settling temperature
    suction_drop: float = 0.0  # bar lost on the suction side
    flow_noise: float = 0.0  # extra relative spread of flow (vapour pockets)
    leak: float = 0.0  # m3/h lost through a seal before the flow meter
    extra_power: float = 0.0  # kW of extra shaft load (binding, overload)
    motor_heat: float = 0.0  # degC added to the winding's settling temperature


@dataclass(slots=True)
class PumpState:
    bearing_temp: float
    motor_temp: float
    demand: float = 0.0  # slow random wander of the flow demand, fraction of rated flow
    extras: dict[str, float] = field(default_factory=dict)


class Pump:
    """A pump whose `step()` returns one set of true (not yet quantised) signal values."""

    def __init__(self, asset: str, spec: PumpSpec, rng: np.random.Generator, phase: float) -> None:
        self.asset = asset
        self.spec = spec
        self.rng = rng
        self.phase = phase
        self.state = PumpState(math.nan, math.nan)  # settled at the first step's operating point

    # --------------------------------------------------------------- curves

    def _head(self, q: float) -> float:
        return max(self.spec.shutoff_head - self.spec.curve_k * q * q, 0.0)

    def _efficiency(self, q: float) -> float:
        x = (q - self.spec.rated_flow) / self.spec.rated_flow
        return max(self.spec.efficiency * (1.0 - x * x), 0.2)

    def _shaft_kw(self, q: float, head: float) -> float:
        hydraulic = _RHO_G * (q / 3600.0) * head / 1000.0
        return hydraulic / self._efficiency(q) + 1.2  # + friction and windage

    def _current(self, kw: float) -> float:
        s = self.spec
        load = kw * 1000.0 / (_SQRT3 * s.voltage * s.power_factor * s.motor_efficiency)
        return math.hypot(load, s.magnetising_a)

    def _bearing_target(self, q: float, heat: float) -> float:
        return self.spec.ambient + 27.0 + 5.0 * q / self.spec.rated_flow + heat

    def _motor_target(self, current: float, heat: float) -> float:
        return self.spec.ambient + 55.0 * (current / self.spec.rated_current) ** 2 + heat

    # --------------------------------------------------------------- one step

    def step(self, t: float, dt: float, fx: Effects) -> dict[str, float]:
        s, st, rng = self.spec, self.state, self.rng
        noise = rng.standard_normal(8)
        # Load cycle: a slow sine plus an Ornstein-Uhlenbeck wander of the demand.
        st.demand += -st.demand * dt / 60.0 + 0.01 * math.sqrt(dt) * noise[0]
        demand = 1.0 + s.load_swing * math.sin(2.0 * math.pi * t / s.cycle_s + self.phase) + st.demand
        q_pump = s.rated_flow * demand
        suction = s.suction - fx.suction_drop + 0.01 * noise[1]
        # Cavitation sets in when the suction pressure falls below what the impeller needs.
        cav = min(max((0.75 - suction) / 0.45, 0.0), 1.0)
        head = self._head(q_pump) * (1.0 - 0.65 * cav * (1.0 + 0.15 * noise[3]))
        q_pump *= 1.0 - 0.25 * cav
        flow = q_pump - fx.leak
        flow *= 1.0 + 0.006 * (1.0 + fx.flow_noise + 10.0 * cav) * noise[2]
        discharge = suction + _RHO_G * head / 1e5 - 0.03 * fx.leak + 0.02 * noise[3]
        kw = self._shaft_kw(q_pump, head) / (1.0 - 0.45 * cav) + fx.extra_power  # vapour churns, lifts little
        current = self._current(kw) * (1.0 + 0.004 * noise[4])
        off_bep = (q_pump - s.rated_flow) / s.rated_flow
        level = s.base_vibration * (1.0 + 1.5 * off_bep * off_bep) + fx.vib_add + 3.0 * cav
        spread = 0.04 * (1.0 + fx.vib_noise + 5.0 * cav)
        vibration = level * (1.0 + spread * noise[5])
        if fx.vib_impulse and rng.random() < fx.vib_impulse:
            vibration += level * rng.uniform(0.3, 0.8)
        if math.isnan(st.bearing_temp):  # a pump that has been running: no warm-up transient
            st.bearing_temp = self._bearing_target(q_pump, 0.0)
            st.motor_temp = self._motor_target(current, 0.0)
        k_b = 1.0 - math.exp(-dt / s.bearing_tau_s)
        k_m = 1.0 - math.exp(-dt / s.motor_tau_s)
        st.bearing_temp += k_b * (self._bearing_target(q_pump, fx.bearing_heat) - st.bearing_temp)
        st.motor_temp += k_m * (self._motor_target(current, fx.motor_heat) - st.motor_temp)
        return {
            "vibration": max(vibration, 0.0),
            "pressure": discharge,
            "temperature": st.bearing_temp + 0.12 * noise[6],
            "flow": max(flow, 0.0),
            "current": current,
            "suction_pressure": suction,
            "motor_temperature": st.motor_temp + 0.12 * noise[7],
        }


def quantise(values: dict[str, float]) -> dict[str, float]:
    """Round each value to its transmitter's resolution, as a real 4-20 mA/fieldbus chain would."""
    out = {}
    for name, v in values.items():
        step = SIGNALS[name][1]
        out[name] = round(round(v / step) * step, 4)
    return out
