"""SIGHUP (`systemctl reload edgegw`): read the whole config file again and apply what can change live.

The file is loaded and checked as at start (schema, names, models). A broken one changes nothing:
every problem is logged and the gateway alarm `config_rejected` (source `config`) is raised; the
next good reload clears it. A good one is compared with the running config key by key. Keys in
LIVE are set in place on the running config objects, which the engine, intake, ticker and sinks
read, so windows, alarms and connections stay; a changed limit is re-evaluated on the signal's next
reading. Any other changed key (the gateway id, sources, brokers, assets, a profile's window or
signal set ...) needs a restart: it keeps its running value and is named in the log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import structlog
from pydantic import BaseModel

from edgegw.config import ConfigError, GatewayConfig, load_config
from edgegw.config.load import located

if TYPE_CHECKING:
    from edgegw.gateway import Gateway

log = structlog.get_logger("edgegw.reload")
KIND = "config_rejected"
_SIGNAL_LIVE = ("unit", "hi", "hihi", "lo", "lolo", "deadband", "on_delay_s", "off_delay_s", "range")
# Key paths applied while running (None: any key at that level; a prefix covers everything under it).
LIVE: tuple[tuple[str | None, ...], ...] = (
    *(("profiles", None, "signals", None, k) for k in _SIGNAL_LIVE),
    ("profiles", None, "stale_after_s"),
    ("profiles", None, "model"),
    ("profiles", None, "model_alarms"),
    ("rollups", "enabled"),
    ("rollups", "interval_s"),
    ("rollups", "topic"),
    ("ingest",),
    ("metrics", "interval_s"),
    ("alerts", "qos"),
)


class ConfigReload:
    """The gateway's SIGHUP path: one reload at a time."""

    def __init__(self, gw: Gateway, path: str, overrides: list[str]) -> None:
        self.gw = gw
        self.path = path
        self.overrides = overrides
        self._lock = asyncio.Lock()

    async def reload(self) -> None:
        async with self._lock:
            try:
                new = await asyncio.to_thread(self._load)
            except ConfigError as e:
                self._reject(e.problems)
                return
            changed = list(differences(self.gw.cfg, new))
            live = [p for p in changed if _is_live(p)]
            restart = sorted({_shown(p) for p in changed if not _is_live(p)})
            for p in live:
                _assign(self.gw.cfg, new, p)
            if live:
                self.gw.engine.retune()
            self.gw.reload_models()  # a model file retrained in place is taken too, as SIGHUP always did
            for name, profile in self.gw.cfg.profiles.items():
                if not profile.model:
                    self.gw.engine.models.pop(name, None)  # `model: null` now: the profile runs on limits only
            if restart:
                log.warning("changed keys need a restart; they keep their running values", keys=restart)
            log.info("configuration reloaded", applied=sorted({_shown(p) for p in live}), file=self.path)
            self._accepted()

    def _load(self) -> GatewayConfig:
        """The new config, checked like `edgegw check` bar what the running gateway holds (locks, brokers)."""
        from edgegw.engine.models import load_profile_models

        cfg = load_config(self.path, self.overrides)
        _, failed = load_profile_models(cfg.profiles, self.path)
        if failed:
            raise ConfigError(located(self.path, [(("profiles", name, "model"), f"{where}: {e}") for name, where, e in failed]))
        return cfg

    def _reject(self, problems: list[str]) -> None:
        log.error("configuration rejected; the running configuration stays", file=self.path, problems=len(problems))
        for p in problems:
            log.error("config problem", problem=p)
        n = len(problems)
        msg = f"configuration reload rejected ({n} problem{'s' * (n != 1)}): {problems[0] if problems else ''}"
        self.gw.gateway_alarms.raise_(KIND, "config", msg, {"problems": problems[:20], "file": self.path})

    def _accepted(self) -> None:
        self.gw.gateway_alarms.clear(KIND, "config", "configuration reloaded", {"file": self.path})


def differences(old: BaseModel, new: BaseModel) -> Iterator[tuple[Any, ...]]:
    """Paths of the leaves that differ between two configs (a key in one only counts as differing)."""
    yield from _diff(old.model_dump(), new.model_dump(), ())


def _diff(a: Any, b: Any, path: tuple[Any, ...]) -> Iterator[tuple[Any, ...]]:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in a.keys() | b.keys():
            yield from _diff(a.get(k, _MISSING), b.get(k, _MISSING), (*path, k))
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            yield from _diff(x, y, (*path, i))
    elif a != b:
        yield path


_MISSING = object()


def _is_live(path: tuple[Any, ...]) -> bool:
    return any(len(path) >= len(p) and all(q is None or q == k for q, k in zip(p, path, strict=False)) for p in LIVE)


def _shown(path: tuple[Any, ...]) -> str:
    """A changed key as the log names it: signal settings and list items up to their owner."""
    return ".".join(map(str, path[:3] if path[:1] in (("sources",), ("assets",)) else path))


def _assign(running: Any, new: Any, path: tuple[Any, ...]) -> None:
    """Set the running config's value at `path` to the new config's (objects, not dumps)."""
    for k in path[:-1]:
        running, new = _step(running, k), _step(new, k)
    k = path[-1]
    if isinstance(running, dict):
        running[k] = new[k]
    else:
        setattr(running, k, getattr(new, k))


def _step(node: Any, k: Any) -> Any:
    return node[k] if isinstance(node, dict | list) else getattr(node, k)
