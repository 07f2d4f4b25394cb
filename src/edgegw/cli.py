"""The `edgegw` command. Each subcommand lives in the module that does the work; this file only
lists them, so `edgegw run` never imports the training or simulator code.

A subcommand module provides `configure(parser)` and `main(args) -> int` (`module:prefix`: the
module's `<prefix>configure` and `<prefix>main`, for a module holding two commands).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# name -> (module, one-line help). Imported only when that subcommand runs.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("edgegw.gateway", "run the gateway daemon"),
    "check": ("edgegw.check", "the preflight of run, starting nothing (exit 0, or 78 listing every problem)"),
    "train": ("edgegw.ml.train", "train anomaly and failure models from history and export ONNX"),
    "backtest": ("edgegw.ml.backtest", "replay history through the engine and models, score it"),
    "simulate": ("edgegw.sim.cli", "run the pump simulator (MQTT, OPC UA, CoAP, or CSV history)"),
    "demo": ("edgegw.sim.demo", "simulator + gateway + live alert table on an embedded broker"),
    "watch": ("edgegw.watch", "live table of active alarms from a broker"),
    "alarms": ("edgegw.history.cli:alarms_", "print the alarm journal (transitions, acks, shelves)"),
    "history": ("edgegw.history.cli", "print or export what the gateway kept of an asset's signals"),
    "browse": ("edgegw.browse", "list an OPC UA server's variables (NodeIds, units) as a config fragment"),
    "energy": ("edgegw.pump.cli", "the pumps' energy report: kWh, m3, kWh/m3, time per region, saving at BEP"),
    "users": ("edgegw.web.auth", "add, list or remove the page's users (roles viewer, operator, admin)"),
    "report": ("edgegw.web.report", "an HTML report of the assets from history: availability, alarms, trends"),
    "retrain": ("edgegw.ml.retrain", "train, validate and arm models from the gateway's own history (learn:)"),
    "models": ("edgegw.learn.cli", "learned models per asset: learning or armed, version, last retrain; rollback"),
}


def build_parser(load: str | None = None) -> argparse.ArgumentParser:
    from edgegw import __version__

    parser = argparse.ArgumentParser(prog="edgegw", description="Edge gateway for industrial machines.")
    parser.add_argument("--version", action="version", version=f"edgegw {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        if name == load:
            mod, _, prefix = module.partition(":")  # module:prefix -> prefix + configure / main
            getattr(importlib.import_module(mod), f"{prefix}configure")(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    name = next((a for a in argv if not a.startswith("-")), None)
    load = name if name in COMMANDS else None
    try:
        parser = build_parser(load)
    except ModuleNotFoundError as e:
        extra = {"train": "train", "backtest": "train", "retrain": "train", "demo": "demo", "simulate": "demo"}.get(
            load or "", ""
        )
        hint = f" (install the extra: pip install 'edgegw[{extra}]')" if extra else ""
        print(f"edgegw {load}: missing module {e.name}{hint}", file=sys.stderr)
        return 1
    args = parser.parse_args(argv)
    mod, _, prefix = args._module.partition(":")
    rc: int = getattr(importlib.import_module(mod), f"{prefix}main")(args)
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
