"""Detection on real machines: NASA's IMS bearings run to failure, edgegw next to a plain
scikit-learn IsolationForest, by the shared protocol (one model per run: `edgegw train` on the
healthy first 30 % with no window options, `edgegw backtest` on the rest).

    python benchmarks/bench_detection.py [--protocol DIR] [--train-args "--seed 1"]

The data and protocol are not part of this repository: --protocol names the directory holding
`bearings.py` (default $EDGEGW_BEARINGS, else ../shared/acceptance next to the checkout), which
reads the data from its own ../data/ims-bearings. Prints one line per run for each detector and
a summary of both; writes benchmarks/results/detection.json.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write

ROOT = Path(__file__).resolve().parent.parent


def _protocol_dir(arg: str | None) -> Path:
    for d in (arg, os.environ.get("EDGEGW_BEARINGS"), ROOT.parent / "shared" / "acceptance", Path("/work/shared/acceptance")):
        if d and (Path(d) / "bearings.py").is_file():
            return Path(d)
    sys.exit("bench_detection: no bearings.py protocol found: give --protocol DIR or set EDGEGW_BEARINGS")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--protocol", help="directory holding bearings.py (the protocol and its data)")
    ap.add_argument("--train-args", default="--seed 0", help="extra `edgegw train` arguments (default: --seed 0)")
    ap.add_argument("--name", default="detection")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(_protocol_dir(args.protocol)))
    import bearings

    edgegw = shlex.quote(str(Path(sys.executable).with_name("edgegw")))
    extra = args.train_args
    cmd = [
        "sh",
        "-c",
        f"{edgegw} train --data {{train}} --out {{out}}.model {extra} >/dev/null && "
        f"{edgegw} backtest --model {{out}}.model --data {{test}} --out {{out}} >/dev/null",
    ]
    print("reference: scikit-learn IsolationForest on standardised raw signals, 2 of 3 snapshots")
    ref = bearings.evaluate(None)
    print(f"edgegw: train {extra} (window from the data), backtest")
    got = bearings.evaluate(cmd)
    print(f"edgegw:    {bearings.summary(got)}")
    print(f"reference: {bearings.summary(ref)}")
    res = {
        "train_args": extra,
        "edgegw": got,
        "reference": ref,
        "edgegw_summary": bearings.summary(got),
        "reference_summary": bearings.summary(ref),
    }
    print(f"wrote {write(args.name, res)}")
    return res


if __name__ == "__main__":
    main()
