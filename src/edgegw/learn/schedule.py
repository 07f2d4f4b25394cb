"""The daemon's side of learning: the Learner knows per asset whether it is still `learning` (how
much of the history it needs it has seen) or `armed` (which model version serves), starts
`edgegw retrain` beside the daemon when an asset has enough normal history and then every
`learn.every_s`, one process at a time, and swaps a new model in when one appears in the store.

It is a sink: hops count each asset's normal feature rows (event time, rows with every feature,
none while one of the asset's alarms is active), alarms say which assets are in alarm. The
training process decides with the exact rules (learn.margin_s and friends) from the historian;
these counts only say when it is worth starting one. A model installed by anyone (the daemon's
child, a systemd timer, `edgegw models rollback`) is picked up on the next check: loaded in a
worker thread, swapped on the loop, journaled. A refused retrain raises the gateway alarm
`learn_refused` (source: the asset) until a later one succeeds.

Never imports scikit-learn or ml/: the child does the learning.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from edgegw.config import GatewayConfig
from edgegw.config.learn import LearnConfig
from edgegw.learn.store import ModelStore
from edgegw.records import AlarmEvent, Alert, AlertState, HopResult, Rollup, Severity

log = structlog.get_logger("edgegw.learn")
BACKOFF_S = (30.0, 3600.0)  # after a retrain that could not arm: first wait, cap (doubling)
REFUSED = "learn_refused"

Loader = Callable[[Path, str], Any]  # (model directory, profile) -> a loaded, checked, warmed-up model set
Installer = Callable[[str, str, Any], None]  # (key, profile, model set or None) -> serving


@dataclass
class KeyState:
    """One learned key (an asset, or a profile with `learn.per: profile`)."""

    key: str
    profile: str
    members: list[str]
    count: int = 0  # normal feature rows seen
    first: float = math.inf  # event time of the first and the newest of them
    last: float = -math.inf
    version: str = ""  # serving
    learned_until: float = -math.inf  # event time of the newest row the serving model learned from
    last_seen_verdict: float = 0.0
    outcome: str = ""
    reason: str = ""
    retrained_at: float = 0.0
    retry_at: float = 0.0  # wall clock: not before this after an attempt that did not arm
    backoff_s: float = 0.0
    refused: bool = False  # learn_refused active

    def progress(self, lcfg: LearnConfig) -> float:
        span = self.last - self.first if self.count else 0.0
        return max(0.0, min(1.0, span / lcfg.min_history_s, self.count / lcfg.min_windows))


class Learner:
    name = "learn"

    def __init__(
        self,
        cfg: GatewayConfig,
        config_path: str | None,
        state_dir: Path,
        load: Loader,
        install: Installer,
        alarm: Callable[[Alert], None],
        journal: Callable[[AlarmEvent], None],
    ) -> None:
        lcfg = cfg.learning
        assert lcfg is not None, "a Learner needs a profile that learns"
        self.cfg = cfg
        self.lcfg: LearnConfig = lcfg
        self.config_path = str(Path(config_path).resolve()) if config_path else None  # the child may run elsewhere
        self.store = ModelStore(state_dir)
        self._load, self._install, self._alarm, self._journal = load, install, alarm, journal
        self.keys: dict[str, KeyState] = {}
        self._of_asset: dict[str, KeyState] = {}
        for pname in cfg.learned_profiles:
            members = [a.id for a in cfg.assets if a.profile == pname]
            groups = [(pname, members)] if lcfg.per == "profile" else [(a, [a]) for a in members]
            for key, ms in groups:
                ks = self.keys[key] = KeyState(key, pname, ms)
                for a in ms:
                    self._of_asset[a] = ks
        self._active: dict[str, set[tuple[str, str]]] = {a: set() for a in self._of_asset}
        self._child: asyncio.subprocess.Process | None = None
        # under systemd, edgegw-retrain.timer trains (its own unit, venv and memory cap): the
        # daemon only picks up what it installs
        self.spawns = os.environ.get("EDGEGW_RETRAIN") != "timer"
        self.retrains = 0
        self._closed = False
        self._restore()

    # ------------------------------------------------------------------ sink side (on the loop)

    @property
    def connected(self) -> bool:
        return True

    def alert(self, alert: Alert) -> None:
        act = self._active.get(alert.asset)
        if act is None:
            return
        k = (alert.kind, alert.source)
        if alert.state == AlertState.RAISED:
            act.add(k)
        else:
            act.discard(k)

    def rollup(self, rollup: Rollup) -> None:
        """Not used."""

    def event(self, event: AlarmEvent) -> None:
        """Not used: an acked or shelved alarm is still active until it clears."""

    def hop(self, result: HopResult) -> None:
        """Count the hop's normal rows per asset (every feature present, no alarm active)."""
        ok = ~np.isnan(result.features).any(axis=1)
        for i in np.flatnonzero(ok).tolist():
            a = result.assets[i]
            ks = self._of_asset.get(a)
            if ks is None or self._active[a]:
                continue
            end = float(result.ends[i])
            ks.count += 1
            if end < ks.first:
                ks.first = end
            if end > ks.last:
                ks.last = end

    def stats(self) -> Mapping[str, object]:
        return {"retrains": self.retrains, "running": self._child is not None, "assets": self.table()}

    async def close(self, timeout: float) -> None:
        self._closed = True
        child = self._child
        if child is not None and child.returncode is None:
            child.terminate()  # a half-done training is cheap to redo; model.json is written last
            try:
                await asyncio.wait_for(child.wait(), timeout)
            except TimeoutError:
                child.kill()
        await asyncio.to_thread(self._save_status)

    # ------------------------------------------------------------------ what it knows

    def table(self) -> list[dict[str, Any]]:
        """Per asset: state, version, progress, the last retrain and its outcome (`edgegw models`)."""
        out = []
        for ks in self.keys.values():
            row = {
                "key": ks.key,
                "profile": ks.profile,
                "state": "armed" if ks.version else "learning",
                "version": ks.version or None,
                "progress": round(100 * ks.progress(self.lcfg), 1),
                "normal_rows": ks.count,
                "normal_span_s": round(ks.last - ks.first, 1) if ks.count else 0.0,
                "last_retrain": ks.retrained_at or None,
                "outcome": ks.outcome or None,
                "reason": ks.reason or None,
                "refused": ks.refused,
            }
            out += [{"asset": a, **row} for a in ks.members]
        return out

    def summary(self) -> str:
        """One phrase for systemd's status line and the page: who is still learning, and how far."""
        rows = self.table()
        learning = [r for r in rows if r["state"] == "learning"]
        if not learning:
            return f"{len(rows)} learned model(s) armed"
        least = min(float(r["progress"]) for r in learning)
        return f"learning {len(learning)} asset(s), {least:.0f} % of the history needed"

    def _restore(self) -> None:
        """At start: the models in the store serve (loaded here, before the loop runs), the counts
        and the active learn_refused alarms continue from the last status."""
        saved = self.store.status().get("keys", {})
        for ks in self.keys.values():
            s = saved.get(ks.key, {})
            if isinstance(s, dict):
                ks.count = int(s.get("count", 0))
                ks.first = math.inf if s.get("first") is None else float(s["first"])
                ks.last = -math.inf if s.get("last") is None else float(s["last"])
                ks.refused = bool(s.get("refused", False))
                ks.retry_at = 0.0
            last = self.store.last(ks.key)
            ks.last_seen_verdict = float(last.get("at", 0.0))
            ks.outcome, ks.reason = str(last.get("outcome", "")), str(last.get("reason", ""))
            ks.retrained_at = ks.last_seen_verdict
            path = self.store.current(ks.key)
            if path is not None:
                try:
                    self._serve(ks, path, self._load(path, ks.profile))
                except Exception as e:  # a model that must not serve: thresholds only, said loudly
                    log.error("learned model does not load; thresholds only", key=ks.key, path=str(path), error=str(e))

    def _serve(self, ks: KeyState, path: Path, model: Any, installed: list[str] | None = None) -> None:
        """Swap a loaded model in; journaled unless it is the one found at start (installed None)."""
        old = ks.version
        self._install(ks.key, ks.profile, model)
        ks.version = model.version
        data = getattr(getattr(model, "meta", None), "data", None) or {}
        learned = data.get("learned", {})
        ks.learned_until = float(learned.get("last_end", ks.last))
        if installed is None:
            return
        event = "model_armed" if not old else ("model_rolled_back" if old not in installed else "model_replaced")
        log.info("learned model serving", key=ks.key, version=model.version, previous=old or None, what=event)
        for a in ks.members:
            self._journal(
                AlarmEvent(
                    time.time(),
                    event,
                    (a, "learn", ks.key),
                    "gateway",
                    f"{old or 'none'} -> {model.version}",
                    {"version": model.version, "previous": old, "path": str(path)},
                )
            )

    # ------------------------------------------------------------------ the loop

    async def run(self) -> None:
        while not self._closed:
            try:
                await self.check()
            except Exception as e:  # the learner's bug must not stop the gateway; said loudly
                log.error("learner check failed", error=repr(e), exc_info=e)
            await asyncio.sleep(self.lcfg.check_every_s)

    async def check(self) -> None:
        """Pick up new models and verdicts, start a retrain if one is due, save the status."""
        for ks in self.keys.values():
            await self._pick_up(ks)
        if self._child is None and self.spawns:
            due = [ks for ks in self.keys.values() if self._due(ks)]
            if due:
                self._child = await self._spawn(due)
                asyncio.get_running_loop().create_task(self._reap(self._child, due), name="learn:retrain")
        await asyncio.to_thread(self._save_status)

    def _due(self, ks: KeyState) -> bool:
        if time.time() < ks.retry_at:
            return False
        if not ks.version:
            return ks.progress(self.lcfg) >= 1.0
        return ks.last - ks.learned_until >= self.lcfg.every_s and ks.count > 0

    async def _pick_up(self, ks: KeyState) -> None:
        """A new current version on disk is loaded (worker thread) and swapped in (here, on the
        loop); a new verdict is journaled, and a refusal raises learn_refused."""
        path = await asyncio.to_thread(self.store.current, ks.key)
        if path is not None and path.name != ks.version:
            try:
                model = await asyncio.to_thread(self._load, path, ks.profile)
            except Exception as e:  # a bad model keeps the old one serving
                log.error("new learned model does not load; keeping the one serving", key=ks.key, path=str(path), error=str(e))
            else:
                self._serve(ks, path, model, await asyncio.to_thread(self.store.installed, ks.key))
        last = await asyncio.to_thread(self.store.last, ks.key)
        at = float(last.get("at", 0.0))
        if at <= ks.last_seen_verdict:
            return
        ks.last_seen_verdict = ks.retrained_at = at
        ks.outcome, ks.reason = str(last.get("outcome", "")), str(last.get("reason", ""))
        if ks.outcome in ("armed", "replaced", "kept"):
            ks.retry_at, ks.backoff_s = 0.0, 0.0
            if ks.outcome == "kept":
                ks.learned_until = ks.last
            if ks.refused:
                self._refused(ks, last, raise_=False)
            return
        ks.backoff_s = min(BACKOFF_S[1], max(BACKOFF_S[0], 2 * ks.backoff_s))
        ks.retry_at = time.time() + ks.backoff_s
        if ks.outcome == "refused":
            if not ks.refused:  # raised once; a later acceptance clears it
                self._refused(ks, last, raise_=True)
            if ks.version:  # the old model stays; the next try after every_s more history
                ks.learned_until = ks.last
        if ks.outcome in ("refused", "error"):  # "learning" (too little history yet) is no event
            for a in ks.members:
                self._journal(AlarmEvent(time.time(), f"learn_{ks.outcome}", (a, "learn", ks.key), "gateway", ks.reason, last))

    def _refused(self, ks: KeyState, verdict: dict[str, Any], raise_: bool) -> None:
        gw = self.cfg.gateway.id
        if raise_:
            keep = f"; keeping {ks.version}" if ks.version else ""
            msg = f"{ks.key}: new model refused: {verdict.get('reason', '')}{keep}"
            alert = Alert(gw, REFUSED, ks.key, AlertState.RAISED, Severity.WARNING, time.time(), _evidence(verdict), msg)
            ks.refused = True
        else:
            alert = Alert(
                gw,
                REFUSED,
                ks.key,
                AlertState.CLEARED,
                Severity.INFO,
                time.time(),
                _evidence(verdict),
                f"{ks.key}: model accepted",
            )
            ks.refused = False
        self._alarm(alert)

    async def _spawn(self, due: list[KeyState]) -> asyncio.subprocess.Process:
        argv = [sys.executable, "-m", "edgegw", "retrain", "-c", str(self.config_path), "--asset", ",".join(k.key for k in due)]
        log.info("retrain starting", keys=[k.key for k in due])
        self.retrains += 1
        # one thread and few malloc arenas: less to reserve under the memory cap, no CPU taken from the daemon
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2"}
        return await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL, env=env
        )

    async def _reap(self, child: asyncio.subprocess.Process, due: list[KeyState]) -> None:
        try:
            out, err = await asyncio.wait_for(child.communicate(), self.lcfg.timeout_s)
        except TimeoutError:
            child.kill()
            out, err = await child.communicate()
        finally:
            self._child = None
        verdicts = []
        for line in out.decode(errors="replace").splitlines():
            try:
                verdicts.append(json.loads(line))
            except ValueError:
                continue
        log.info(
            "retrain finished",
            rc=child.returncode,
            verdicts=[{k: v.get(k) for k in ("asset", "outcome", "version", "reason")} for v in verdicts],
            stderr=err.decode(errors="replace")[-500:] if child.returncode else None,
        )
        if child.returncode and not verdicts:  # nothing said why: wait before trying again
            for ks in due:
                ks.backoff_s = min(BACKOFF_S[1], max(BACKOFF_S[0], 2 * ks.backoff_s))
                ks.retry_at = time.time() + ks.backoff_s
                ks.outcome, ks.reason = "error", err.decode(errors="replace").strip().splitlines()[-1:][0] if err else "failed"
        if not self._closed:
            for ks in due:
                await self._pick_up(ks)

    def _save_status(self) -> None:
        keys = {
            ks.key: {"count": ks.count, "first": ks.first if ks.count else None, "last": ks.last if ks.count else None,
                     "refused": ks.refused}
            for ks in self.keys.values()
        }  # fmt: skip
        self.store.set_status({"at": time.time(), "keys": keys, "assets": self.table(), "retrains": self.retrains})


def _evidence(verdict: dict[str, Any]) -> dict[str, Any]:
    return {k: verdict[k] for k in ("reason", "version", "previous", "candidate_in_alarm", "current_in_alarm") if k in verdict}


__all__ = ["Learner"]
