"""What `edgegw check` and `edgegw run` both verify before anything starts, so they agree.

The config (schema, templates, ids, limits), the models, the TLS contexts of both brokers, the
outbox path and its lock, the state directory and the libraries of the configured sources.
Nothing is opened but files: no socket, no broker, no outbox database.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import math
import os
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgegw.config import ConfigError, GatewayConfig, TlsConfig, load_config
from edgegw.config.base import MAX_CERT_BYTES, regular_file
from edgegw.config.load import located
from edgegw.statelock import STATE_LOCK, lock_state_dir

if TYPE_CHECKING:
    from edgegw.engine.models import ModelSet

DEFAULT_STATE_DIR = "/var/lib/edgegw"
# source type -> (its module, the extra that brings its libraries)
SOURCE_MODULES = {
    "mqtt": ("edgegw.sources.mqtt", ""),
    "opcua": ("edgegw.sources.opcua", "opcua"),
    "coap": ("edgegw.sources.coap", "coap"),
}


@dataclass
class Prepared:
    """A config that can run: the models loaded, where state lives, and what to warn about."""

    cfg: GatewayConfig
    models: dict[str, ModelSet]
    state_dir: Path | None
    warnings: list[str] = field(default_factory=list)


def prepare(path: str, overrides: Sequence[str] = ()) -> Prepared:
    """Everything `run` needs checked; ConfigError lists every problem as `file:line: field: what`."""
    unresolved: list[str] = []  # names the file uses but does not define: listed with the rest
    cfg = load_config(path, overrides, unresolved)
    problems: list[tuple[tuple[Any, ...], str]] = []
    models = _models(cfg, path, problems)
    _tls(cfg, problems)
    _outbox(cfg, problems)
    _readings(cfg, problems)
    warnings = list(cfg.warnings)
    state_dir = _state_dir(cfg, problems, warnings)
    _state_lock(state_dir, problems)
    _notify(cfg, state_dir, problems)
    _web(cfg, state_dir, problems, warnings)
    _report(cfg, state_dir, problems)
    _history(cfg, state_dir, problems, warnings)
    _learn(cfg, state_dir, problems)
    _source_libraries(cfg, problems)
    if problems or unresolved:
        raise ConfigError(unresolved + located(path, problems))
    return Prepared(cfg, models, state_dir, warnings)


def _models(cfg: GatewayConfig, path: str, problems: list[tuple[tuple[Any, ...], str]]) -> dict[str, ModelSet]:
    from edgegw.engine.models import load_profile_models

    models, failed = load_profile_models(cfg.profiles, path)
    problems += [(("profiles", name, "model"), f"{where}: {e}") for name, where, e in failed]
    return models


def _tls(cfg: GatewayConfig, problems: list[tuple[tuple[Any, ...], str]]) -> None:
    from edgegw.mqttconn import tls_context

    brokers: list[tuple[tuple[Any, ...], TlsConfig]] = []
    if cfg.mqtt.tls is not None:
        brokers.append((("mqtt", "tls"), cfg.mqtt.tls))
    if cfg.upstream is not None and cfg.upstream.use_tls:
        brokers.append((("upstream", "tls"), cfg.upstream.tls or TlsConfig()))
    for loc, tls in brokers:
        files = [(key, path) for key in ("ca_file", "cert_file", "key_file") if (path := getattr(tls, key))]
        bad = [((*loc, key), problem) for key, path in files if (problem := regular_file(path, MAX_CERT_BYTES))]
        if bad:  # a device or FIFO would hang OpenSSL's read
            problems += bad
            continue
        try:
            tls_context(tls)
        except (OSError, ssl.SSLError, ValueError) as e:
            problems.append((loc, f"cannot build the TLS context: {e}"))


def _outbox(cfg: GatewayConfig, problems: list[tuple[tuple[Any, ...], str]]) -> None:
    """The outbox's folder can be written, and no other process holds the outbox."""
    if cfg.upstream is None:
        return
    _queue_file(Path(cfg.upstream.outbox.path), ("upstream", "outbox", "path"), problems)


def _notify(cfg: GatewayConfig, state_dir: Path | None, problems: list[tuple[tuple[Any, ...], str]]) -> None:
    """The notification queues, like the outbox: writable, and held by no other process."""
    if cfg.notify is None:
        return
    from edgegw.config.notify import queue_file

    folder = cfg.notify.folder(state_dir)
    for i, t in enumerate(cfg.notify.targets):
        _queue_file(queue_file(folder, t), ("notify", "targets", i), problems)


def _web(cfg: GatewayConfig, state_dir: Path | None, problems: list[tuple[tuple[Any, ...], str]], warnings: list[str]) -> None:
    """The page's users file can be read, and its TLS files load; no users yet, or a listen beyond
    loopback without TLS, only warn."""
    if cfg.web is None:
        return
    from edgegw.config.web import is_loopback
    from edgegw.web.auth import UsersError, default_users_file, read_users

    try:
        path = default_users_file(cfg.web.users_file, state_dir)
        if not read_users(path) and cfg.web.anonymous == "off":
            warnings.append(f"web.users_file: no users in {path} yet: edgegw users add NAME --role operator --users-file {path}")
    except UsersError as e:
        problems.append((("web", "users_file"), str(e)))
    if cfg.web.tls is not None:
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cfg.web.tls.cert_file, cfg.web.tls.key_file)
        except (OSError, ssl.SSLError) as e:
            problems.append((("web", "tls"), f"cannot load the certificate and key: {e}"))
    elif not is_loopback(cfg.web.host):
        warnings.append(f"web.listen: {cfg.web.listen} is reachable beyond this machine without TLS: set web.tls")


def _report(cfg: GatewayConfig, state_dir: Path | None, problems: list[tuple[tuple[Any, ...], str]]) -> None:
    """A report schedule needs history (a state directory) and email targets that exist."""
    if cfg.report is None:
        return
    if state_dir is None or cfg.history.file(state_dir) is None:
        problems.append((("report",), "a report schedule needs history: set gateway.state_dir (and history on)"))
    emails = {t.name for t in cfg.notify.targets if t.type == "email"} if cfg.notify is not None else set()
    for i, name in enumerate(cfg.report.to):
        if name not in emails:
            have = f" (email targets: {', '.join(sorted(emails))})" if emails else " (no notify email target)"
            problems.append((("report", "to", i), f"{name!r} is not an email target of notify:{have}"))
    known = {a.id for a in cfg.assets}
    for i, a in enumerate(cfg.report.assets):
        if a not in known:
            problems.append((("report", "assets", i), f"unknown asset {a!r}"))


def _learn(cfg: GatewayConfig, state_dir: Path | None, problems: list[tuple[tuple[Any, ...], str]]) -> None:
    """A profile that learns its model keeps its history and its models in the state directory."""
    learned = cfg.learned_profiles
    lcfg = cfg.learning
    if not learned or lcfg is None:
        return
    if state_dir is None:
        problems.append((("profiles", learned[0], "model"), "a learned model (model: learn) needs a writable gateway.state_dir"))
    h = cfg.history
    if not h.enabled or not h.features_every_hops:
        problems.append((("history",), "a learned model (model: learn) learns from history's feature rows: keep them on"))
    elif h.features_days * 86400 < lcfg.min_history_s:
        problems.append(
            (
                ("history", "features_days"),
                f"keeps {h.features_days:g} days of feature rows, fewer than learn.min_history_s needs "
                f"({lcfg.min_history_s / 86400:g} days): set it to {math.ceil(lcfg.min_history_s / 86400)} or more",
            )
        )


def _queue_file(p: Path, loc: tuple[Any, ...], problems: list[tuple[tuple[Any, ...], str]]) -> None:
    """An SQLite queue at `p`: its folder can be written, and no other process holds its lock."""
    folder = next((d for d in (p.parent, *p.parent.parents) if d.exists()), None)
    if p.exists() and not p.is_file():
        problems.append((loc, f"{p} is not a regular file"))
    elif folder is None or not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        problems.append((loc, f"cannot create or write {p}: {folder or p.parent} is not a writable directory"))
    lock = Path(f"{p}.lock")
    if lock.is_file():
        try:
            fd = os.open(lock, os.O_RDONLY)
        except OSError as e:
            problems.append((loc, f"cannot open {lock}: {e.strerror}"))
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            problems.append((loc, f"{p} is in use by another running gateway (one gateway per outbox)"))
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _readings(cfg: GatewayConfig, problems: list[tuple[tuple[Any, ...], str]]) -> None:
    if cfg.upstream is not None:
        known = {sig for prof in cfg.profiles.values() for sig in prof.signals}
        unknown = sorted(set(cfg.upstream.send.readings) - known)
        if unknown:
            problems.append((("upstream", "send", "readings"), f"no profile has signal(s) {', '.join(unknown)}"))


def state_dir_of(cfg: GatewayConfig) -> tuple[Path | None, bool]:
    """(directory, configured): `gateway.state_dir`, else $STATE_DIRECTORY, else the default if it exists."""
    if cfg.gateway.state_dir:
        return Path(cfg.gateway.state_dir), True
    env = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    if env:
        return Path(env), True
    return (Path(DEFAULT_STATE_DIR), False) if Path(DEFAULT_STATE_DIR).is_dir() else (None, False)


def _state_dir(cfg: GatewayConfig, problems: list[tuple[tuple[Any, ...], str]], warnings: list[str]) -> Path | None:
    """A configured directory that does not exist is a mistake; one that exists but cannot be
    written (a read-only file system, a full card) only costs what it keeps: the gateway runs,
    seq is not kept durably, and history raises its gateway alarm."""
    d, configured = state_dir_of(cfg)
    if d is None:
        return None
    if not d.is_dir():
        if configured:
            problems.append((("gateway", "state_dir"), f"{d} is not a writable directory: it does not exist"))
        return None
    if not os.access(d, os.W_OK | os.X_OK):
        if not configured:
            return None
        warnings.append(f"gateway.state_dir: {d} is not writable: seq and history are not kept (history raises an alarm)")
    return d


def _state_lock(d: Path | None, problems: list[tuple[tuple[Any, ...], str]]) -> None:
    """No other gateway runs on this state directory (statelock.py)."""
    if d is not None and (d / STATE_LOCK).is_file():
        try:
            fd = lock_state_dir(d, os.O_RDONLY)
            if fd >= 0:
                os.close(fd)
        except ConfigError as e:
            problems.append((("gateway", "state_dir"), e.problems[0]))


def _history(
    cfg: GatewayConfig, state_dir: Path | None, problems: list[tuple[tuple[Any, ...], str]], warnings: list[str]
) -> None:
    """History's file: held by no other gateway; an unwritable folder is a warning (history
    raises its gateway alarm and the gateway runs without it)."""
    p = cfg.history.file(state_dir)
    if p is None:
        if cfg.history.enabled and cfg.history.path is None:
            warnings.append("history: no state directory (gateway.state_dir): history is not kept")
        return
    folder = next((d for d in (p.parent, *p.parent.parents) if d.exists()), None)
    if p.exists() and not p.is_file():
        problems.append((("history", "path"), f"{p} is not a regular file"))
        return
    if folder is None or not os.access(folder, os.W_OK | os.X_OK) or (p.exists() and not os.access(p, os.W_OK)):
        if state_dir is None or p.parent != state_dir or os.access(state_dir, os.W_OK):  # else said above
            warnings.append(f"history: cannot write {p}: history is not kept (the gateway raises an alarm)")
        return
    problem: list[tuple[tuple[Any, ...], str]] = []
    _queue_file(p, ("history", "path"), problem)
    problems += [(loc, msg.replace("(one gateway per outbox)", "(one gateway per history file)")) for loc, msg in problem]


def _source_libraries(cfg: GatewayConfig, problems: list[tuple[tuple[Any, ...], str]]) -> None:
    for i, spec in enumerate(cfg.sources):
        module, extra = SOURCE_MODULES[spec.type]
        try:
            importlib.import_module(module)
        except ImportError as e:
            hint = f": pip install 'edgegw[{extra}]'" if extra else ""
            problems.append((("sources", i, "type"), f"{spec.type} sources need the {e.name or 'missing'} library{hint}"))
