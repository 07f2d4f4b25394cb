"""kill -9 while history writes: the file stays sound and loses at most flush_s (a real process)."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from edgegw.history import query

CHILD = r"""
import asyncio, sys, time
from edgegw.config import load_config
from edgegw.engine.engine import Engine
from edgegw.history.store import Historian
from pathlib import Path

cfg = load_config(sys.argv[1], ["profiles.pump.model=null", "history.fine_s=2", "history.flush_s=0.5", "history.raw=true"])
h = Historian(cfg, Path(sys.argv[2]))
e = Engine(cfg, h.alert)
e.on_hop = h.hop
e.keep_raw(True)

async def feed():
    while True:
        ts = time.time()
        for a in range(1, 5):
            for s in cfg.profiles["pump"].signals:
                e.ingest(f"pump-{a}", s, ts, 3.0)
        e.run_hops()
        await asyncio.sleep(0.05)

async def main():
    asyncio.get_running_loop().create_task(feed())
    print("running", flush=True)
    await h.run()

asyncio.run(main())
"""


def test_kill_9_during_writes_loses_at_most_a_flush(tmp_path: Path) -> None:
    from tests.helpers import EXAMPLE

    path = tmp_path / "history.db"
    p = subprocess.Popen([sys.executable, "-c", CHILD, str(EXAMPLE), str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None and p.stdout.readline().strip() == "running"
        time.sleep(4.0)
    finally:
        t_kill = time.time()
        p.send_signal(signal.SIGKILL)
        p.wait(10)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    t = query.query(path, "pump-2", ["vibration"], t_kill - 60, t_kill + 1, tier="fine")
    assert len(t.time) >= 2 and (t.signals["vibration"]["mean"] == 3.0).all()
    newest = t.time[-1] + 2.0  # the newest bucket's end (the open one is written at each flush)
    assert newest >= t_kill - 0.5 - 2.0 - 0.5, f"history ends {t_kill - newest:.2f} s before the kill"
