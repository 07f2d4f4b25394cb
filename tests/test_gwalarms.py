"""Gateway alarms only the running process can judge: raised once, cleared once, cleared at start."""

from __future__ import annotations

from edgegw.gwalarms import GatewayAlarms
from edgegw.records import Alert, AlertState
from edgegw.runtime import CHURN_AFTER, Link


def test_client_id_clash_is_raised_once_and_cleared_when_the_link_stays_up() -> None:
    got: list[Alert] = []
    alarms = GatewayAlarms("gw-1", got.append)
    link = Link("local broker", "127.0.0.1:1883")
    alarms.watch([link], steady_after_s=60.0)
    link.up()
    link.short_sessions = CHURN_AFTER
    assert link.on_churn is not None
    link.on_churn(link)
    link.on_churn(link)  # still churning: no second raise
    assert [(a.asset, a.kind, a.source, a.state) for a in got] == [("gw-1", "client_id_clash", "local broker", AlertState.RAISED)]
    alarms.tick()
    assert len(got) == 1  # up, but not for long yet
    link.up_since -= 61.0
    alarms.tick()
    assert got[-1].state == AlertState.CLEARED and got[-1].raised_at == got[0].ts and link.short_sessions == 0


def test_alarms_left_retained_by_an_earlier_run_are_cleared_at_start() -> None:
    got: list[Alert] = []
    alarms = GatewayAlarms("gw-1", got.append)
    alarms.restored(
        [
            {"asset": "gw-1", "kind": "config_rejected", "source": "config"},
            {"asset": "gw-1", "kind": "outbox_full", "source": "upstream"},  # the bridge's own
            {"asset": "pump-1", "kind": "config_rejected", "source": "config"},
        ]
    )
    assert [(a.kind, a.state) for a in got] == [("config_rejected", AlertState.CLEARED)]
