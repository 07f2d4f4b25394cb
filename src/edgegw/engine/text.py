"""Alarm text an operator can read: numbers rounded to the signal's resolution, with units, and
model alarms in plain words from their evidence (the numbers stay in the evidence for machines).

"pressure 1.11 bar below lo 2.0 bar"; "unlike normal operation: vibration unusually spiky
(kurtosis 8x normal) and rising; pressure lower than normal (score 0.71 > 0.55)".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from edgegw.config import SignalSpec

SIGNIFICANT = 3  # digits shown where a signal has neither resolution nor deadband
WORDS_PER_SIGNAL = 2  # features described per signal in a model alarm
SIGNALS_NAMED = 3

# feature -> (words when above normal, words when below); {r} is "Nx normal" where it makes sense
_FEATURE_WORDS: dict[str, tuple[str, str]] = {
    "mean": ("higher than normal", "lower than normal"),
    "last": ("higher than normal", "lower than normal"),
    "rms": ("higher than normal", "lower than normal"),
    "std": ("unsteady{r}", "unusually steady"),
    "ptp": ("swinging more than normal{r}", "swinging less than normal"),
    "min": ("not dipping as low as normal", "dipping lower than normal"),
    "max": ("peaking higher than normal", "peaking lower than normal"),
    "slope": ("rising", "falling"),
    "skew": ("lopsided upwards (skew)", "lopsided downwards (skew)"),
    "kurtosis": ("unusually spiky (kurtosis{r})", "unusually flat (kurtosis)"),
    "crest": ("with sharp peaks (crest factor{r})", "with blunt peaks (crest factor)"),
    "count": ("reporting more often than normal", "reporting less often than normal"),
    "relation": ("out of step with the other signals", "out of step with the other signals"),
}


def resolution(spec: SignalSpec | None) -> float | None:
    """The smallest step worth showing: `resolution`, else a tenth of the deadband, else None."""
    if spec is None:
        return None
    if spec.resolution:
        return spec.resolution
    return spec.deadband / 10 if spec.deadband > 0 else None


def decimals(spec: SignalSpec | None) -> int | None:
    """How many decimals the signal's resolution has (None: no resolution known)."""
    res = resolution(spec)
    return max(0, -math.floor(math.log10(res) + 1e-9)) if res else None


def number(value: Any, res: float | None = None) -> str:
    """`value` with as many decimals as `res` has (0.03 -> 2), or SIGNIFICANT digits without one."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(v):
        return str(v)
    if res and res > 0:
        return f"{v:.{max(0, -math.floor(math.log10(res) + 1e-9))}f}"
    return f"{v:.{SIGNIFICANT}g}" if abs(v) < 10**SIGNIFICANT else f"{v:.0f}"


def limit(value: Any) -> str:
    """A configured limit as the user wrote it (2.0 stays 2.0)."""
    return repr(float(value)) if isinstance(value, int | float) and math.isfinite(value) else str(value)


def quantity(text: str, unit: str | None) -> str:
    return f"{text} {unit}" if unit else text


def raised(kind: str, source: str, ev: Mapping[str, Any], signals: Mapping[str, SignalSpec]) -> str:
    """The message of a raise; `signals`: the asset's profile signals (units and resolutions)."""
    spec = signals.get(source)
    unit = spec.unit if spec is not None else ev.get("unit")
    if kind == "threshold":
        level = str(ev.get("level", ""))
        side = "below" if level in ("lo", "lolo") else "above"
        value = quantity(number(ev.get("value"), resolution(spec)), unit)
        return f"{source} {value} {side} {level} {quantity(limit(ev.get('limit')), unit)}"
    if kind == "stale":
        return f"{source} silent for {number(ev.get('silent_s'), 1)} s (limit {number(ev.get('limit'), 1)} s)"
    if kind == "quality":
        rng = ev.get("range")
        if ev.get("value") is None:
            return f"{source} readings are bad (the device flags them)"
        where = f" outside {limit(rng[0])}..{quantity(limit(rng[1]), unit)}" if rng else ""
        return f"{source} readings are bad: {quantity(number(ev['value'], resolution(spec)), unit)}{where}"
    if kind == "anomaly":
        return anomaly(ev)
    if kind == "failure_risk":
        cause = ev.get("class") or "cause unknown"
        return f"failure risk {number(ev.get('score', 0), 0.01)}: {str(cause).replace('_', ' ')}"
    return f"{kind} {source}"


def cleared(kind: str, source: str, ev: Mapping[str, Any], signals: Mapping[str, SignalSpec]) -> str:
    """The message of a clear."""
    spec = signals.get(source)
    if kind == "threshold" and "value" in ev:
        unit = spec.unit if spec is not None else ev.get("unit")
        value = quantity(number(ev.get("value"), resolution(spec)), unit)
        return f"{source} {value} back within {ev.get('level')} {quantity(limit(ev.get('limit')), unit)}"
    if kind == "stale":
        return f"{source} reporting again"
    if kind == "quality":
        return f"{source} readings good again"
    if kind in ("anomaly", "failure_risk"):
        return f"{kind.replace('_', ' ')} cleared: operation looks normal again"
    return f"{kind} {source} cleared"


def _ratio(t: Mapping[str, Any]) -> str:
    """' 8x normal' where value and normal are both positive and far enough apart, else ''."""
    v, n = t.get("value"), t.get("normal")
    if not isinstance(v, int | float) or not isinstance(n, int | float) or n <= 0 or v <= 0:
        return ""
    r = v / n
    if r < 1.5:
        return ""
    return f" {r:.0f}x normal" if r >= 10 else f" {r:.1f}x normal".replace(".0x", "x")


def describe(t: Mapping[str, Any]) -> str:
    """One `top` entry of a model alarm ({feature, signal, z, value?, normal?}) in words."""
    feature = str(t.get("feature", "")).rsplit(".", 1)[-1]
    z = t.get("z", 0)
    up, down = _FEATURE_WORDS.get(feature, (f"{feature} higher than normal", f"{feature} lower than normal"))
    words = up if (isinstance(z, int | float) and z >= 0) else down
    return words.replace("{r}", _ratio(t))


def anomaly(ev: Mapping[str, Any]) -> str:
    """'unlike normal operation: vibration unusually spiky (kurtosis 8x normal) and rising; ...'."""
    by_signal: dict[str, list[str]] = {}
    for t in ev.get("top", []):
        if not isinstance(t, Mapping):
            continue
        sig = str(t.get("signal") or str(t.get("feature", "?")).split(".", 1)[0])
        words = by_signal.setdefault(sig, [])
        w = describe(t)
        if len(words) < WORDS_PER_SIGNAL and w not in words:
            words.append(w)
    parts = [f"{sig} {' and '.join(words)}" for sig, words in list(by_signal.items())[:SIGNALS_NAMED]]
    score = f"score {number(ev.get('score', 0), 0.01)} > {number(ev.get('threshold', 0), 0.01)}"
    return f"unlike normal operation: {'; '.join(parts)} ({score})" if parts else f"unlike normal operation ({score})"
