"""`edgegw models -c FILE [--json]`: per asset whose model the gateway learns, its state
(`learning` with the share of the history it needs, or `armed` with the serving version), the last
retrain and its outcome; read from the state directory, so it works while the daemon runs.
`edgegw models rollback ASSET -c FILE`: serve the version installed before the current one (the
running daemon swaps it in on its next check)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from edgegw.config import EX_CONFIG, ConfigError, GatewayConfig, load_config
from edgegw.learn.store import ModelStore, StoreError


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", nargs="?", choices=["list", "rollback"], default="list", help="list (default) or rollback")
    p.add_argument("asset", nargs="?", help="rollback: the asset (or profile, with learn.per: profile)")
    p.add_argument("-c", "--config", required=True, help="the gateway's YAML config")
    p.add_argument("--json", action="store_true", help="a JSON list of objects (asset, state, version, progress, ...)")


def rows(cfg: GatewayConfig, store: ModelStore) -> list[dict[str, Any]]:
    """One object per learned asset: asset, profile, key, state, version, progress (%), the last
    retrain (time, outcome, reason) and the versions kept for rollback."""
    lcfg = cfg.learning
    assert lcfg is not None
    seen = {r.get("asset"): r for r in store.status().get("assets", []) if isinstance(r, dict)}
    out = []
    for pname in cfg.learned_profiles:
        for a in (x.id for x in cfg.assets if x.profile == pname):
            key = pname if lcfg.per == "profile" else a
            version = store.current_version(key)
            last = store.last(key)
            live = seen.get(a, {})
            progress = 100.0 if version else float(live.get("progress") or 0.0)
            out.append(
                {
                    "asset": a,
                    "profile": pname,
                    "key": key,
                    "state": "armed" if version else "learning",
                    "version": version or None,
                    "progress": progress,
                    "normal_rows": live.get("normal_rows"),
                    "last_retrain": _iso(last.get("at")),
                    "outcome": last.get("outcome"),
                    "reason": last.get("reason"),
                    "kept": store.installed(key),
                }
            )
    return out


def _iso(ts: Any) -> str | None:
    return datetime.fromtimestamp(float(ts), UTC).isoformat(timespec="seconds") if ts else None


def main(args: argparse.Namespace) -> int:
    from edgegw.preflight import state_dir_of

    try:
        cfg = load_config(args.config)
    except ConfigError as e:
        print(e, file=sys.stderr)
        return EX_CONFIG
    state_dir, _ = state_dir_of(cfg)
    if cfg.learning is None or state_dir is None:
        print(f"{args.config}: no profile learns its model (profiles.NAME.model: learn) or no gateway.state_dir", file=sys.stderr)
        return EX_CONFIG
    store = ModelStore(state_dir)
    if args.action == "rollback":
        if not args.asset:
            print("edgegw models rollback: name the asset", file=sys.stderr)
            return 2
        keys = {r["asset"]: r["key"] for r in rows(cfg, store)} | {r["key"]: r["key"] for r in rows(cfg, store)}
        if args.asset not in keys:
            print(f"edgegw models rollback: {args.asset!r} is not a learned asset (have {sorted(keys)})", file=sys.stderr)
            return 2
        try:
            prev = store.rollback(keys[args.asset])
        except StoreError as e:
            print(f"edgegw models rollback: {e}", file=sys.stderr)
            return 1
        print(f"{keys[args.asset]}: serving {prev} (a running gateway swaps it in within learn.check_every_s)")
        return 0
    table = rows(cfg, store)
    if args.json:
        print(json.dumps(table))
        return 0
    print(f"{'asset':<16} {'state':<9} {'version':<26} {'progress':>8}  last retrain")
    for r in table:
        last = f"{r['last_retrain'] or '-'} {r['outcome'] or ''}{': ' + r['reason'] if r['reason'] else ''}"
        print(f"{r['asset']:<16} {r['state']:<9} {r['version'] or '-':<26} {r['progress']:>7.0f}%  {last}")
    return 0
