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
AMBIENT_BAR = 1.01325
# The true pump figures a step knows (Pump.truth), named as the gateway's derived signals.
TRUTH = (
    "head_m",
    "hydraulic_kw",
    "electrical_kw",
    "efficiency",
    "pump_efficiency",
    "specific_kwh_m3",
    "bep_ratio",
    "npsh_available_m",
    "head_deficit_pct",
    "efficiency_deficit_pct",
)
VAPOUR_20C_BAR = 0.023392  # water at 20 degC (steam tables)
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
    demand_cut: float = 0.0  # share of the flow demand gone (a throttled valve: off the best efficiency point)
    head_loss: float = 0.0  # share of the curve's head lost (a worn impeller)
    efficiency_loss: float = 0.0  # share of the hydraulic efficiency lost (a worn impeller, internal leakage)
    strainer_drop: float = 0.0  # bar lost across a clogging suction strainer at rated flow (grows with flow^2)
    dry: float = 0.0  # share of the liquid gone from the inlet (dry run)


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
        self.truth: dict[str, float] = {}  # the last step's true pump figures (see `_truth`)

    # --------------------------------------------------------------- curves

    def _head(self, q: float) -> float:
        return max(self.spec.shutoff_head - self.spec.curve_k * q * q, 0.0)

    def _efficiency(self, q: float) -> float:
        x = (q - self.spec.rated_flow) / self.spec.rated_flow
        return max(self.spec.efficiency * (1.0 - x * x), 0.2)

    def _shaft_kw(self, q: float, head: float, efficiency_loss: float = 0.0) -> float:
        hydraulic = _RHO_G * (q / 3600.0) * head / 1000.0
        return hydraulic / (self._efficiency(q) * (1.0 - efficiency_loss)) + 1.2  # + friction and windage

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
        q_pump = s.rated_flow * demand * (1.0 - fx.demand_cut)
        suction = s.suction - fx.suction_drop - fx.strainer_drop * (q_pump / s.rated_flow) ** 2 + 0.01 * noise[1]
        # Cavitation sets in when the suction pressure falls below what the impeller needs.
        cav = min(max((0.75 - suction) / 0.45, 0.0), 1.0)
        head = self._head(q_pump) * (1.0 - 0.65 * cav * (1.0 + 0.15 * noise[3])) * (1.0 - fx.head_loss) * (1.0 - fx.dry)
        q_pump *= (1.0 - 0.25 * cav) * (1.0 - fx.dry)
        flow = q_pump - fx.leak
        flow *= 1.0 + 0.006 * (1.0 + fx.flow_noise + 10.0 * cav) * noise[2]
        discharge = suction + _RHO_G * head / 1e5 - 0.03 * fx.leak + 0.02 * noise[3]
        kw = self._shaft_kw(q_pump, head, fx.efficiency_loss) / (1.0 - 0.45 * cav) + fx.extra_power  # vapour churns, lifts little
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
        self.truth = self._truth(q_pump, max(flow, 0.0), head, kw, suction, fx)
        return {
            "vibration": max(vibration, 0.0),
            "pressure": discharge,
            "temperature": st.bearing_temp + 0.12 * noise[6],
            "flow": max(flow, 0.0),
            "current": current,
            "suction_pressure": suction,
            "motor_temperature": st.motor_temp + 0.12 * noise[7],
        }

    def _truth(
        self, q_pump: float, delivered: float, head: float, shaft_kw: float, suction: float, fx: Effects
    ) -> dict[str, float]:
        """What the gateway's pump figures should read (engine/pump.py), from the physics: the
        liquid at 20 degC, the motor at its rated efficiency."""
        s = self.spec
        hydraulic = _RHO_G * (q_pump / 3600.0) * head / 1000.0
        electrical = shaft_kw / s.motor_efficiency
        healthy_head = self._head(q_pump)
        return {
            "head_m": head,
            "hydraulic_kw": hydraulic,
            "electrical_kw": electrical,
            "efficiency": hydraulic / electrical if electrical > 0 else math.nan,
            "pump_efficiency": hydraulic / shaft_kw if shaft_kw > 0 else math.nan,
            "specific_kwh_m3": electrical / delivered if delivered > 0 else math.nan,
            "bep_ratio": q_pump / s.rated_flow,
            "npsh_available_m": (suction + AMBIENT_BAR - VAPOUR_20C_BAR) * 1e5 / _RHO_G,
            "head_deficit_pct": (1.0 - head / healthy_head) * 100.0 if healthy_head > 0 else math.nan,
            "efficiency_deficit_pct": fx.efficiency_loss * 100.0,
        }


def quantise(values: dict[str, float]) -> dict[str, float]:
    """Round each value to its transmitter's resolution, as a real 4-20 mA/fieldbus chain would."""
    out = {}
    for name, v in values.items():
        step = SIGNALS[name][1]
        out[name] = round(round(v / step) * step, 4)
    return out
