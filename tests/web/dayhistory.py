"""History for reports and trend views without waiting for it: the simulator's pumps (with faults)
replayed through the real engine, the shipped model and the real Historian, fast.

    python -m tests.web.dayhistory FOLDER [HOURS]    # writes FOLDER/history.db and FOLDER/config.yaml
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import yaml

from edgegw.config import GatewayConfig, load_config
from edgegw.engine.engine import Engine
from edgegw.gateway import load_models
from edgegw.history.store import Historian
from edgegw.records import AlarmEvent
from edgegw.sim.faults import make_fault
from edgegw.sim.fleet import Fleet
from tests.helpers import EXAMPLE

ROOT = EXAMPLE.parent.parent


def build(folder: Path, hours: float, rate_hz: float = 2.0) -> tuple[GatewayConfig, Path]:
    """`hours` of four pumps ending now: pump-2 wears a bearing in the second half, pump-3
    cavitates for a while in the first; an operator acks pump-2's first alarm."""
    folder.mkdir(parents=True, exist_ok=True)
    d = yaml.safe_load(EXAMPLE.read_text())
    d["gateway"]["state_dir"] = str(folder)
    d["profiles"]["pump"]["model"] = str(ROOT / "models" / "pump")
    cfg_path = folder / "config.yaml"
    cfg_path.write_text(yaml.safe_dump(d, sort_keys=False))
    cfg = load_config(cfg_path)
    span = hours * 3600
    t0 = math.floor((time.time() - span) / 60) * 60
    faults = [
        make_fault("pump-3", "cavitation", span * 0.2, duration_s=span * 0.06),
        make_fault("pump-2", "bearing_wear", span * 0.55, ramp_s=span * 0.2),
    ]
    h = Historian(cfg, folder / "history.db")
    acked: list[str] = []

    def alert(a: object) -> None:
        h.alert(a)  # type: ignore[arg-type]
        if getattr(a, "asset", "") == "pump-2" and getattr(a, "state", "") == "raised" and not acked:
            acked.append(a.kind)  # type: ignore[attr-defined]
            key = (a.asset, a.kind, a.source)  # type: ignore[attr-defined]
            h.event(AlarmEvent(a.ts + 300, "acked", key, by="otto", note="vibration checked on site"))  # type: ignore[attr-defined]

    e = Engine(cfg, alert, load_models(cfg, str(cfg_path)), clock=lambda: 0.0)
    e.on_hop = h.hop
    fleet = Fleet([a.id for a in cfg.assets], faults, seed=3, rate_hz=rate_hz)
    steps = round(span * rate_hz)
    for i in range(steps):
        for s in fleet.step():
            for sig, v in s.values.items():
                if sig in cfg.profiles["pump"].signals:
                    e.ingest(s.asset, sig, t0 + s.t, v)
        e.run_hops()
        if i % 3600 == 3599:
            h.writer.write(h.take())
    h.writer.write(h.take())
    return cfg, folder / "history.db"


if __name__ == "__main__":
    t = time.perf_counter()
    _, path = build(Path(sys.argv[1]), float(sys.argv[2]) if len(sys.argv) > 2 else 24.0)
    print(f"{path}: {path.stat().st_size / 2**20:.1f} MB in {time.perf_counter() - t:.0f} s")
