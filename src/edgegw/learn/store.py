"""Learned models on disk: `<state_dir>/models/<key>/<version>/` (a model directory the engine
loads), `current` (a symlink to the serving version, switched by `os.replace`, so a reader sees
the old or the new one, never neither), `installed.json` (versions in install order, for
rollback) and `last.json` (the last retrain's verdict). `<state_dir>/models/status.json` is the
daemon's view: per asset, learning progress or the armed version. The key is the asset id
(`learn.per: asset`) or the profile name. Standard library only: the daemon and the training
process both use it."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

CURRENT = "current"
INSTALLED = "installed.json"
LAST = "last.json"
STATUS = "status.json"


class StoreError(Exception):
    """A rollback with nothing to go back to, an unreadable store."""


def write_json(path: Path, data: Any) -> None:
    """Written beside and renamed over: a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    tmp.replace(path)


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return default


class ModelStore:
    """The learned model versions of one state directory."""

    def __init__(self, state_dir: Path | str) -> None:
        self.root = Path(state_dir) / "models"

    def folder(self, key: str) -> Path:
        return self.root / key

    def current(self, key: str) -> Path | None:
        """The serving version's directory, or None while the key is learning."""
        link = self.folder(key) / CURRENT
        try:
            target = os.readlink(link)
        except OSError:
            return None
        path = self.folder(key) / target
        return path if (path / "model.json").is_file() else None

    def current_version(self, key: str) -> str:
        path = self.current(key)
        return path.name if path is not None else ""

    def installed(self, key: str) -> list[str]:
        """Versions in install order (oldest first), those still on disk."""
        names = read_json(self.folder(key) / INSTALLED, [])
        return [v for v in names if isinstance(v, str) and (self.folder(key) / v / "model.json").is_file()]

    def staging(self, key: str, version: str) -> Path:
        """A fresh directory to write a candidate into; `install` moves it in place."""
        d = self.folder(key) / f".{version}.{os.getpid()}.partial"
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        return d

    def install(self, key: str, staged: Path, version: str, keep: int) -> Path:
        """Move a written candidate (model.json last) in as `version` and make it current."""
        folder = self.folder(key)
        final = folder / version
        if final.exists():  # the same content trained again: the version names it
            shutil.rmtree(staged, ignore_errors=True)
        else:
            staged.replace(final)
        names = [v for v in self.installed(key) if v != version] + [version]
        write_json(folder / INSTALLED, names)
        self._point(key, version)
        self.prune(key, keep)
        return final

    def rollback(self, key: str) -> str:
        """Serve the version installed before the current one; returns it. The version rolled back
        from stays on disk but leaves the install order, so a second rollback goes further back."""
        names = self.installed(key)
        cur = self.current_version(key)
        if cur not in names or names.index(cur) == 0:
            raise StoreError(f"{key}: no earlier model to roll back to (installed: {names or 'none'})")
        prev = names[names.index(cur) - 1]
        write_json(self.folder(key) / INSTALLED, [v for v in names if v != cur])
        self._point(key, prev)
        return prev

    def prune(self, key: str, keep: int) -> None:
        """Keep the last `keep` installed versions (and the current one)."""
        folder = self.folder(key)
        names = self.installed(key)
        cur = self.current_version(key)
        stay = set(names[-keep:]) | {cur}
        for d in folder.iterdir():
            if d.is_dir() and not d.is_symlink() and not d.name.startswith(".") and d.name not in stay:
                shutil.rmtree(d, ignore_errors=True)
        write_json(folder / INSTALLED, [v for v in names if v in stay])

    def _point(self, key: str, version: str) -> None:
        folder = self.folder(key)
        tmp = folder / f".{CURRENT}.{os.getpid()}.tmp"
        tmp.unlink(missing_ok=True)
        os.symlink(version, tmp)
        os.replace(tmp, folder / CURRENT)

    def last(self, key: str) -> dict[str, Any]:
        """The last retrain's verdict for this key ({} before the first)."""
        d = read_json(self.folder(key) / LAST, {})
        return d if isinstance(d, dict) else {}

    def set_last(self, key: str, verdict: dict[str, Any]) -> None:
        self.folder(key).mkdir(parents=True, exist_ok=True)
        write_json(self.folder(key) / LAST, {**verdict, "at": verdict.get("at", time.time())})

    def status(self) -> dict[str, Any]:
        d = read_json(self.root / STATUS, {})
        return d if isinstance(d, dict) else {}

    def set_status(self, status: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        write_json(self.root / STATUS, status)


__all__ = ["ModelStore", "StoreError", "read_json", "write_json"]
