"""YAML text to plain dicts and lists, with limits that hold against hostile files.

libyaml (through PyYAML, when it has it) reads the event stream; the tree is built here,
iteratively, so that no input can recurse, expand aliases without bound or hang: nesting depth,
alias expansion and size are capped, and problems carry the line they are on. Scalars follow
the YAML 1.2 core schema (`yes`/`on` stay strings), as ruamel.yaml and the README assume.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import yaml
from yaml import events as ev

MAX_DEPTH = 32  # the deepest real config is ~7 levels (profiles.NAME.signals.SIG.range)
MAX_NODES = 5_000_000  # after alias expansion: a 200k-asset file has ~1.2 M; an alias bomb far more
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT = re.compile(r"^[-+]?[0-9][0-9_]*$")
_INT_OCT = re.compile(r"^0o[0-7]+$")
_INT_HEX = re.compile(r"^0x[0-9a-fA-F]+$")
_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?$")
_SPECIAL = {
    ".inf": float("inf"),
    ".Inf": float("inf"),
    ".INF": float("inf"),
    "+.inf": float("inf"),
    "+.Inf": float("inf"),
    "+.INF": float("inf"),
    "-.inf": float("-inf"),
    "-.Inf": float("-inf"),
    "-.INF": float("-inf"),
    ".nan": float("nan"),
    ".NaN": float("nan"),
    ".NAN": float("nan"),
}
_STR_TAGS = {"!", "tag:yaml.org,2002:str"}


class TreeError(Exception):
    """Bad YAML: `line` (1-based, or None) and what is wrong."""

    def __init__(self, line: int | None, what: str) -> None:
        super().__init__(what)
        self.line = line
        self.what = what


def _line(e: Any) -> int:
    return int(e.start_mark.line) + 1


_MAYBE_NOT_STR = frozenset("0123456789+-.~nNtTfF")


def plain_scalar(value: str) -> Any:
    """A plain (unquoted) scalar under the YAML 1.2 core schema."""
    if value and value[0] not in _MAYBE_NOT_STR:
        return value
    if _NULL.match(value):
        return None
    if value in _BOOL:
        return _BOOL[value]
    if _INT.match(value):
        return int(value.replace("_", ""))
    if _INT_OCT.match(value):
        return int(value[2:], 8)
    if _INT_HEX.match(value):
        return int(value[2:], 16)
    if value in _SPECIAL:
        return _SPECIAL[value]
    if _FLOAT.match(value) and any(c.isdigit() for c in value):
        return float(value.replace("_", ""))
    return value


def _scalar(e: ev.ScalarEvent) -> Any:
    tag = e.tag
    if tag in _STR_TAGS or (tag is None and e.style):
        return e.value
    value = plain_scalar(e.value)
    if tag is None:
        return value
    want = {
        "tag:yaml.org,2002:int": int,
        "tag:yaml.org,2002:float": float,
        "tag:yaml.org,2002:bool": bool,
        "tag:yaml.org,2002:null": type(None),
    }.get(tag)
    if want is None:
        raise TreeError(_line(e), f"unsupported tag {tag}")
    if want is float and isinstance(value, int):
        return float(value)
    if not isinstance(value, want) or (want is int and isinstance(value, bool)):
        raise TreeError(_line(e), f"{e.value!r} is not a {tag.rsplit(':', 1)[-1]}")
    return value


class _Open:
    """A mapping or sequence being built: its value, pending key, size so far and anchor."""

    __slots__ = ("anchor", "key", "key_line", "merges", "nodes", "path", "value")

    def __init__(self, value: Any, anchor: str | None, path: tuple[Any, ...]) -> None:
        self.value = value
        self.anchor = anchor
        self.key: Any = _NO_KEY
        self.key_line = 0
        self.nodes = 1
        self.path = path
        self.merges: list[dict[Any, Any]] = []  # `<<` mappings: their keys fill in at the end


_NO_KEY = object()
_MERGE = "<<"


def load(text: str, lines: dict[tuple[Any, ...], int] | None = None) -> Any:
    """The one document in `text` as dicts, lists and scalars; TreeError on anything wrong.

    With `lines`, the 1-based line of every key and item is recorded under its path (for error
    messages: slower, so only when a problem needs it)."""
    stack: list[_Open] = []
    anchors: dict[str, tuple[Any, int]] = {}
    total = 0
    root: Any = None
    documents = 0
    try:
        for e in _events(text):
            cls = type(e)
            if cls is ev.ScalarEvent:
                node = _scalar(e)
                if e.anchor:
                    anchors[e.anchor] = (node, 1)
                total += 1
                if stack:
                    top = stack[-1]
                    top.nodes += 1
                    if (
                        lines is None
                        and top.key is not _NO_KEY
                        and type(top.value) is dict
                        and top.key != _MERGE
                        and top.key not in top.value
                    ):
                        top.value[top.key] = node  # the common case, inline: a key's scalar value
                        top.key = _NO_KEY
                    else:
                        _attach(top, node, _line(e), lines)
                else:
                    root = node
                continue
            if cls is ev.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise TreeError(_line(e), "more than one YAML document in the file")
                continue
            if isinstance(e, ev.MappingEndEvent | ev.SequenceEndEvent):
                done = stack.pop()
                if isinstance(done.value, dict) and done.key is not _NO_KEY:
                    raise TreeError(_line(e), "a key without a value")
                for m in done.merges:
                    for k, v in m.items():
                        done.value.setdefault(k, v)
                if done.anchor:
                    anchors[done.anchor] = (done.value, done.nodes)
                if stack:
                    stack[-1].nodes += done.nodes
                    _attach(stack[-1], done.value, _line(e), lines)
                else:
                    root = done.value
                continue
            if isinstance(e, ev.MappingStartEvent | ev.SequenceStartEvent):
                if e.tag not in (None, "!", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"):
                    raise TreeError(_line(e), f"unsupported tag {e.tag}")
                if len(stack) >= MAX_DEPTH:
                    raise TreeError(_line(e), f"nested deeper than {MAX_DEPTH} levels")
                total += 1
                path = (
                    (*stack[-1].path, stack[-1].key if isinstance(stack[-1].value, dict) else len(stack[-1].value))
                    if stack and lines is not None
                    else ()
                )
                value: Any = {} if isinstance(e, ev.MappingStartEvent) else []
                if stack and lines is not None:
                    lines.setdefault(path, _line(e) if stack[-1].key is _NO_KEY else stack[-1].key_line)
                stack.append(_Open(value, e.anchor, path))
                continue
            if cls is ev.AliasEvent:
                if e.anchor not in anchors:
                    raise TreeError(_line(e), f"alias *{e.anchor} names no anchor defined before it")
                node, size = anchors[e.anchor]
            else:
                continue  # stream start and end, document end
            total += size
            if total > MAX_NODES:
                raise TreeError(_line(e), f"more than {MAX_NODES:,} values once aliases are expanded")
            if not stack:
                root = node
                continue
            stack[-1].nodes += size
            _attach(stack[-1], node, _line(e), lines)
    except yaml.MarkedYAMLError as x:
        mark = x.problem_mark or x.context_mark
        raise TreeError(mark.line + 1 if mark else None, f"YAML syntax: {x.problem or x.context}") from None
    except yaml.YAMLError as x:
        raise TreeError(None, f"YAML syntax: {x}") from None
    return root


def _events(text: str) -> Iterator[ev.Event]:
    return yaml.parse(text, Loader=_Loader)


def _attach(top: _Open, node: Any, line: int, lines: dict[tuple[Any, ...], int] | None) -> None:
    """Put a finished node into the open container: as a list item, a key, or a key's value."""
    if isinstance(top.value, list):
        if lines is not None:
            lines.setdefault((*top.path, len(top.value)), line)
        top.value.append(node)
        return
    if top.key is _NO_KEY:
        if isinstance(node, dict | list):
            raise TreeError(line, "a mapping or list used as a key")
        top.key, top.key_line = node, line
        return
    key, top.key = top.key, _NO_KEY
    if lines is not None:
        lines.setdefault((*top.path, key), top.key_line)
    if key == _MERGE:
        for m in node if isinstance(node, list) else [node]:
            if not isinstance(m, dict):
                raise TreeError(line, "<< merges mappings only")
            top.merges.append(m)
        return
    if key in top.value:
        raise TreeError(top.key_line, f"duplicate key {key!r}")
    top.value[key] = node
