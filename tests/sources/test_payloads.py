"""Decoders: every bad payload is counted under a reason, good values reach the engine."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from edgegw.config import TimestampSpec, load_config
from edgegw.engine.engine import Engine
from edgegw.intake import Intake
from edgegw.records import Alert
from edgegw.sources.payloads import JsonDecoder, NumberDecoder, SenmlDecoder
from tests.helpers import EXAMPLE

FIELDS = {"vibration": "vibration", "pressure": "pressure", "v.L1": "current"}


def make() -> tuple[Intake, list[Alert]]:
    cfg = load_config(EXAMPLE, ["profiles.pump.model=null"])
    alerts: list[Alert] = []
    return Intake(Engine(cfg, alerts.append), cfg.ingest), alerts


def last(intake: Intake, asset: str, signal: str) -> tuple[float, float]:
    """The newest value the engine took for a signal, and its time."""
    s = intake.engine.assets[asset].signals[signal]
    return s.last_value_ts, s.last_value


def test_json_object_dotted_path_and_array() -> None:
    intake, _ = make()
    dec = JsonDecoder(FIELDS, TimestampSpec(field="ts", unit="ms"), intake)
    now = time.time()
    dec.decode(json.dumps({"ts": now * 1000, "vibration": 3.5, "v": {"L1": 31.0}}).encode(), "pump-1", now)
    dec.decode(
        json.dumps([{"ts": now * 1000 + 100, "pressure": 4.0}, {"ts": now * 1000 + 200, "pressure": 4.5}]).encode(), "pump-1", now
    )
    assert last(intake, "pump-1", "vibration") == pytest.approx((now, 3.5))
    assert last(intake, "pump-1", "current")[1] == 31.0
    assert last(intake, "pump-1", "pressure") == pytest.approx((now + 0.2, 4.5))
    assert intake.engine.rejected == {}


def test_iso_and_receive_time() -> None:
    intake, _ = make()
    t = datetime(2026, 1, 5, 6, tzinfo=UTC).timestamp()
    JsonDecoder(FIELDS, TimestampSpec(field="t", unit="iso"), intake).decode(
        b'{"t": "2026-01-05T06:00:00Z", "vibration": 1}', "pump-2", t + 10
    )
    assert last(intake, "pump-2", "vibration") == (t, 1.0)
    JsonDecoder(FIELDS, TimestampSpec(), intake).decode(b'{"vibration": 2}', "pump-3", 1767600500.0)
    assert last(intake, "pump-3", "vibration") == (1767600500.0, 2.0)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{", "malformed_json"),
        (b"not json", "malformed_json"),
        (b"", "malformed_json"),
        (b"[" * 5000 + b"]" * 5000, "malformed_json"),
        (b'{"vibration": NaN}', "malformed_json"),
        (b"null", "wrong_type"),
        (b"[1,2]", "wrong_type"),
        (b'"s"', "wrong_type"),
        (b"[]", "wrong_type"),
        (b'{"ts": "yesterday", "vibration": 3}', "bad_timestamp"),
        (b'{"ts": 1e20, "vibration": 3}', "bad_timestamp"),
        (b'{"ts": -5, "vibration": 3}', "bad_timestamp"),
        (b'{"vibration": 3}', "missing_timestamp"),
        (b'{"ts": NOW, "vibration": "high"}', "wrong_type"),
        (b'{"ts": NOW, "vibration": true}', "wrong_type"),
        (b'{"ts": NOW, "vibration": {"n": [1]}}', "wrong_type"),
        (b'{"ts": NOW, "other": 1}', "no_fields"),
        (b'{"ts": NOW, "vibration": 1e308}', "bad_value"),
        (b'{"ts": 1000000000, "vibration": 3}', "too_old"),
    ],
)
def test_bad_json_is_counted_by_reason(payload: bytes, reason: str) -> None:
    intake, _ = make()
    now = time.time()
    payload = payload.replace(b"NOW", str(now).encode())
    JsonDecoder(FIELDS, TimestampSpec(field="ts"), intake).decode(payload, "pump-1", now)
    assert reason in intake.engine.rejected, intake.engine.rejected
    assert intake.engine.readings_in == 0


def test_number_payloads() -> None:
    intake, _ = make()
    dec = NumberDecoder(intake)
    dec.decode(b"4.25", "pump-1", "pressure", 1767600000.0)
    dec.decode(b"abc", "pump-1", "pressure", 1767600001.0)
    dec.decode(b"inf", "pump-1", "pressure", 1767600002.0)
    assert last(intake, "pump-1", "pressure") == (1767600000.0, 4.25)
    assert intake.engine.rejected == {"not_a_number": 1, "bad_value": 1}


def test_senml_json_and_cbor() -> None:
    intake, _ = make()
    dec = SenmlDecoder({}, intake)
    now = time.time()
    pack = [{"bn": "pump-4/", "bt": now, "n": "vibration", "u": "mm/s", "v": 12.5}, {"n": "pressure", "v": 5.0, "t": 0.5}]
    assert dec.decode(json.dumps(pack).encode(), None, now)
    assert last(intake, "pump-4", "vibration") == pytest.approx((now, 12.5))
    assert last(intake, "pump-4", "pressure") == pytest.approx((now + 0.5, 5.0))
    cbor2 = pytest.importorskip("cbor2")
    assert dec.decode(cbor2.dumps([{-2: "pump-3/", 0: "flow", 2: 55.0}]), None, now, "cbor")
    assert last(intake, "pump-3", "flow")[1] == 55.0
    assert not dec.decode(b"[{not senml", "pump-4", now)
    assert not dec.decode(b'{"n": "x"}', "pump-4", now)
    assert intake.engine.rejected["malformed_senml"] == 2
