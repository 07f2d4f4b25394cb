"""`edgegw demo` end to end, compressed: embedded broker, simulator, the real gateway with the shipped
model, the alarm monitor and the scorecard, in one process."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path
from typing import Any

import aiomqtt

from edgegw.sim.broker import EmbeddedBroker, broker_reachable
from edgegw.sim.demo import demo_schedule, run_demo
from edgegw.sim.scorecard import FaultRecord, Scorecard
from tests.helpers import EXAMPLE
from tests.peers import free_port


async def demo(port: int, duration: float, seed: int) -> tuple[Any, dict[str, Any], io.StringIO]:
    """`edgegw demo` on the example config against the broker on `port`: (score, facts, its output)."""
    args = argparse.Namespace(
        duration=duration, seed=seed, summary=None, config=str(EXAMPLE), set=[f"mqtt.port={port}"], rate=2.0, colour=False
    )
    out = io.StringIO()
    score, facts = await run_demo(args, out)
    return score, facts, out


async def test_short_demo_catches_the_injected_faults(tmp_path: Path) -> None:
    port = free_port()
    assert not broker_reachable("127.0.0.1", port)
    score, facts, out = await demo(port, duration=48.0, seed=1)
    text = out.getvalue()
    assert f"embedded broker (amqtt) on 127.0.0.1:{port}" in text
    assert facts["messages_sent"] > 300 and facts["messages_dropped"] == 0
    summary = score.summary()
    json.dumps(summary)
    modes = {f["mode"]: f for f in summary["faults"]}
    assert set(modes) == {"bearing_wear", "cavitation", "motor_overload", "dropout"}
    for mode in ("bearing_wear", "cavitation", "motor_overload", "dropout"):
        assert modes[mode]["detected_at"] is not None, (mode, text)
        assert modes[mode]["delay_s"] >= 0
    assert summary["false_alarms"] <= 1, text
    assert "RAISED" in text and "FAULT" in text and "CAUGHT" in text
    # the energy figures of every pump (engine/pump.py, the example's pump description)
    assert [r["asset"] for r in facts["energy"]] == ["pump-1", "pump-2", "pump-3", "pump-4"]
    assert all(r["kwh"] > 0 and 0.1 < r["kwh_m3"] < 0.3 for r in facts["energy"]), facts["energy"]
    assert not broker_reachable("127.0.0.1", port)  # the embedded broker is gone again


def test_demo_schedule_fits_the_run() -> None:
    for duration in (48.0, 180.0, 600.0):
        faults = demo_schedule(["a", "b", "c", "d", "e"], duration)
        assert [f.asset for f in faults] == ["a", "b", "c", "d"]  # the fifth pump stays healthy
        for f in faults:
            assert f.start_s + max(f.ramp_s, f.duration_s or 0) < duration
    assert [f.mode for f in demo_schedule(["a"], 180)] == ["bearing_wear"]


def test_scorecard_rules() -> None:
    t0 = 1_800_000_000.0
    sc = Scorecard([FaultRecord("p1", "cavitation", t0 + 10), FaultRecord("p2", "dropout", t0 + 10, t0 + 25, "flow")])

    def alert(asset: str, kind: str, state: str, at: float, source: str = "x") -> dict:
        from edgegw.records import iso

        return {"asset": asset, "kind": kind, "source": source, "state": state, "ts": iso(at)}

    assert sc.observe(alert("p1", "anomaly", "raised", t0 + 5), t0 + 5) is None  # before the fault: false
    assert sc.observe(alert("p1", "anomaly", "raised", t0 + 12), t0 + 12) is None  # still the same episode
    assert sc.observe(alert("p1", "anomaly", "cleared", t0 + 13), t0 + 13) is None
    caught = sc.observe(alert("p1", "threshold", "raised", t0 + 14, "pressure"), t0 + 14)
    assert caught is not None and caught.delay_s == 4.0 and caught.detected_by == "threshold pressure"
    assert sc.observe(alert("p2", "stale", "raised", t0 + 21, "flow"), t0 + 21) is not None
    assert sc.observe(alert("p2", "failure_risk", "raised", t0 + 50), t0 + 50) is None  # inside the grace
    sc.observe(alert("p2", "anomaly", "raised", t0 + 90), t0 + 90)  # long after: false
    s = sc.summary()
    assert s["false_alarms"] == 2
    assert [f["delay_s"] for f in s["faults"]] == [4.0, 11.0]


async def test_embedded_broker_keeps_and_deletes_retained_messages() -> None:
    port = free_port()
    b = EmbeddedBroker("127.0.0.1", port)
    await b.start()
    try:
        async with aiomqtt.Client("127.0.0.1", port) as c:
            await c.publish("alerts/x/1", b"on", qos=1, retain=True)
            await c.publish("alerts/x/2", b"on", qos=1, retain=True)
            await c.publish("alerts/x/2", b"", qos=1, retain=True)
        async with aiomqtt.Client("127.0.0.1", port) as c:
            await c.subscribe("alerts/#", qos=1)
            got = []

            async def read() -> None:
                async for m in c.messages:
                    got.append((str(m.topic), m.payload, m.retain))

            try:
                async with __import__("asyncio").timeout(1.0):
                    await read()
            except TimeoutError:
                pass
        assert got == [("alerts/x/1", b"on", True)]
    finally:
        await b.stop()


async def test_demo_uses_a_broker_that_answers(broker_factory) -> None:
    broker = broker_factory()
    score, facts, out = await demo(broker.port, duration=16.0, seed=2)
    assert facts["broker"] == f"broker at 127.0.0.1:{broker.port}"
    assert facts["messages_sent"] > 100
    assert any(f.detected_at is not None for f in score.faults), out.getvalue()
