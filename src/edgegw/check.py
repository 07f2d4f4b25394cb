"""`edgegw check -c FILE`: validate a config the way `edgegw run` does, and say so."""

from __future__ import annotations

import argparse
import sys

from edgegw.config import EX_CONFIG, ConfigError, GatewayConfig, load_config


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", required=True, help="YAML config file")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a value")


def load_or_report(path: str, overrides: list[str]) -> GatewayConfig | None:
    """The config, or None after printing every problem to stderr."""
    try:
        return load_config(path, overrides)
    except ConfigError as e:
        print(f"{path}: invalid config ({len(e.problems)} problem{'s' * (len(e.problems) != 1)}):", file=sys.stderr)
        for p in e.problems:
            print(f"  {p}", file=sys.stderr)
        return None


def main(args: argparse.Namespace) -> int:
    cfg = load_or_report(args.config, args.set)
    if cfg is None:
        return EX_CONFIG
    print(
        f"{args.config}: ok — gateway {cfg.gateway.id}, {len(cfg.sources)} source(s), "
        f"{len(cfg.assets)} asset(s), {len(cfg.profiles)} profile(s)"
    )
    return 0
