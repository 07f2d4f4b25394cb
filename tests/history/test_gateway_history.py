"""History in the running gateway: on with a state directory, fed by hops and alarms, read back
by `edgegw history` and `edgegw alarms` while and after it runs, figures in the metrics."""

from __future__ import annotations

import csv
import io
import math
import subprocess
import sys
import time
from pathlib import Path

from edgegw.history import query
from tests.helpers import Collector, example_config, publish, pump, running_gateway
from tests.peers import Broker, until

ASK = ["--asset", "pump-2", "--signal", "vibration", "--since", "1m", "--tier", "fine", "--csv"]


async def test_the_gateway_keeps_history_in_its_state_directory(mosquitto: Broker, tmp_path: Path) -> None:
    port = mosquitto.port
    cfg = example_config(port, f"gateway.state_dir={tmp_path}", "history.flush_s=0.3", "history.fine_s=1")
    path = tmp_path / "history.db"
    async with Collector(port, "alerts/#") as sub, running_gateway(cfg) as gw:
        t0 = math.floor(time.time())
        await publish(port, "plant/pumps/pump-2/telemetry", [pump(3.0, t0 - 4 + i * 0.25) for i in range(16)])
        await publish(port, "plant/pumps/pump-2/telemetry", [pump(12.5, t0 + i * 0.25) for i in range(12)])
        await sub.wait(lambda s: s.alerts(asset="pump-2", kind="threshold", state="raised"))

        def kept() -> bool:
            try:
                j = query.journal(path, t0 - 10)
                t = query.query(path, "pump-2", ["vibration"], t0 - 10, t0 + 10, tier="fine")
            except query.HistoryUnavailable:
                return False
            times = t.time.tolist()
            # written, not only on the grid of times
            hot_kept = t0 + 1 in times and t.signals["vibration"]["count"][times.index(t0 + 1)] == 4
            return any(e["asset"] == "pump-2" and e["event"] == "raised" for e in j) and bool(hot_kept)

        await until(kept, what="the alarm and the buckets in history", timeout=10)

        def counted() -> bool:
            stats = gw.health.snapshot()["sinks"]["history"]
            return bool(stats["rows_written"] > 0 and stats["journal_written"] > 0 and stats["bytes"] > 0)

        await until(counted, what="history's figures in the metrics", timeout=5)
    time.sleep(max(0.0, t0 + 3 - time.time()))  # the readings ran ~3 s ahead of the clock: `--since 1m` ends now
    cfg_file = tmp_path / "gw.yaml"
    cfg_file.write_text(f"# via --set\n{(Path(__file__).parents[2] / 'config' / 'example.yaml').read_text()}")
    over = ["--set", f"gateway.state_dir={tmp_path}", "--set", "history.fine_s=1"]
    r = subprocess.run(
        [sys.executable, "-m", "edgegw", "history", "-c", str(cfg_file), *over, *ASK],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert list(rows[0]) == ["time", "asset", "signal", "mean", "min", "max", "last", "count"]
    got = {row["time"]: (float(row["mean"]), int(row["count"])) for row in rows}
    first = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0 - 4))
    hot = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0 + 1))
    assert got.get(first) == (3.0, 4) and got.get(hot) == (12.5, 4), sorted(got.items())
    r = subprocess.run(
        [sys.executable, "-m", "edgegw", "alarms", "-c", str(cfg_file), *over, "--since", "1h", "--csv"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert ",raised,pump-2,threshold,vibration,critical," in r.stdout
