"""LiveState: tiles from hop results and alarms; a slow browser resyncs instead of holding more."""

from __future__ import annotations

import numpy as np
import orjson

from edgegw.records import AlarmEvent, HopResult
from edgegw.web.live import LiveState
from tests.helpers import example_config, threshold_alert


def hop(assets: list[str], vib: float) -> HopResult:
    signals = ["vibration", "pressure"]
    last = np.array([[vib, np.nan]] * len(assets))
    return HopResult("pump", assets, np.full(len(assets), 100.0), 1.0, signals, np.zeros((len(assets), 0)), [], last=last)


def events(raw: bytes) -> list[tuple[str, object]]:
    out = []
    for block in raw.decode().strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((lines["event"], orjson.loads(lines["data"])))
    return out


def test_tiles_and_states() -> None:
    live = LiveState(example_config(1883), queue_size=16)
    assert live.tiles["pump-1"]["state"] == "nodata"
    live.hop(hop(["pump-1", "pump-2"], 3.0))
    assert live.tiles["pump-1"]["state"] == "normal" and live.tiles["pump-1"]["values"] == {"vibration": 3.0}
    live.alert(threshold_alert("pump-2"))
    assert live.tiles["pump-2"]["state"] == "warning" and live.tiles["pump-1"]["state"] == "normal"
    stale = threshold_alert("pump-1", kind="stale")
    live.alert(stale)
    assert live.tiles["pump-1"]["state"] == "stale"
    live.alert(threshold_alert("pump-1", severity="critical"))
    assert live.tiles["pump-1"]["state"] == "critical"


def test_slow_client_resyncs() -> None:
    live = LiveState(example_config(1883), queue_size=16)
    fast, slow = live.connect(), live.connect()
    for i in range(40):
        live.hop(hop(["pump-1"], float(i)))
        if i % 4 == 0:
            live.take(fast)
    assert len(slow.queue) == 1 and slow.overflowed == 1  # the marker only: nothing held for it
    ((kind, data),) = events(live.take(slow))
    assert kind == "snapshot" and data["tiles"][0]["values"]["vibration"] == 39.0  # type: ignore[index]
    live.hop(hop(["pump-1"], 50.0))
    assert [k for k, _ in events(live.take(slow))] == ["tiles"]
    live.disconnect(slow)
    live.disconnect(fast)
    assert not live.clients and live.resyncs == 1


def test_shelves_mark_the_alarm_until_unshelved() -> None:
    live = LiveState(example_config(1883))
    c = live.connect()
    live.alert(threshold_alert("pump-2"))
    key = ("pump-2", "threshold", "vibration")
    live.event(AlarmEvent(1.0, "shelved", key, "otto", "sensor swap", {"until": "2030-01-01T00:00:00.000Z"}))
    assert live.alarms["pump-2/threshold/vibration"]["shelved_until"] == "2030-01-01T00:00:00.000Z"
    live.alert(threshold_alert("pump-2", evidence={"acked_by": "otto", "shelved_until": "2030-01-01T00:00:00.000Z"}))
    assert live.alarms["pump-2/threshold/vibration"]["shelved_until"]  # re-published with its mark
    live.event(AlarmEvent(2.0, "unshelved", key, "otto"))
    assert "shelved_until" not in live.alarms["pump-2/threshold/vibration"]
    kinds = [k for k, _ in events(live.take(c))]
    assert kinds.count("event") == 2 and "alarm" in kinds
