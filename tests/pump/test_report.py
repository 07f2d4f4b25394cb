"""The energy report: figures against hand-worked totals, plain words, rollups over a period, and
`edgegw energy` as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from edgegw.cli import main
from edgegw.config import load_config
from edgegw.config.pump import pumps_of
from edgegw.pump.report import render_html, render_text, rows_from_rollups, rows_from_totals
from edgegw.pump.totals import TotalsFile
from tests.engine.test_pump_engine import write

TOTALS = {
    "energy_kwh": 100.0,
    "volume_m3": 600.0,
    "hydraulic_kwh": 60.0,
    "run_hours": 10.0,
    "starts": 2,
    "preferred_hours": 8.0,
    "allowable_hours": 9.5,
}


def pumps(tmp_path: Path) -> dict:
    cfg = load_config(write(tmp_path, assets=[{"id": "pump-1", "profile": "pump"}]))
    return pumps_of(cfg.assets, cfg.profiles)


def test_figures_from_totals(tmp_path: Path) -> None:
    (r,) = rows_from_totals({"pump-1": TOTALS}, pumps(tmp_path))
    assert r.kwh_m3 == pytest.approx(100 / 600)  # 0.167 kWh/m3
    assert r.efficiency == pytest.approx(0.6)  # 60 kWh of hydraulic work for 100 kWh drawn
    assert r.bep_efficiency == pytest.approx(0.74 * 0.9, rel=1e-3)  # the curve's 0.74 at 60 m3/h, motor 0.9
    assert r.saving_kwh == pytest.approx(100 - 60 / 0.666, rel=1e-3)  # 9.9 kWh
    text = render_text([r])
    assert "pump-1 used 100.0 kWh to move 600 m3 (0.167 kWh/m3), running 10.0 h with 2 start(s)." in text
    assert "80 % of that time in its preferred region (70–120 % of its best-efficiency flow)" in text
    assert "95 % in the allowable one" in text
    assert "Wire-to-water efficiency was 0.60 (at the best-efficiency point: 0.67)" in text
    assert "9.9 kWh (10 %) to save" in text
    page = render_html([r])
    assert page.startswith("<!doctype html>") and "<td>pump-1</td>" in page and "<script" not in page


def test_a_period_from_rollups(tmp_path: Path) -> None:
    rolls = []
    for h in range(13):  # a rollup an hour; efficiency falling 0.5 points an hour = 84 a week
        p = {k: v * h / 12 for k, v in TOTALS.items()}
        p["efficiency"] = 0.6 - 0.005 * h
        rolls.append({"asset": "pump-1", "end": f"2026-01-01T{h:02d}:00:00.000Z", "pump": p})
    rolls.append({"asset": "pump-9", "end": "2026-01-01T01:00:00Z", "pump": TOTALS})  # not described here: ignored
    (r,) = rows_from_rollups(rolls, pumps(tmp_path))
    assert r.kwh == pytest.approx(100.0) and r.starts == 2 and r.run_hours == pytest.approx(10.0)
    assert r.efficiency_trend == pytest.approx(-84.0)
    assert "falling 84.0 points a week" in render_text([r])
    half = rows_from_rollups(rolls, pumps(tmp_path), since=1767236400.0)  # from 03:00 UTC
    assert half[0].kwh == pytest.approx(100.0 * 9 / 12)


def test_edgegw_energy_from_the_state_dir_and_from_rollups(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write(tmp_path, assets=[{"id": "pump-1", "profile": "pump"}])
    d = yaml.safe_load(cfg.read_text())
    d["gateway"]["state_dir"] = str(tmp_path)
    cfg.write_text(yaml.safe_dump(d))
    TotalsFile(tmp_path, "gw-pumphouse-1").write({"pump-1": TOTALS})
    assert main(["energy", "-c", str(cfg), "--html", str(tmp_path / "r.html")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Energy report of gw-pumphouse-1, since the gateway began counting") and "9.9 kWh (10 %) to save" in out
    assert "<table>" in (tmp_path / "r.html").read_text()
    lines = tmp_path / "rollups.txt"
    rolled = [{"asset": "pump-1", "end": f"2026-01-01T0{h}:00:00Z", "pump": {"energy_kwh": 5.0 * h}} for h in range(4)]
    lines.write_text("".join(f"rollups/plant-a/pump-1 {json.dumps(r)}\n" for r in rolled) + "not json\n")
    assert main(["energy", "-c", str(cfg), "--rollups", str(lines), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["kwh"] == 15.0
    assert main(["energy", "-c", str(cfg), "--since", "7d"]) == 2
    assert "no history at" in capsys.readouterr().err  # a period needs the historian (or --rollups)
    bad = tmp_path / "bad.yaml"
    bad.write_text(cfg.read_text().replace("bep_flow: 60", "bep_flow: -1"))
    assert main(["energy", "-c", str(bad)]) == 78
    assert "bep_flow" in capsys.readouterr().err


def test_a_period_from_history(tmp_path: Path) -> None:
    from edgegw.engine.engine import Engine
    from edgegw.history.store import Historian
    from edgegw.pump.report import rows_from_history
    from tests.engine.test_pump_engine import BEP

    cfg = load_config(write(tmp_path, assets=[{"id": "pump-1", "profile": "pump"}]))
    h = Historian(cfg, tmp_path / "history.db")
    e = Engine(cfg, lambda a: None, clock=lambda: 0.0)
    e.on_hop = h.hop
    t0 = 1_800_000_000.0
    for i in range(2 * 300):  # five minutes at the best-efficiency point, 2 Hz
        for s, v in BEP.items():
            e.ingest("pump-1", s, t0 + i / 2, v)
        e.run_hops()
    h.writer.write(h.take())
    assert h.writer.db is not None
    h.writer.roll_up(h.writer.db)
    (r,) = rows_from_history(tmp_path / "history.db", pumps_of(cfg.assets, cfg.profiles), {"pump-1": 1.0}, t0, t0 + 400)
    # hops end at 1..299 s, each a second at 8.9076 kW and 60 m3/h
    assert r.kwh == pytest.approx(8.9076 * 299 / 3600, rel=0.01)
    assert r.m3 == pytest.approx(60 * 299 / 3600, rel=0.01)
    assert r.efficiency == pytest.approx(5.9 / 8.9076, rel=0.01)
    assert r.run_hours == pytest.approx(299 / 3600, rel=0.01) and r.starts == 1
    assert r.preferred_hours == pytest.approx(r.run_hours)
