"""What goes to the local broker: the `alerts:` and `rollups:` topics."""

from __future__ import annotations

import string
from collections.abc import Collection
from typing import Literal

from pydantic import Field, field_validator

from edgegw.config.base import Base


def template_problem(template: str, allowed: Collection[str], required: Collection[str]) -> str | None:
    """What is wrong with a topic template: unknown or missing {placeholders}, wildcards, empty levels."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as e:
        return f"{template!r}: {e}"
    names = set()
    for _, name, spec, conv in parts:
        if name is None:
            continue
        if name not in allowed or spec or conv:
            shown = "{" + name + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "") + "}"
            return f"{template!r}: unknown placeholder {shown} (use {', '.join('{' + a + '}' for a in allowed)})"
        names.add(name)
    missing = [r for r in required if r not in names]
    if missing:
        return f"{template!r}: needs {', '.join('{' + m + '}' for m in missing)} (one topic per alarm)"
    for level in template.split("/"):
        if level in ("+", "#") or "+" in level or "#" in level:
            return f"{template!r}: no MQTT wildcards (+, #) in a topic to publish to"
        if not level:
            return f"{template!r}: no empty topic levels"
    return None


ALERT_FIELDS = ("site", "gateway", "asset", "kind", "source")
ROLLUP_FIELDS = ("site", "gateway", "asset")


class AlertsConfig(Base):
    topic: str = Field(
        "alerts/{site}/{asset}/{kind}/{source}",
        description="Alert topic template: {asset}, {kind} and {source} (one alarm per topic), {site}, {gateway}.",
    )
    qos: Literal[0, 1, 2] = 1
    retain_active: bool = Field(True, description="Keep active alarms retained; a clear removes them.")

    @field_validator("topic")
    @classmethod
    def _template(cls, v: str) -> str:
        problem = template_problem(v, ALERT_FIELDS, ("asset", "kind", "source"))
        if problem:
            raise ValueError(problem)
        return v


class RollupsConfig(Base):
    interval_s: float = Field(60.0, ge=1, le=86400, description="Aggregation interval, aligned to wall-clock boundaries.")
    topic: str = Field("rollups/{site}/{asset}", description="Rollup topic template: {asset}, {site}, {gateway}.")
    enabled: bool = True

    @field_validator("topic")
    @classmethod
    def _template(cls, v: str) -> str:
        problem = template_problem(v, ROLLUP_FIELDS, ("asset",))
        if problem:
            raise ValueError(problem)
        return v
