"""Which retained alarms are orphans under a changed configuration, and why (the table in docs/alarms.md)."""

from __future__ import annotations

from edgegw.alarms.restore import orphan_reason, sort_out
from edgegw.config import load_config
from tests.helpers import EXAMPLE

CFG = load_config(EXAMPLE, ["profiles.pump.model=null", "profiles.pump.signals.flow.lo=null"])
GW = CFG.gateway.id


def why(asset: str, kind: str, source: str, models: dict[str, str | None] | None = None) -> str | None:
    d = {"asset": asset, "kind": kind, "source": source}
    return orphan_reason(CFG, d, {"mqtt-0"}, models if models is not None else {"pump-1": "pump"})


def test_each_reason() -> None:
    assert why("pump-9", "threshold", "vibration") == "asset removed from the configuration"
    assert why("pump-1", "stale", "speed") == "signal speed removed from the configuration"
    assert why("pump-1", "threshold", "flow") == "flow has no limits in the configuration any more"
    assert why("pump-2", "anomaly", "pump", {"pump-2": None}) == "model removed from the configuration"
    assert why("pump-1", "anomaly", "old") == "model old no longer serves pump-1 (pump does)"
    assert why(GW, "link", "opcua-0") == "source removed from the configuration"
    assert why(GW, "notify_failed", "ops-mail") == "notification target removed from the configuration"
    assert why(GW, "upstream_refused", "upstream") == "upstream removed from the configuration"
    for kept in [
        ("pump-1", "threshold", "vibration"),
        ("pump-1", "stale", "flow"),
        ("pump-1", "anomaly", "pump"),
        (GW, "link", "mqtt-0"),
        (GW, "config_rejected", "config"),
    ]:
        assert why(*kept) is None, kept


def test_what_the_engine_does_not_take_back_is_an_orphan_too() -> None:
    taken: list[tuple[str, str, str, int]] = []

    def restore(asset: str, kind: str, source: str, level: int) -> bool:
        taken.append((asset, kind, source, level))
        return kind != "cavitation"

    alarms = [
        {"asset": "pump-1", "kind": "threshold", "source": "vibration", "level": "hihi"},
        {"asset": "pump-1", "kind": "cavitation", "source": "pump"},
        {"asset": "pump-9", "kind": "threshold", "source": "vibration"},
        {"asset": GW, "kind": "link", "source": "mqtt-0"},
    ]
    kept, orphans = sort_out(CFG, alarms, {"mqtt-0"}, {}, restore)
    assert [d["kind"] for d in kept] == ["threshold", "link"]
    assert [(d["kind"], r) for d, r in orphans] == [
        ("cavitation", "no longer watched by this configuration"),
        ("threshold", "asset removed from the configuration"),
    ]
    assert taken[0] == ("pump-1", "threshold", "vibration", 2)  # hihi goes back to the engine as level 2
