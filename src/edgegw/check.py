"""`edgegw check -c FILE`: the preflight `edgegw run` does, and nothing more: the same verdict."""

from __future__ import annotations

import argparse
import sys

from edgegw.config import EX_CONFIG, ConfigError
from edgegw.preflight import Prepared, prepare


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", required=True, help="YAML config file")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a value")


def prepare_or_report(path: str, overrides: list[str]) -> Prepared | None:
    """The checked config, or None after printing every problem to stderr; warnings go to stderr too."""
    try:
        ready = prepare(path, overrides)
    except ConfigError as e:
        print(f"{path}: invalid config ({len(e.problems)} problem{'s' * (len(e.problems) != 1)}):", file=sys.stderr)
        for p in e.problems:
            print(f"  {p}", file=sys.stderr)
        return None
    for w in ready.warnings:
        print(f"warning: {w}", file=sys.stderr)
    return ready


def main(args: argparse.Namespace) -> int:
    ready = prepare_or_report(args.config, args.set)
    if ready is None:
        return EX_CONFIG
    cfg = ready.cfg
    print(
        f"{args.config}: ok — gateway {cfg.gateway.id}, {len(cfg.sources)} source(s), "
        f"{len(cfg.assets)} asset(s), {len(cfg.profiles)} profile(s), {len(ready.models)} model(s)"
    )
    return 0
