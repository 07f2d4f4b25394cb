"""Reading a config file: YAML, `${ENV}` substitution, `--set` overrides, validation with file:line.

Relative paths (every field typed `base.ConfigPath`) resolve against the config file's folder.
Only a regular file of at most MAX_FILE_BYTES of UTF-8 is read (a FIFO or a device would hang
or exhaust memory); the YAML limits are `yamltree`'s. Line numbers are worked out only when a
problem or a warning needs one: finding them costs a second pass.
"""

from __future__ import annotations

import functools
import os
import re
import stat
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from edgegw.config import names, yamltree
from edgegw.config.base import ConfigError
from edgegw.config.root import GatewayConfig

MAX_FILE_BYTES = 32 * 2**20
# Keys still accepted but without effect: (path pattern, None = any key) -> what to do instead.
DEPRECATED: dict[tuple[str | None, ...], str] = {
    ("profiles", None, "max_rate_hz"): "deprecated and ignored (a window holds every sample of the last "
    "window_s whatever the rate); remove it",
}
_NAMED = re.compile(r"^([A-Za-z_]\w*(?:\.[\w-]+)*): (.*)$", re.DOTALL)
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _substitute(
    node: Any, path: tuple[Any, ...], problems: list[tuple[tuple[Any, ...], str]], seen: set[int] | None = None
) -> Any:
    """Replace ${VAR} and ${VAR:-default} in every string, in place; unknown variables are problems.
    A container shared through an alias is visited once."""
    seen = set() if seen is None else seen
    if isinstance(node, dict | list):
        if id(node) in seen:
            return node
        seen.add(id(node))
    if isinstance(node, dict):
        for k in list(node):
            node[k] = _substitute(node[k], (*path, k), problems, seen)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            node[i] = _substitute(v, (*path, i), problems, seen)
    elif isinstance(node, str) and "${" in node:

        def repl(m: re.Match[str]) -> str:
            val = os.environ.get(m.group(1), m.group(2))
            if val is None:
                problems.append((path, f"environment variable ${{{m.group(1)}}} is not set"))
                return ""
            return val

        return _ENV.sub(repl, node)
    return node


def _line_of(lines: dict[tuple[Any, ...], int], loc: Sequence[Any]) -> int | None:
    """1-based line of the deepest key or item on `loc` that is in the file (union tags skipped)."""
    shown = tuple(p for i, p in enumerate(loc) if not _is_tag(tuple(loc), i))
    for n in range(len(shown), 0, -1):
        line = lines.get(shown[:n])
        if line is not None:
            return line
    return None


def _apply_override(root: dict[Any, Any], expr: str) -> str | None:
    """Apply `a.b.0.c=value` (value parsed as YAML); return a problem or None."""
    key, sep, raw = expr.partition("=")
    if not sep or not key:
        return f"--set {expr!r}: expected KEY=VALUE"
    try:
        value = yamltree.load(raw) if raw.strip() else ""
    except yamltree.TreeError:
        value = raw
    parts = key.split(".")
    node: Any = root
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                return f"--set {key}: no list item {part!r}"
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                if node.get(part) is None:
                    node[part] = {}
                node = node[part]
        else:
            return f"--set {key}: {'.'.join(parts[:i])} is not a mapping"
    return None


def read_text(path: str | os.PathLike[str]) -> str:
    """The file's text: a regular file of UTF-8, at most MAX_FILE_BYTES; ConfigError otherwise."""
    fname = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise ConfigError([f"{fname}: cannot read: {e.strerror}"]) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise ConfigError([f"{fname}: not a regular file"])
    with os.fdopen(fd, "rb") as f:
        if st.st_size > MAX_FILE_BYTES:
            raise ConfigError([f"{fname}: larger than {MAX_FILE_BYTES // 2**20} MiB"])
        try:
            data = f.read(MAX_FILE_BYTES + 1)
        except OSError as e:
            raise ConfigError([f"{fname}: cannot read: {e.strerror}"]) from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError([f"{fname}: larger than {MAX_FILE_BYTES // 2**20} MiB"])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ConfigError([f"{fname}:{line}: not UTF-8 text (byte 0x{data[e.start]:02x})"]) from None


def load_config(
    path: str | os.PathLike[str], overrides: Sequence[str] = (), unresolved: list[str] | None = None
) -> GatewayConfig:
    """Read, substitute, override and validate a config file; raise ConfigError listing every problem.
    Deprecated keys load, with a warning each in the result's `warnings`. With `unresolved`, a file
    whose schema holds but that names what it does not define (a source field mapped to a signal no
    profile has) loads, its problems put there, so the preflight can list its own beside them."""
    fname = str(path)
    text = read_text(path)
    try:
        root = yamltree.load(text)
    except yamltree.TreeError as e:
        raise ConfigError([f"{fname}{f':{e.line}' if e.line else ''}: {e.what}"]) from None
    if root is None:
        root = {}
    if not isinstance(root, dict):
        raise ConfigError([f"{fname}:1: the top level must be a mapping"])
    lines = _line_finder(text)

    def at(loc: Sequence[Any], msg: str) -> str:
        return _at(fname, lines, loc, msg)

    problems: list[str] = []
    for expr in overrides:
        p = _apply_override(root, expr)
        if p:
            problems.append(p)
    env_problems: list[tuple[tuple[Any, ...], str]] = []
    _substitute(root, (), env_problems)
    problems += [at(loc, msg) for loc, msg in env_problems]
    if problems:
        raise ConfigError(problems)
    warnings = [at(loc, msg) for loc, msg in _deprecated(root)]
    context: dict[str, Any] = {"config_dir": Path(fname).resolve().parent}
    found: list[tuple[tuple[Any, ...], str]] = []
    cfg: GatewayConfig | None = None
    try:
        cfg = GatewayConfig.model_validate(root, context=context)
    except ValidationError as e:
        found = [_schema_problem(err) for err in e.errors()]
    found += [p for p in names.references(root) if p not in found]
    found.sort(key=lambda p: _line_of(lines(), p[0]) or 0)
    if cfg is not None and unresolved is not None:
        unresolved += [at(loc, msg) for loc, msg in found]
    elif found or cfg is None:
        raise ConfigError([at(loc, msg) for loc, msg in found])
    for given, beside, used in context.get("cwd_paths", []):
        loc = next((loc for loc, v in _strings(root, ()) if v == given), ())
        warnings.append(
            at(
                loc,
                f"{given} is not beside the config ({beside}); used {used} from the working directory, "
                "which a later release will not look in: give the path relative to the config file's folder",
            )
        )
    cfg.warnings.extend(warnings)
    return cfg


def _strings(node: Any, path: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], str]]:
    """(path, value) of every string in the tree, depth first."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _strings(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _strings(v, (*path, i))
    elif isinstance(node, str):
        yield path, node


def _schema_problem(err: Any) -> tuple[tuple[Any, ...], str]:
    """(path, what) of one pydantic error: a check across sections names its own field
    ("assets.3.profile: ..."); an unknown key gets the closest allowed one as a hint."""
    loc = tuple(err["loc"])
    msg = err["msg"].removeprefix("Value error, ")
    named = _NAMED.match(msg) if err["type"] == "value_error" else None
    if named:
        loc = (*loc, *(int(p) if p.isdigit() else p for p in named.group(1).split(".")))
        msg = named.group(2)
    if err["type"] == "extra_forbidden":
        msg = f"unknown key {loc[-1]!r}{names.did_you_mean(loc[-1], names.keys_at(GatewayConfig, loc[:-1]))}"
    return loc, msg


def located(path: str | os.PathLike[str], problems: Sequence[tuple[Sequence[Any], str]]) -> list[str]:
    """`file:line: field.path: what` for problems found after loading (the lines: a second read)."""
    try:
        text = read_text(path)
    except ConfigError:
        text = ""
    lines = _line_finder(text)
    return [_at(str(path), lines, loc, msg) for loc, msg in problems]


def _at(fname: str, lines: Callable[[], dict[tuple[Any, ...], int]], loc: Sequence[Any], msg: str) -> str:
    line = _line_of(lines(), loc)
    shown = [p for i, p in enumerate(loc) if not _is_tag(tuple(loc), i)]
    return f"{fname}{f':{line}' if line else ''}: {'.'.join(map(str, shown)) or '(top level)'}: {msg}"


def _line_finder(text: str) -> Callable[[], dict[tuple[Any, ...], int]]:
    """Lines of every key and item, found on first use (a second parse of the text)."""

    @functools.cache
    def lines() -> dict[tuple[Any, ...], int]:
        found: dict[tuple[Any, ...], int] = {}
        try:
            yamltree.load(text, found)
        except yamltree.TreeError:
            return found  # the lines up to the problem
        return found

    return lines


def _deprecated(root: dict[Any, Any]) -> list[tuple[tuple[Any, ...], str]]:
    """(path, what to do) of every deprecated key present."""
    out: list[tuple[tuple[Any, ...], str]] = []
    for pattern, advice in DEPRECATED.items():
        nodes: list[tuple[tuple[Any, ...], Any]] = [((), root)]
        for part in pattern[:-1]:
            nodes = [((*p, k), v) for p, n in nodes if isinstance(n, dict) for k, v in n.items() if part is None or k == part]
        out += [((*p, pattern[-1]), advice) for p, n in nodes if isinstance(n, dict) and pattern[-1] in n]
    return out


def _is_tag(loc: tuple[Any, ...], i: int) -> bool:
    """A discriminated union adds the type to error paths: sources.0.mqtt.topic, notify.targets.0.email.to."""
    return (
        i >= 2
        and loc[i - 2] in ("sources", "targets")
        and isinstance(loc[i - 1], int)
        and loc[i] in ("mqtt", "opcua", "coap", "email", "webhook")
    )


def resolve_path(p: str, config_file: str | os.PathLike[str] | None = None) -> Path:
    """A path as the config means it: relative to the config file's folder (`load_config` already
    resolves every `ConfigPath` field; this is for paths read from the tree by hand)."""
    path = Path(p)
    if path.is_absolute() or config_file is None:
        return path
    return Path(config_file).resolve().parent / path
