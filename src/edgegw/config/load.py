"""Reading a config file: YAML, `${ENV}` substitution, `--set` overrides, validation with file:line."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from edgegw.config.base import ConfigError
from edgegw.config.root import GatewayConfig

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _substitute(node: Any, path: tuple[Any, ...], problems: list[tuple[tuple[Any, ...], str]]) -> Any:
    """Replace ${VAR} and ${VAR:-default} in every string, in place; unknown variables are problems."""
    if isinstance(node, dict):
        for k in list(node):
            node[k] = _substitute(node[k], (*path, k), problems)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            node[i] = _substitute(v, (*path, i), problems)
    elif isinstance(node, str) and "${" in node:

        def repl(m: re.Match[str]) -> str:
            val = os.environ.get(m.group(1), m.group(2))
            if val is None:
                problems.append((path, f"environment variable ${{{m.group(1)}}} is not set"))
                return ""
            return val

        return _ENV.sub(repl, node)
    return node


def _line_of(root: Any, loc: Sequence[Any]) -> int | None:
    """1-based line of the deepest YAML node on `loc` that exists (discriminator tags are skipped)."""
    node, line = root, None
    for key in loc:
        if isinstance(node, CommentedMap) and key in node:
            with contextlib.suppress(KeyError, TypeError):  # keys added by --set have no position
                line = node.lc.key(key)[0] + 1
            node = node[key]
        elif isinstance(node, CommentedSeq) and isinstance(key, int) and 0 <= key < len(node):
            with contextlib.suppress(KeyError, TypeError):
                line = node.lc.item(key)[0] + 1
            node = node[key]
        elif isinstance(node, CommentedMap | CommentedSeq):
            continue  # e.g. the union tag 'mqtt' in ('sources', 0, 'mqtt', 'topic')
        else:
            break
    return line


def _apply_override(root: dict[Any, Any], expr: str) -> str | None:
    """Apply `a.b.0.c=value` (value parsed as YAML); return a problem or None."""
    key, sep, raw = expr.partition("=")
    if not sep or not key:
        return f"--set {expr!r}: expected KEY=VALUE"
    try:
        value = YAML(typ="safe").load(raw) if raw.strip() else ""
    except YAMLError:
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
                    node[part] = CommentedMap()
                node = node[part]
        else:
            return f"--set {key}: {'.'.join(parts[:i])} is not a mapping"
    return None


def load_config(path: str | os.PathLike[str], overrides: Sequence[str] = ()) -> GatewayConfig:
    """Read, substitute, override and validate a config file; raise ConfigError listing every problem."""
    fname = str(path)
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise ConfigError([f"{fname}: cannot read: {e.strerror}"]) from None
    try:
        root = YAML(typ="rt").load(text)
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{fname}:{mark.line + 1}" if mark else fname
        raise ConfigError([f"{where}: YAML syntax: {e.problem or e.context}"]) from None
    except YAMLError as e:
        raise ConfigError([f"{fname}: YAML syntax: {e}"]) from None
    if root is None:
        root = CommentedMap()
    if not isinstance(root, dict):
        raise ConfigError([f"{fname}:1: the top level must be a mapping"])
    problems: list[str] = []
    for expr in overrides:
        p = _apply_override(root, expr)
        if p:
            problems.append(p)
    env_problems: list[tuple[tuple[Any, ...], str]] = []
    _substitute(root, (), env_problems)
    for loc, msg in env_problems:
        line = _line_of(root, loc)
        problems.append(f"{fname}{f':{line}' if line else ''}: {'.'.join(map(str, loc))}: {msg}")
    if problems:
        raise ConfigError(problems)
    try:
        return GatewayConfig.model_validate(root)
    except ValidationError as e:
        for err in e.errors():
            loc = tuple(err["loc"])
            line = _line_of(root, loc)
            msg = err["msg"].removeprefix("Value error, ")
            shown = [p for i, p in enumerate(loc) if not _is_tag(loc, i)]
            dotted = ".".join(str(p) for p in shown) or "(top level)"
            if err["type"] == "extra_forbidden":
                msg = f"unknown key {loc[-1]!r}"
            problems.append(f"{fname}{f':{line}' if line else ''}: {dotted}: {msg}")
        raise ConfigError(problems) from None


def _is_tag(loc: tuple[Any, ...], i: int) -> bool:
    """The discriminated union adds the source type to error paths: sources.0.mqtt.topic."""
    return i >= 2 and loc[i - 2] == "sources" and isinstance(loc[i - 1], int) and loc[i] in ("mqtt", "opcua", "coap")


def resolve_path(p: str, config_file: str | os.PathLike[str] | None = None) -> Path:
    """A relative path from the config: the working directory first, then the config file's folder."""
    path = Path(p)
    if path.is_absolute() or config_file is None or path.exists():
        return path
    alt = Path(config_file).resolve().parent / path
    return alt if alt.exists() else path
