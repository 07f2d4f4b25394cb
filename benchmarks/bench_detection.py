"""Detection on real machines: NASA's IMS bearings run to failure, edgegw next to a plain
scikit-learn IsolationForest, by the shared protocol (one model per run: `edgegw train` on the
healthy first 30 % with no window options, `edgegw backtest` on the rest). Beside it the
learning replay (`edgegw backtest --learn`: no model at first, commissioned on the same first
30 %, retrained every --learn-every with the gateway's rules), and the three again on the pump
simulator (a plant's first healthy hour as history, then six hours with faults).

    python benchmarks/bench_detection.py [--protocol DIR] [--train-args "--seed 1"] [--learn-every 1d]

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
    ap.add_argument("--learn-every", default="1d", help="retrain period of the learning replay (default 1d)")
    ap.add_argument("--learn-one", nargs=3, metavar=("TRAIN", "TEST", "OUT"), help=argparse.SUPPRESS)
    ap.add_argument("--no-sim", action="store_true", help="skip the simulator comparison")
    args = ap.parse_args(argv)
    if args.learn_one:
        return learn_one(*args.learn_one, every=args.learn_every)
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
    print(f"edgegw learning: backtest --learn --learn-after <the healthy 30 %> --learn-every {args.learn_every}")
    learn_cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--learn-every",
        args.learn_every,
        "--learn-one",
        "{train}",
        "{test}",
        "{out}",
    ]
    learned = bearings.evaluate(learn_cmd)
    print(f"edgegw train-once: {bearings.summary(got)}")
    print(f"edgegw learning:   {bearings.summary(learned)}")
    print(f"reference:         {bearings.summary(ref)}")
    res = {
        "train_args": extra,
        "edgegw": got,
        "learning": learned,
        "reference": ref,
        "edgegw_summary": bearings.summary(got),
        "learning_summary": bearings.summary(learned),
        "reference_summary": bearings.summary(ref),
    }
    if not args.no_sim:
        res["simulator"] = simulator("1h")
    print(f"wrote {write(args.name, res)}")
    return res


def learn_one(train: str, test: str, out: str, every: str, extra: tuple[str, ...] = ()) -> dict:
    """One bearing run through the learning replay: the healthy part and the rest as one history,
    commissioned after the healthy part's span."""
    import subprocess

    import pandas as pd

    a = pd.read_csv(train, index_col=0, parse_dates=True)
    b = pd.read_csv(test, index_col=0, parse_dates=True)
    both = Path(out).with_suffix(".all.csv")
    pd.concat([a, b]).to_csv(both, date_format="%Y-%m-%dT%H:%M:%S")
    after = (a.index[-1] - a.index[0]).total_seconds()
    edgegw = str(Path(sys.executable).with_name("edgegw"))
    argv = [
        edgegw,
        "backtest",
        "--learn",
        "--learn-after",
        f"{after:.0f}s",
        "--learn-every",
        every,
        "--data",
        str(both),
        "--out",
        out,
    ]
    r = subprocess.run(argv, capture_output=True, text=True)
    if os.environ.get("BEARINGS_VERBOSE"):
        print(r.stdout[-3000:], r.stderr[-2000:], file=sys.stderr)
    if r.returncode:
        sys.exit(r.returncode)
    return {}


def simulator(every: str) -> dict:
    """The pump simulator: one plant for seven hours, its first (healthy) hour the history, then a
    fault on each of three pumps; train-once, the learning replay (retrained hourly) and the
    reference, judged by alarm episodes against the fault labels."""
    import subprocess
    import tempfile

    import numpy as np
    import pandas as pd

    edgegw = str(Path(sys.executable).with_name("edgegw"))
    cfg = ROOT / "config" / "example.yaml"
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        hist, live = t / "hist.csv", t / "live.csv"
        run = lambda *a: subprocess.run([edgegw, *a], capture_output=True, text=True, check=True).stdout  # noqa: E731
        # one plant, one continuous run: its first hour is the history, the next six the test
        faults = ["pump-1:bearing_wear@8600,ramp=600", "pump-2:cavitation@14600,ramp=300", "pump-3:seal_leak@20600,ramp=600"]
        both = t / "both.csv"
        run(
            "simulate",
            "--csv",
            str(both),
            "--pumps",
            "4",
            "--duration",
            "25200",
            "--seed",
            "3",
            "--start",
            "2026-01-01T00:00:00Z",
            *[x for f in faults for x in ("--fault", f)],
        )
        lines_all = both.read_text().splitlines(True)
        cut = next(i for i, line in enumerate(lines_all) if line.startswith("2026-01-01T01:00:00"))
        hist.write_text("".join(lines_all[:cut]))
        live.write_text(lines_all[0] + "".join(lines_all[cut:]))
        learn_cfg = t / "cfg.yaml"
        learn_cfg.write_text(cfg.read_text().replace("model: models/pump", "model: learn"))
        run(
            "train",
            "-c",
            str(cfg),
            "--data",
            str(hist),
            "--out",
            str(t / "once"),
            "--no-labels",
        )
        lines = {
            "train-once": run("backtest", "--model", str(t / "once"), "--data", str(live), "--out", str(t / "o.csv")),
            "learning": run(
                "backtest",
                "--learn",
                "-c",
                str(learn_cfg),
                "--learn-after",
                "3000s",
                "--learn-every",
                every,
                "--learn-every-hops",
                "1",
                "--data",
                str(both),
                "--out",
                str(t / "l.csv"),
            ),
        }
        for name, text in lines.items():
            keep = [x for x in text.splitlines() if x.startswith(("faults detected", "false alarms", "learning:"))]
            out[name] = keep
        # the reference: IsolationForest on standardised raw rows, per pump, 2 of the last 3 rows
        from sklearn.ensemble import IsolationForest
        from sklearn.preprocessing import StandardScaler

        h, lv = pd.read_csv(hist), pd.read_csv(live)
        sig = ["vibration", "pressure", "temperature", "flow", "current", "suction_pressure"]
        eps = fa = found = 0
        for a in sorted(lv.asset.unique()):
            tr, te = h[h.asset == a][sig], lv[lv.asset == a]
            sc = StandardScaler().fit(tr)
            m = IsolationForest(n_estimators=100, random_state=0, contamination=0.005).fit(sc.transform(tr))
            p = (
                pd.Series(m.predict(sc.transform(te[sig].fillna(tr.mean()))) == -1).rolling(3, min_periods=1).sum().to_numpy()
                >= 2
            )
            fault = te.label.to_numpy() != "normal"
            d = np.diff(np.concatenate([[0], p.astype(int), [0]]))
            for s0, e0 in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1), strict=True):
                eps += 1
                fa += not fault[s0:e0].any()
            found += bool(fault.any() and p[fault].any())
        days = float((lv.label == "normal").sum()) / 2 / 86400  # pump-days at 2 Hz, as backtest counts them
        out["reference"] = [
            f"faults detected: {found}/3",
            f"false alarms: {fa} episodes of {eps} ({fa / max(days, 1e-9):.2f} per normal day)",
        ]
    for name, keep in out.items():
        print(f"simulator {name:<10} " + " | ".join(keep))
    return out


if __name__ == "__main__":
    main()
