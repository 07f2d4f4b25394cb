"""`edgegw history` (a trend of one asset, as a table or CSV) and `edgegw alarms` (the alarm
journal), both read from the history file: while the gateway runs, after it stopped or was killed.

    edgegw history -c FILE --asset pump-2 --signal vibration --since 24h [--tier auto] [--csv]
    edgegw alarms -c FILE --since 7d [--csv]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import math
import os
import re
import sqlite3
import sys
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from edgegw.history import schema

_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
DEFAULT_STATE_DIR = "/var/lib/edgegw"
CSV_HEADER = ("time", "asset", "signal", "mean", "min", "max", "last", "count")


def parse_time(text: str, now: float | None = None) -> float:
    """`24h`, `30m`, `7d`, `2w` (before now), `now`, or an ISO 8601 time (UTC unless it says) -> epoch s."""
    now = time.time() if now is None else now
    if text.strip() == "now":
        return now
    m = _SPAN.match(text)
    if m:
        return now - float(m.group(1)) * _UNIT[m.group(2)]
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r}: expected e.g. 24h, 30m, 7d or 2026-01-31T08:00") from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def iso_time(ts: float) -> str:
    """A bucket start as ISO 8601 UTC (seconds; milliseconds only when it has them)."""
    spec = "seconds" if float(ts).is_integer() else "milliseconds"
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec=spec).replace("+00:00", "Z")


def _paths(args: argparse.Namespace, what: str) -> list[Path] | int:
    """Where history may be, best first: --file; else from -c (its history section and state
    directory; for `alarms` also the notify journal of earlier versions); else $STATE_DIRECTORY
    or /var/lib/edgegw. An exit code when the config is bad or keeps nothing."""
    if getattr(args, "file", None):
        return [Path(args.file)]
    if not args.config:
        state = Path(os.environ.get("STATE_DIRECTORY", "").split(":")[0] or DEFAULT_STATE_DIR)
        return [state / "history.db", state / _LEGACY] if what == "alarms" else [state / "history.db"]
    from edgegw.config import EX_CONFIG, ConfigError, load_config
    from edgegw.preflight import state_dir_of

    try:  # the config alone: a full preflight would refuse while the gateway holds its files
        cfg = load_config(args.config, args.set)
    except ConfigError as e:
        print("\n".join(e.problems), file=sys.stderr)
        return EX_CONFIG
    state_dir = state_dir_of(cfg)[0]
    found = [p for p in [cfg.history.file(state_dir)] if p is not None]
    if what == "alarms" and cfg.notify is not None and cfg.notify.journal.enabled:
        found.append(cfg.notify.journal_path(cfg.notify.folder(state_dir)))
    if not found:
        print(f"edgegw {what}: {args.config} keeps no history (history.enabled false, or no state directory)", file=sys.stderr)
        return 1
    return found


def _path(args: argparse.Namespace, what: str) -> Path | int:
    """The first of _paths that exists, else the first (to name it in the error)."""
    paths = _paths(args, what)
    if isinstance(paths, int):
        return paths
    return next((p for p in paths if p.exists()), paths[0])


# -- `edgegw history`


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", help="the gateway's config (finds history.db in its state directory)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    p.add_argument("--file", metavar="FILE", help="the history file itself (instead of -c)")
    p.add_argument("--asset", required=True, help="the asset id")
    p.add_argument("--signal", action="append", default=None, metavar="S", help="a signal (repeat; default all)")
    p.add_argument("--since", default="24h", help="from: 24h, 30m, 7d, or an ISO 8601 time (default 24h)")
    p.add_argument("--until", default="now", help="to: the same forms (default now)")
    p.add_argument(
        "--tier",
        choices=("auto", *schema.TIERS),
        default="auto",
        help="auto: the finest tier covering the range in at most ~2000 points per signal",
    )
    p.add_argument("--csv", action="store_true", help="CSV on stdout: " + ",".join(CSV_HEADER))


def main(args: argparse.Namespace) -> int:
    from edgegw.history.query import HistoryUnavailable, query

    path = _path(args, "history")
    if isinstance(path, int):
        return path
    try:
        now = time.time()
        since, until = parse_time(args.since, now), parse_time(args.until, now)
    except ValueError as e:
        print(f"edgegw history: {e}", file=sys.stderr)
        return 2
    try:
        t = query(path, args.asset, args.signal, since, until, tier=args.tier)
    except HistoryUnavailable as e:
        print(f"edgegw history: {e}", file=sys.stderr)
        return 1
    except KeyError as e:
        print(f"edgegw history: {e.args[0]}", file=sys.stderr)
        return 1
    except sqlite3.Error as e:
        print(f"edgegw history: cannot read {path}: {e}", file=sys.stderr)
        return 1
    rows = [(i, s) for i in range(len(t.time)) for s, cols in t.signals.items() if cols["count"][i] > 0]
    out = sys.stdout
    if args.csv:
        w = csv.writer(out)
        w.writerow(CSV_HEADER)
        for i, s in rows:
            c = t.signals[s]
            w.writerow(
                [iso_time(t.time[i]), t.asset, s, *(_num(c[k][i]) for k in ("mean", "min", "max", "last")), int(c["count"][i])]
            )
        return 0
    out.write(f"{t.asset}: {len(t.time)} {t.tier} bucket(s) of {t.bucket_s:g} s from {iso_time(since)} to {iso_time(until)}\n")
    out.write(f"{'TIME (UTC)':<22} {'SIGNAL':<18} {'MEAN':>10} {'MIN':>10} {'MAX':>10} {'LAST':>10} {'COUNT':>7}\n")
    for i, s in rows:
        c = t.signals[s]
        vals = " ".join(f"{c[k][i]:>10.4g}" for k in ("mean", "min", "max", "last"))
        out.write(f"{iso_time(t.time[i]):<22} {s:<18} {vals} {int(c['count'][i]):>7}\n")
    for a in t.alarms:
        end = iso_time(a.end) if a.end is not None else "active"
        out.write(f"alarm {a.kind}/{a.source} ({a.severity}) {iso_time(a.start)} .. {end}: {a.message}\n")
    return 0


def _num(v: float) -> str:
    return "" if math.isnan(v) else repr(float(v))


# -- `edgegw alarms`

_LEGACY = "alarms.db"  # the notify journal of earlier versions: the same table


def alarms_configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", nargs="?", choices=("clear",), help="clear KEY: clear an alarm by command")
    p.add_argument("key", nargs="?", help="the alarm to clear: asset/kind/source")
    p.add_argument("-c", "--config", help="the gateway's config (finds the journal in its history file)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    p.add_argument("--journal", "--file", dest="file", metavar="FILE", help="the history (or old alarms.db) file itself")
    p.add_argument("--since", default="24h", help="how far back: 24h, 30m, 7d, or an ISO 8601 time (default 24h)")
    p.add_argument("--csv", action="store_true", help="CSV on stdout instead of a table")


def alarms_main(args: argparse.Namespace) -> int:
    if args.action == "clear":
        try:
            from edgegw.alarms.cli import clear  # type: ignore[import-not-found,unused-ignore]
        except ImportError:
            print("edgegw alarms clear: not available in this build", file=sys.stderr)
            return 1
        rc: int = clear(args)
        return rc
    from edgegw.history.query import HistoryUnavailable, journal

    path = _path(args, "alarms")
    if isinstance(path, int):
        return path
    try:
        since = parse_time(args.since)
    except ValueError as e:
        print(f"edgegw alarms: --since {e}", file=sys.stderr)
        return 2
    try:
        entries = journal(path, since)
    except HistoryUnavailable:
        print(f"edgegw alarms: no journal at {path}", file=sys.stderr)
        return 1
    except sqlite3.Error as e:
        print(f"edgegw alarms: cannot read {path}: {e}", file=sys.stderr)
        return 1
    if args.csv:
        write_csv(entries, sys.stdout)
    else:
        write_table(entries, sys.stdout)
    return 0


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _what(e: dict[str, Any]) -> str:
    if e["event"] in ("raised", "cleared"):
        with contextlib.suppress(ValueError):
            return str(orjson.loads(e["detail"]).get("message", ""))
    return str(e["note"])


def write_csv(entries: Iterable[dict[str, Any]], out: Any) -> None:
    cols = schema.JOURNAL_COLUMNS
    w = csv.writer(out)
    w.writerow(cols)
    for e in entries:
        w.writerow([_when(e["ts"]), *(e[c] for c in cols[1:])])


def write_table(entries: list[dict[str, Any]], out: Any) -> None:
    out.write(f"{'TIME (UTC)':<20} {'EVENT':<13} {'SEVERITY':<8} {'ASSET':<12} {'KIND':<13} {'SOURCE':<12} {'BY':<10} WHAT\n")
    for e in entries:
        out.write(
            f"{_when(e['ts']):<20} {e['event']:<13} {e['severity']:<8} {e['asset']:<12} {e['kind']:<13} "
            f"{e['source']:<12} {e['by']:<10} {_what(e)}\n"
        )
    out.write(f"-- {len(entries)} entr{'y' if len(entries) == 1 else 'ies'}\n")
