"""At start: the alarms read back from the broker (retained raises) are either taken back by
their owner or cleared as orphans.

An orphan is an alarm nothing in this configuration can clear any more: its asset, signal,
limit, model, source, notification target or upstream was removed. Left alone it would stay
retained on the broker (and on every `watch` board) for ever; it is cleared instead (the
non-retained `cleared`, then the empty retained payload) and journaled (`orphan_cleared`) with
the reason. The others go to their owner (`Engine.restore`) as before.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from edgegw.config import GatewayConfig

SIGNAL_KINDS = ("threshold", "stale", "quality")
MODEL_KINDS = ("anomaly", "failure_risk")
UPSTREAM_KINDS = ("outbox_full", "outbox_corrupt", "outbox_disk_full", "outbox_dead_letter", "upstream_refused")
ASSET_REMOVED = "asset removed from the configuration"

Restore = Callable[[str, str, str, int], bool]  # Engine.restore(asset, kind, source, level)


def level_of(d: Mapping[str, Any]) -> int:
    """The threshold level a retained raise had (hi when it does not say)."""
    return {"hihi": 2, "hi": 1, "lo": -1, "lolo": -2}.get(str(d.get("level")), 1)


def orphan_reason(
    cfg: GatewayConfig, d: Mapping[str, Any], sources: Collection[str], models: Mapping[str, str | None]
) -> str | None:
    """Why this retained alarm is an orphan under `cfg` (None: something here still owns it).

    `sources`: the configured sources' names; `models`: asset -> the name of the model serving it."""
    asset, kind, source = str(d.get("asset", "")), str(d.get("kind", "")), str(d.get("source", ""))
    if asset == cfg.gateway.id:
        if kind == "link":
            return None if source in sources else "source removed from the configuration"
        if kind == "notify_failed":
            targets = {t.name for t in cfg.notify.targets} if cfg.notify is not None else set()
            return None if source in targets else "notification target removed from the configuration"
        if kind in UPSTREAM_KINDS and cfg.upstream is None:
            return "upstream removed from the configuration"
        return None  # the gateway's own alarms: their owner clears them
    profiles = {a.id: cfg.profiles[a.profile] for a in cfg.assets}
    profile = profiles.get(asset)
    if profile is None:
        return ASSET_REMOVED
    if kind in SIGNAL_KINDS:
        spec = profile.signals.get(source)
        if spec is None:
            return f"signal {source} removed from the configuration"
        if kind == "threshold" and all(v is None for v in (spec.hi, spec.hihi, spec.lo, spec.lolo)):
            return f"{source} has no limits in the configuration any more"
        return None
    if kind in MODEL_KINDS:
        name = models.get(asset)
        if name is None:
            return "model removed from the configuration"
        if name != source:
            return f"model {source} no longer serves {asset} ({name} does)"
    return None


def sort_out(
    cfg: GatewayConfig,
    alarms: list[dict[str, Any]],
    sources: Collection[str],
    models: Mapping[str, str | None],
    restore: Restore,
) -> tuple[list[dict[str, Any]], list[tuple[dict[str, Any], str]]]:
    """(kept, orphans with their reason): asset alarms kept are handed to `restore` (the engine),
    and one it does not take back (a kind it does not know) is an orphan too."""
    kept: list[dict[str, Any]] = []
    orphans: list[tuple[dict[str, Any], str]] = []
    for d in alarms:
        why = orphan_reason(cfg, d, sources, models)
        asset = str(d.get("asset", ""))
        if (
            why is None
            and asset != cfg.gateway.id
            and not restore(asset, str(d.get("kind", "")), str(d.get("source", "")), level_of(d))
        ):
            why = "no longer watched by this configuration"
        if why is None:
            kept.append(d)
        else:
            orphans.append((d, why))
    return kept, orphans
