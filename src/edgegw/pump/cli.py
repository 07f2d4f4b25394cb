"""`edgegw energy`: the pumps' energy report, from the gateway's totals (since counting began), from
its history for a period (`--since 7d`), or from rollups saved as JSON lines (`--rollups FILE`,
e.g. `mosquitto_sub -v -t 'rollups/#' > rollups.jsonl`)."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from edgegw.config import EX_CONFIG, ConfigError, load_config
from edgegw.config.pump import pumps_of

_SPAN = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", required=True, help="YAML config file (the pump descriptions, the state directory)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    p.add_argument("--rollups", metavar="FILE", help="rollups as JSON lines (mosquitto_sub output, with or without -v)")
    p.add_argument(
        "--since", metavar="SPAN", help="a period: the last 7d, 24h, 90m ... or from an ISO time (history or --rollups)"
    )
    p.add_argument("--html", metavar="FILE", help="also write the report as a self-contained HTML page")
    p.add_argument("--json", action="store_true", help="print the figures as JSON instead of words")


def since_of(text: str, now: float | None = None) -> float:
    """Epoch seconds from `7d`, `24h`, `90m`, `2w` (before now) or an ISO 8601 time."""
    m = _SPAN.match(text.strip())
    if m:
        return (time.time() if now is None else now) - float(m[1]) * _UNIT_S[m[2]]
    try:
        return datetime.fromisoformat(text.strip().replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ValueError(f"--since {text!r}: give a span (7d, 24h, 90m) or an ISO time") from None


def read_rollups(path: str) -> list[dict[str, Any]]:
    """JSON objects, one a line; `topic {json}` lines (mosquitto_sub -v) too; others skipped."""
    out = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            i = line.find("{")
            if i < 0:
                continue
            try:
                d = json.loads(line[i:])
            except ValueError:
                continue
            if isinstance(d, dict):
                out.append(d)
    return out


def main(args: argparse.Namespace) -> int:
    from edgegw.preflight import state_dir_of
    from edgegw.pump.report import render_html, render_text, rows_from_history, rows_from_rollups, rows_from_totals
    from edgegw.pump.totals import TotalsFile

    try:
        cfg = load_config(args.config, args.set)
    except ConfigError as e:
        print("\n".join(e.problems), file=sys.stderr)
        return EX_CONFIG
    pumps = pumps_of(cfg.assets, cfg.profiles)
    if not pumps:
        print(f"edgegw energy: {args.config} describes no pump (profiles.NAME.pump, see docs/pump.md)", file=sys.stderr)
        return 2
    try:
        since = since_of(args.since) if args.since else None
    except ValueError as e:
        print(f"edgegw energy: {e}", file=sys.stderr)
        return 2
    if args.rollups:
        try:
            rows = rows_from_rollups(read_rollups(args.rollups), pumps, since)
        except OSError as e:
            print(f"edgegw energy: cannot read {args.rollups}: {e.strerror}", file=sys.stderr)
            return 1
    elif since is not None:  # a period: from the historian
        from edgegw.history.query import HistoryUnavailable

        hop = {a.id: cfg.profiles[a.profile].hop_s for a in cfg.assets}
        try:
            rows = rows_from_history(cfg, pumps, hop, since)
        except HistoryUnavailable as e:
            print(f"edgegw energy: {e}; give --rollups FILE, or no --since for the totals", file=sys.stderr)
            return 2
    else:
        folder, _ = state_dir_of(cfg)
        if folder is None:
            print(
                "edgegw energy: no state directory (gateway.state_dir) holds the pumps' totals; give --rollups", file=sys.stderr
            )
            return 2
        rows = rows_from_totals(TotalsFile(Path(folder), cfg.gateway.id).read(), pumps)
    title = f"Energy report of {cfg.gateway.id}"
    if args.json:
        print(json.dumps([r.to_dict() for r in rows], indent=2))
    else:
        sys.stdout.write(render_text(rows, title))
    if args.html:
        Path(args.html).write_text(render_html(rows, title), encoding="utf-8")
    return 0
