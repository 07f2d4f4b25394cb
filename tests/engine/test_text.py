"""Alarm text an operator reads: units, numbers at the signal's resolution, model alarms in words."""

from __future__ import annotations

from edgegw.config import load_config
from edgegw.engine import text
from edgegw.engine.engine import Engine
from edgegw.records import Alert
from tests.helpers import EXAMPLE


def test_threshold_messages_carry_units_at_the_signal_resolution() -> None:
    cfg = load_config(
        EXAMPLE,
        [
            "profiles.pump.model=null",
            "profiles.pump.signals.pressure.on_delay_s=0",
            "profiles.pump.signals.pressure.off_delay_s=0",
            "profiles.pump.signals.temperature.resolution=1",
        ],
    )
    alerts: list[Alert] = []
    e = Engine(cfg, alerts.append, clock=lambda: 1000.0)
    e.ingest("pump-1", "pressure", 1.0, 1.1123456)
    e.ingest("pump-1", "pressure", 2.0, 5.0)
    e.ingest("pump-1", "temperature", 2.0, 97.26)
    assert [a.message for a in alerts] == [
        "pressure 1.11 bar below lo 2.0 bar",
        "pressure 5.00 bar back within lo 2.0 bar",
    ]
    ev = {"signal": "temperature", "value": 97.26, "unit": "degC", "limit": 95.0, "level": "hihi"}
    assert text.raised("threshold", "temperature", ev, cfg.profiles["pump"].signals) == "temperature 97 degC above hihi 95.0 degC"


def test_anomaly_in_plain_words_with_the_numbers_kept_for_machines() -> None:
    ev = {
        "score": 0.7123,
        "threshold": 0.55,
        "top": [
            {"feature": "vibration.kurtosis", "signal": "vibration", "z": 123.59, "value": 24.1, "normal": 3.0},
            {"feature": "pressure.mean", "signal": "pressure", "z": -6.2, "value": 3.1, "normal": 5.0},
            {"feature": "vibration.slope", "signal": "vibration", "z": 9.1},
            {"feature": "flow.relation", "signal": "flow", "z": 7.0},
        ],
    }
    msg = text.raised("anomaly", "pump", ev, {})
    assert msg == (
        "unlike normal operation: vibration unusually spiky (kurtosis 8x normal) and rising; "
        "pressure lower than normal; flow out of step with the other signals (score 0.71 > 0.55)"
    )
    assert "z" not in msg and ev["top"][0]["z"] == 123.59  # the evidence keeps the numbers


def test_numbers_without_a_resolution_keep_three_digits() -> None:
    assert text.number(1234.5678) == "1235" and text.number(0.0123456) == "0.0123" and text.number(12.5, 0.03) == "12.50"
    assert text.raised("stale", "flow", {"silent_s": 12.34, "limit": 10.0}, {}) == "flow silent for 12 s (limit 10 s)"


def test_rollups_round_to_the_resolution_and_carry_units_once() -> None:
    cfg = load_config(EXAMPLE, ["profiles.pump.model=null"])
    e = Engine(cfg, lambda a: None, clock=lambda: 1000.0)
    for i, v in enumerate((1.23456, 1.34567, 1.45678)):
        e.ingest("pump-1", "pressure", float(i), v)
    d = next(r for r in e.take_rollups(0.0, 60.0) if r.asset == "pump-1").to_dict()
    assert d["signals"]["pressure"]["mean"] == 1.35 and d["signals"]["pressure"]["max"] == 1.46  # deadband 0.1: 0.01
    assert d["units"]["pressure"] == "bar" and "unit" not in d["signals"]["pressure"]
