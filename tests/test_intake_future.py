"""A device clock that jumps ahead must not blind its asset; every source kind is counted."""

from __future__ import annotations

import math

from edgegw.config import load_config
from edgegw.engine.engine import Engine
from edgegw.intake import FUTURE_SLACK_S, Intake
from edgegw.records import Alert
from tests.helpers import EXAMPLE

T0 = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def rig(slack: float = FUTURE_SLACK_S) -> tuple[Engine, Intake, Clock, list[Alert]]:
    cfg = load_config(EXAMPLE, ["profiles.pump.model=null", "profiles.pump.signals.vibration.on_delay_s=0"])
    clock, alerts = Clock(), []
    engine = Engine(cfg, alerts.append, clock=clock, future_slack_s=slack)
    return engine, Intake(engine, cfg.ingest), clock, alerts


def feed(intake: Intake, clock: Clock, values: list[float], ahead: float = 0.0) -> None:
    """10 Hz readings of pump-1's vibration, stamped `ahead` of the (advancing) wall clock."""
    for v in values:
        clock.now += 0.1
        intake.put("pump-1", "vibration", clock.now + ahead, v)


def test_one_reading_60_s_ahead_does_not_blind_the_asset() -> None:
    engine, intake, clock, alerts = rig()
    feed(intake, clock, [3.0] * 50)
    intake.put("pump-1", "vibration", clock.now + 60, 3.0)  # inside max_future_s (300): a bad device clock
    feed(intake, clock, [3.0] * 10 + [12.5] * 5)
    raised = [a for a in alerts if a.kind == "threshold" and a.state == "raised"]
    assert raised, "the hihi reading after the bad stamp raised nothing"
    assert abs(raised[0].ts - (T0 + 6.1)) < 0.05  # the first hot reading, on time
    assert engine.rejected.get("out_of_order", 0) == 0, engine.rejected
    assert engine.clamped_future == 1


def test_without_the_guard_the_asset_would_be_blind() -> None:
    """What the guard prevents (replays run this way, where event time is all there is)."""
    engine, intake, clock, alerts = rig(slack=math.inf)
    feed(intake, clock, [3.0] * 50)
    intake.put("pump-1", "vibration", clock.now + 60, 3.0)
    feed(intake, clock, [3.0] * 10 + [12.5] * 5)
    assert not [a for a in alerts if a.state == "raised"]
    assert engine.rejected["out_of_order"] == 15


def test_readings_stamped_ahead_together_keep_their_time() -> None:
    """A burst stamped seconds ahead in small steps (a device clock running ahead, or a test
    publishing 5 s of data at once) keeps its event times: event-time delays still work."""
    engine, intake, clock, _ = rig()
    start = clock.now
    for i in range(50):
        intake.put("pump-1", "vibration", start + i * 0.1, 12.5)  # all arrive at `start`
    assert engine.clamped_future == 0
    assert engine.assets["pump-1"].signals["vibration"].last_ts == start + 4.9


def test_a_clock_far_ahead_all_the_time_uses_arrival_time() -> None:
    engine, intake, clock, alerts = rig()
    feed(intake, clock, [3.0] * 20 + [12.5] * 5, ahead=120.0)
    assert engine.rejected.get("out_of_order", 0) == 0
    assert engine.clamped_future == 25
    raised = [a for a in alerts if a.state == "raised"]
    assert raised and abs(raised[0].ts - clock.now + 0.4) < 0.05


def test_opcua_publish_is_counted_like_every_message() -> None:
    from asyncua import ua

    from edgegw.sources.opcua import build

    cfg = load_config(
        EXAMPLE,
        [
            "profiles.pump.model=null",
            "sources=[{type: opcua, endpoint: 'opc.tcp://127.0.0.1:4840', "
            "nodes: [{node: 'ns=2;s=v', asset: pump-1, signal: vibration}]}]",
        ],
    )
    _, intake, _, _ = rig()
    src = build(cfg.sources[0], cfg, intake, "opcua-0")  # type: ignore[arg-type]
    result = ua.PublishResult()
    result.NotificationMessage.NotificationData = [ua.DataChangeNotification()]
    src.on_publish(result)
    result.NotificationMessage.NotificationData = []  # a keep-alive is no message
    src.on_publish(result)
    assert intake.messages_in == 1
    intake.message(120)
    assert (intake.messages_in, intake.bytes_in) == (2, 120)
