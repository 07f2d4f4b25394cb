"""Names a config refers to, checked in a pass of their own, and "did you mean" hints.

The pass reads the YAML tree, not the validated model, so it runs even when a section fails
schema validation (a model validator never runs then): one `check` lists a misspelt key, a
source field mapped to a signal no profile has and an asset naming a missing profile together.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel

Problem = tuple[tuple[Any, ...], str]


def did_you_mean(name: object, known: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest known name, or ''."""
    close = difflib.get_close_matches(str(name), sorted(set(known)), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown(what: str, name: object, known: Iterable[str]) -> str:
    have = sorted(set(known))
    return f"unknown {what} {name!r}{did_you_mean(name, have)}; have {', '.join(have) or 'none'}"


def references(root: dict[Any, Any]) -> list[Problem]:
    """Every asset, profile and signal the tree names that it does not define."""
    profiles = _mapping(root, "profiles")
    signals_of = {str(n): set(_mapping(p, "signals")) for n, p in profiles.items()}
    every_signal = set().union(*signals_of.values()) if signals_of else set()
    out: list[Problem] = []
    profile_of: dict[str, str] = {}
    for i, a in enumerate(_items(root, "assets")):
        if not isinstance(a, dict):
            continue
        prof = a.get("profile")
        if isinstance(prof, str) and prof not in profiles:
            out.append((("assets", i, "profile"), unknown("profile", prof, signals_of)))
        if isinstance(a.get("id"), str) and isinstance(prof, str):
            profile_of[a["id"]] = prof
    for i, s in enumerate(_items(root, "sources")):
        if isinstance(s, dict):
            out += _source(i, s, profile_of, signals_of, every_signal)
    return out


def _source(
    i: int, s: dict[Any, Any], profile_of: dict[str, str], signals_of: dict[str, set[str]], every_signal: set[str]
) -> list[Problem]:
    out: list[Problem] = []

    def signal(loc: tuple[Any, ...], name: object, asset: object = None) -> None:
        have = signals_of.get(profile_of.get(asset, ""), every_signal) if isinstance(asset, str) else every_signal
        if isinstance(name, str) and "{" not in name and name not in have:
            where = f"profile {profile_of[asset]!r}" if isinstance(asset, str) and asset in profile_of else "any profile"
            out.append((loc, f"signal {name!r} is not in {where}{did_you_mean(name, have)}"))

    def asset(loc: tuple[Any, ...], name: object) -> None:
        if isinstance(name, str) and "{" not in name and name not in profile_of:
            out.append((loc, unknown("asset", name, profile_of)))

    if isinstance(s.get("fields"), dict):
        for key, name in s["fields"].items():
            signal(("sources", i, "fields", key), name)
    signal(("sources", i, "signal"), s.get("signal"), s.get("asset"))
    asset(("sources", i, "asset"), s.get("asset"))
    for j, a in enumerate(_items(s, "assets")):
        asset(("sources", i, "assets", j), a)
    for j, name in enumerate(_items(s, "signals")):
        signal(("sources", i, "signals", j), name)
    for j, node in enumerate(_items(s, "nodes")):
        if isinstance(node, dict):
            asset(("sources", i, "nodes", j, "asset"), node.get("asset"))
            signal(("sources", i, "nodes", j, "signal"), node.get("signal"), node.get("asset"))
    return out


def keys_at(model: type[BaseModel], loc: tuple[Any, ...]) -> set[str]:
    """The keys the schema allows in the mapping at `loc` (a path as pydantic reports it, union
    tags included); empty when the path leads nowhere known."""
    kinds: list[Any] = [model]
    for part in loc:
        nxt: list[Any] = []
        for t in kinds:
            for u in _members(t):
                if isinstance(u, type) and issubclass(u, BaseModel):
                    if isinstance(part, str) and part in u.model_fields:
                        nxt.append(u.model_fields[part].annotation)
                    elif _tag(u) == part:
                        nxt.append(u)
                elif typing.get_origin(u) is list and isinstance(part, int):
                    nxt.append(typing.get_args(u)[0])
                elif typing.get_origin(u) is dict:
                    nxt.append(typing.get_args(u)[1])
        kinds = nxt
    models = [u for t in kinds for u in _members(t) if isinstance(u, type) and issubclass(u, BaseModel)]
    return {name for m in models for name in m.model_fields}


def _mapping(node: object, key: str) -> dict[Any, Any]:
    value = node.get(key) if isinstance(node, dict) else None
    return value if isinstance(value, dict) else {}


def _items(node: object, key: str) -> list[Any]:
    value = node.get(key) if isinstance(node, dict) else None
    return value if isinstance(value, list) else []


def _members(t: Any) -> list[Any]:
    """A type with Annotated, Optional and unions taken apart."""
    if typing.get_origin(t) is typing.Annotated:
        return _members(typing.get_args(t)[0])
    if typing.get_origin(t) in (typing.Union, types.UnionType):
        return [m for a in typing.get_args(t) for m in _members(a)]
    return [t]


def _tag(model: type[BaseModel]) -> object:
    """The `type:` value a model of a discriminated union carries (`mqtt`, `email` ...)."""
    f = model.model_fields.get("type")
    args = typing.get_args(f.annotation) if f is not None and typing.get_origin(f.annotation) is typing.Literal else ()
    return args[0] if args else None
