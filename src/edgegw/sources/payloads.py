"""Payload decoding shared by every source: JSON objects (field -> signal mapping, dotted paths,
arrays of objects), SenML (RFC 8428, JSON; CBOR when cbor2 is installed) and plain numbers.

A decoder hands each value to the intake and rejects what it cannot use, counted by reason;
it never raises into the source's loop.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import orjson

from edgegw.config import TimestampSpec
from edgegw.intake import Intake
from edgegw.records import Quality

_SENML_RELATIVE = 2**28  # RFC 8428: smaller times are relative to now
_GOOD, _BAD = Quality.GOOD, Quality.BAD  # per value: an Enum member lookup on the class costs ~0.25 us


def _num(v: Any) -> float | None:
    """A JSON number as float; None for anything else (bool, str, null, containers)."""
    t = type(v)
    if t is float or t is int:
        return float(v)
    return None


def _ts_reader(spec: TimestampSpec) -> Callable[[Any], float | None]:
    if spec.unit == "iso":

        def iso(v: Any) -> float | None:
            if not isinstance(v, str):
                return None
            try:
                dt = datetime.fromisoformat(v)
            except ValueError:
                return None
            return dt.timestamp()  # naive times are taken as local time, as datetime does

        return iso
    scale = 1e-3 if spec.unit == "ms" else 1.0

    def epoch(v: Any) -> float | None:
        x = _num(v)
        return None if x is None else x * scale

    return epoch


class JsonDecoder:
    """JSON object (or array of objects) -> values, by a field -> signal mapping."""

    def __init__(self, fields: Mapping[str, str], timestamp: TimestampSpec, intake: Intake) -> None:
        self.intake = intake
        self.ts_field = timestamp.field
        self.read_ts = _ts_reader(timestamp)
        self.simple = [(k, s) for k, s in fields.items() if "." not in k]
        self.dotted = [(tuple(k.split(".")), s) for k, s in fields.items() if "." in k]
        self.all_numeric = not fields

    def decode(self, payload: bytes, asset: str, now: float, whole: bool = False) -> bool:
        """Decode one object or array of objects; return False (after counting) when the payload
        is unusable. With `whole`, an array holding anything but objects is refused entirely (a
        CoAP server answers it 4.00, so the device learns of it); otherwise its objects are taken."""
        try:
            doc = orjson.loads(payload)
        except orjson.JSONDecodeError:
            self.intake.reject("malformed_json", asset=asset)
            return False
        if type(doc) is dict:
            self.record(doc, asset, now)
            return True
        if type(doc) is not list or not doc:
            self.intake.reject("wrong_type", asset=asset, detail=f"expected an object, got {type(doc).__name__}")
            return False
        if whole and not all(type(rec) is dict for rec in doc):
            self.intake.reject("wrong_type", asset=asset, detail="expected an object or an array of objects")
            return False
        taken = False
        for rec in doc:
            if type(rec) is dict:
                self.record(rec, asset, now)
                taken = True
            else:
                self.intake.reject("wrong_type", asset=asset, detail="array item is not an object")
        return taken

    def record(self, rec: dict[str, Any], asset: str, now: float) -> None:
        intake = self.intake
        if self.ts_field is None:
            ts = now
        else:
            raw = rec.get(self.ts_field)
            if raw is None:
                intake.reject("missing_timestamp", asset=asset)
                return
            t = self.read_ts(raw)
            if t is None:
                intake.reject("bad_timestamp", asset=asset, ts=str(raw)[:40])
                return
            if not intake.ts_ok(t, now):
                return
            ts = t
        found = 0
        if self.all_numeric:
            items: list[tuple[Any, str]] = [(v, k) for k, v in rec.items() if k != self.ts_field]
        else:
            items = [(rec.get(k), s) for k, s in self.simple]
            for path, s in self.dotted:
                v: Any = rec
                for part in path:
                    v = v.get(part) if type(v) is dict else None
                items.append((v, s))
        for raw_v, signal in items:
            if raw_v is None and (signal in rec or not self.all_numeric):
                continue
            x = _num(raw_v)
            if x is None:
                if raw_v is not None:
                    intake.reject("wrong_type", asset=asset, signal=signal)
                continue
            found += 1
            if math.isfinite(x):
                intake.put(asset, signal, ts, x)
            else:
                intake.put(asset, signal, ts, x, _BAD)
        if not found:
            intake.reject("no_fields", asset=asset)


class NumberDecoder:
    """A plain number payload (text); event time is the receive time."""

    def __init__(self, intake: Intake) -> None:
        self.intake = intake

    def decode(self, payload: bytes, asset: str, signal: str, now: float) -> bool:
        """Take one number; return False (after counting) when the payload is not one."""
        try:
            x = float(payload)
        except ValueError:
            self.intake.reject("not_a_number", asset=asset, signal=signal)
            return False
        self.intake.put(asset, signal, now, x, _GOOD if math.isfinite(x) else _BAD)
        return True


class SenmlDecoder:
    """SenML pack -> values. The asset comes from the topic or path when known, else from the
    record name's prefix (`pump-4/vibration`); the signal is the name's last segment, mapped
    through `fields` when given."""

    def __init__(self, fields: Mapping[str, str], intake: Intake) -> None:
        self.fields = dict(fields)
        self.intake = intake

    def decode(self, payload: bytes, asset: str | None, now: float, content_format: str = "json") -> bool:
        """Decode one pack; return False (after counting) when the whole payload is unusable."""
        try:
            if content_format == "cbor":
                import cbor2

                pack = cbor2.loads(payload)
            else:
                pack = orjson.loads(payload)
        except Exception:
            self.intake.reject("malformed_senml", asset=asset)
            return False
        if type(pack) is not list or not pack or not all(type(r) is dict for r in pack):
            self.intake.reject("malformed_senml", asset=asset, detail="expected a non-empty array of records")
            return False
        bn, bt, bv = "", 0.0, 0.0
        ok = False
        for rec in pack:
            if cbor_keys := [k for k in rec if type(k) is int]:
                rec = {_CBOR_LABELS.get(k, k): rec[k] for k in cbor_keys} | {k: v for k, v in rec.items() if type(k) is str}
            if "bn" in rec:
                bn = str(rec["bn"])
            if "bt" in rec:
                t = _num(rec["bt"])
                if t is None:
                    self.intake.reject("malformed_senml", asset=asset, detail="bt is not a number")
                    return False
                bt = t
            if "bv" in rec:
                bv = _num(rec["bv"]) or 0.0
            if "v" not in rec:
                continue  # base record, or a string/bool/data value we do not take
            x = _num(rec["v"])
            if x is None:
                self.intake.reject("wrong_type", asset=asset)
                continue
            name = bn + str(rec.get("n", ""))
            head, sep, last = name.rpartition("/")
            a = asset or (head.rpartition("/")[2] if sep else None)
            if not a or not last:
                self.intake.reject("unknown_asset", name=name[:60])
                continue
            t = _num(rec.get("t", 0.0))
            ts = bt + (t or 0.0)
            if abs(ts) < _SENML_RELATIVE:
                ts += now
            if not self.intake.ts_ok(ts, now):
                continue
            signal = self.fields.get(last, last)
            x += bv
            self.intake.put(a, signal, ts, x, _GOOD if math.isfinite(x) else _BAD)
            ok = True
        if not ok:
            self.intake.reject("no_fields", asset=asset)
        return True


# RFC 8428 section 6: CBOR integer labels
_CBOR_LABELS = {-2: "bn", -3: "bt", -4: "bu", -5: "bv", -1: "bver", 0: "n", 1: "u", 2: "v", 6: "t"}
