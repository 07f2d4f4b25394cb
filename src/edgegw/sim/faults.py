"""Fault modes and the schedule that injects them.

A process fault develops over `ramp_s` (severity 0 -> 1) and acts on the pump's physics through
`Effects`; a sensor fault acts on one reported signal after the physics. Each mode has its own
signature, so a classifier can tell them apart:

- bearing_wear: vibration creeps up with impacts, the bearing temperature follows late
- cavitation: suction pressure falls, head and flow collapse and flicker, broadband vibration
- impeller_imbalance: a vibration step
- seal_leak: flow and discharge pressure drop while the motor load stays
- motor_overload: extra shaft load, current and winding temperature rise
- stuck / dropout / spikes: one sensor freezes, falls silent, or throws outliers

Pump-performance modes (PUMP_MODES; injected by name, not among the random faults the shipped
models were trained on):
- off_bep: the demand falls to 40 % of the best-efficiency flow (a throttled valve)
- impeller_wear: head and efficiency fall under the curve (12 % each at full severity)
- strainer_clog: a suction strainer clogs, the inlet pressure falls with flow squared (NPSH margin
  shrinks) until cavitation sets in at half severity
- dry_run: the liquid leaves the inlet: no flow, no head, the motor still draws power
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from edgegw.sim.physics import Effects

PROCESS_MODES = ("bearing_wear", "cavitation", "impeller_imbalance", "seal_leak", "motor_overload")
SENSOR_MODES = ("stuck", "dropout", "spikes")
MODES = PROCESS_MODES + SENSOR_MODES
PUMP_MODES = ("off_bep", "impeller_wear", "strainer_clog", "dry_run")
ALL_MODES = MODES + PUMP_MODES
NORMAL = "normal"

# Default development time (process) or duration (sensor) of each mode, seconds.
DEFAULT_RAMP_S = {
    "bearing_wear": 60.0,
    "cavitation": 40.0,
    "impeller_imbalance": 0.0,
    "seal_leak": 30.0,
    "motor_overload": 40.0,
    "off_bep": 10.0,
    "impeller_wear": 120.0,
    "strainer_clog": 300.0,
    "dry_run": 5.0,
}
DEFAULT_SENSOR_S = 20.0
# Severity at which a process fault shows in the mapped signals; labels start there. Cavitation
# first lowers the suction pressure, and the discharge pressure with it (the head holds until the
# margin to vapour pressure is gone, near 0.45): a discharge pressure below the pump curve for the
# flow is the developing fault, and is labelled as such.
ONSET = {
    "bearing_wear": 0.2,
    "cavitation": 0.15,
    "impeller_imbalance": 0.0,
    "seal_leak": 0.15,
    "motor_overload": 0.15,
    "off_bep": 0.5,  # below 70 % of the BEP flow
    "impeller_wear": 0.4,  # head 5 % under the curve
    "strainer_clog": 0.3,  # the NPSH margin gone under about 2 m
    "dry_run": 0.5,
}
DEFAULT_SENSOR_SIGNAL = {"stuck": "pressure", "dropout": "temperature", "spikes": "vibration"}


@dataclass(slots=True, frozen=True)
class Fault:
    """One injected fault: on `asset`, from `start_s` (simulation seconds) for `duration_s` (None: to the end)."""

    asset: str
    mode: str
    start_s: float
    ramp_s: float = 0.0
    duration_s: float | None = None
    signal: str | None = None  # sensor faults only

    @property
    def end_s(self) -> float:
        return float("inf") if self.duration_s is None else self.start_s + self.duration_s

    def active(self, t: float) -> bool:
        return self.start_s <= t < self.end_s

    def severity(self, t: float) -> float:
        if not self.active(t):
            return 0.0
        if self.ramp_s <= 0:
            return 1.0
        return min((t - self.start_s) / self.ramp_s, 1.0)

    def evident(self, t: float) -> bool:
        """Has the fault set in far enough at t to show in the signals? (What a label should say.)"""
        return self.active(t) and self.severity(t) >= ONSET.get(self.mode, 0.0)

    def describe(self) -> str:
        extra = f" on {self.signal}" if self.signal else ""
        return f"{self.asset} {self.mode}{extra}"


def make_fault(
    asset: str,
    mode: str,
    start_s: float,
    ramp_s: float | None = None,
    duration_s: float | None = None,
    signal: str | None = None,
) -> Fault:
    """A fault with the mode's defaults filled in; raises ValueError for an unknown mode."""
    if mode not in ALL_MODES:
        raise ValueError(f"unknown fault mode {mode!r} (one of {', '.join(ALL_MODES)})")
    if mode in SENSOR_MODES:
        return Fault(
            asset,
            mode,
            start_s,
            0.0,
            DEFAULT_SENSOR_S if duration_s is None else duration_s,
            signal or DEFAULT_SENSOR_SIGNAL[mode],
        )
    if signal is not None:
        raise ValueError(f"{mode} is a process fault: it takes no signal")
    return Fault(asset, mode, start_s, DEFAULT_RAMP_S[mode] if ramp_s is None else ramp_s, duration_s)


_SPEC = re.compile(r"^(?P<asset>[^:@\s]+):(?P<mode>[a-z_]+)@(?P<start>[0-9.]+)s?(?P<opts>(,[a-z]+=[^,]+)*)$")


def parse_fault(text: str) -> Fault:
    """`ASSET:MODE@START[,ramp=S][,for=S][,signal=NAME]`, e.g. `pump-1:bearing_wear@40,ramp=60`."""
    m = _SPEC.match(text.strip())
    if not m:
        raise ValueError(f"bad fault {text!r}: expected ASSET:MODE@START[,ramp=S][,for=S][,signal=NAME]")
    opts: dict[str, str] = {}
    for part in filter(None, m["opts"].split(",")):
        k, _, v = part.partition("=")
        if k not in ("ramp", "for", "signal"):
            raise ValueError(f"bad fault {text!r}: unknown option {k!r}")
        opts[k] = v
    try:
        ramp = float(opts["ramp"].rstrip("s")) if "ramp" in opts else None
        dur = float(opts["for"].rstrip("s")) if "for" in opts else None
    except ValueError:
        raise ValueError(f"bad fault {text!r}: ramp and for take seconds") from None
    return make_fault(m["asset"], m["mode"], float(m["start"]), ramp, dur, opts.get("signal"))


def random_faults(
    assets: list[str],
    n: int,
    duration_s: float,
    rng: np.random.Generator,
    warmup_s: float = 60.0,
    modes: tuple[str, ...] = MODES,
) -> list[Fault]:
    """n faults at random times (after warm-up), at most one per asset at a time, seeded."""
    faults: list[Fault] = []
    for _ in range(n * 20):
        if len(faults) == n:
            break
        asset = assets[int(rng.integers(len(assets)))]
        mode = modes[int(rng.integers(len(modes)))]
        start = float(rng.uniform(warmup_s, max(warmup_s + 1.0, duration_s * 0.9)))
        if mode in SENSOR_MODES:
            f = make_fault(asset, mode, start, duration_s=float(rng.uniform(10.0, 40.0)))
        else:
            ramp = DEFAULT_RAMP_S[mode] * float(rng.uniform(0.6, 1.5))
            f = make_fault(asset, mode, start, ramp, duration_s=ramp + float(rng.uniform(30.0, 120.0)))
        if any(g.asset == asset and g.start_s < f.end_s and start < g.end_s for g in faults):
            continue
        faults.append(f)
    return sorted(faults, key=lambda f: f.start_s)


def effects(faults: list[Fault], t: float) -> Effects:
    """The combined physical effect of the process faults active at t."""
    fx = Effects()
    for f in faults:
        s = f.severity(t)
        if s <= 0.0 or f.mode in SENSOR_MODES:
            continue
        if f.mode == "bearing_wear":
            fx.vib_add += 6.0 * s**1.5
            fx.vib_noise += 2.0 * s
            fx.vib_impulse += 0.08 * s
            fx.bearing_heat += 32.0 * max(s - 0.5, 0.0) * 2.0
            fx.extra_power += 0.6 * s
        elif f.mode == "cavitation":
            fx.suction_drop += 1.0 * s
            fx.flow_noise += 4.0 * s
        elif f.mode == "impeller_imbalance":
            fx.vib_add += 3.0 * s
            fx.vib_noise += 0.5 * s
        elif f.mode == "seal_leak":
            fx.leak += 16.0 * s
            fx.bearing_heat += 2.0 * s
        elif f.mode == "motor_overload":
            fx.extra_power += 7.5 * s
            fx.bearing_heat += 6.0 * s
            fx.vib_add += 0.4 * s
        elif f.mode == "off_bep":
            fx.demand_cut += 0.6 * s
        elif f.mode == "impeller_wear":
            fx.head_loss += 0.12 * s
            fx.efficiency_loss += 0.12 * s
            fx.vib_add += 0.3 * s
        elif f.mode == "strainer_clog":
            fx.strainer_drop += 0.9 * s
        elif f.mode == "dry_run":
            fx.dry += s
            fx.bearing_heat += 8.0 * s
    return fx


class SensorFaults:
    """Applies the sensor faults of one asset to its reported values (after quantisation)."""

    def __init__(self, faults: list[Fault], rng: np.random.Generator) -> None:
        self.faults = [f for f in faults if f.mode in SENSOR_MODES]
        self.rng = rng
        self.held: dict[str, float] = {}

    def apply(self, t: float, values: dict[str, float]) -> dict[str, float]:
        for f in self.faults:
            sig = f.signal or ""
            if sig not in values:
                continue
            if not f.active(t):
                if f.mode == "stuck":
                    self.held.pop(sig, None)
                continue
            if f.mode == "dropout":
                del values[sig]
            elif f.mode == "stuck":
                values[sig] = self.held.setdefault(sig, values[sig])
            elif f.mode == "spikes" and self.rng.random() < 0.15:
                values[sig] = round(values[sig] * float(self.rng.uniform(2.5, 5.0)), 2)
        return values
