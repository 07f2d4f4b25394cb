"""edgegw-retrain.service and its timer: systemd-analyze verifies them, the service is as hardened
as the daemon's unit, runs as the daemon's user with its state directory at the lowest priority
under a memory cap of its own, and its command line works on a learning config."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.test_systemd_unit import ANALYZE, ROOT, needs_analyze, unit_settings

SERVICE = ROOT / "systemd" / "edgegw-retrain.service"
TIMER = ROOT / "systemd" / "edgegw-retrain.timer"
EDGEGW = Path(sys.executable).parent / "edgegw"


def test_the_service_runs_beside_the_daemon_with_its_user_state_and_limits() -> None:
    one = {k: v[-1] for k, v in unit_settings(SERVICE.read_text()).items()}
    daemon = {k: v[-1] for k, v in unit_settings((ROOT / "systemd" / "edgegw.service").read_text()).items()}
    assert one["Service.Type"] == "oneshot"
    assert one["Service.User"] == "edgegw" and one["Service.DynamicUser"] == "yes"  # the daemon's dynamic user
    assert one["Service.StateDirectory"] == daemon["Service.StateDirectory"]
    assert one["Service.Nice"] == "19" and one["Service.CPUSchedulingPolicy"] == "idle"
    assert one["Service.MemoryMax"] == "400M"
    assert "EDGEGW_RETRAIN=timer" in " ".join(
        unit_settings(SERVICE.parent.joinpath("edgegw.service").read_text())["Service.Environment"]
    )
    for key in ("SystemCallFilter", "ProtectSystem", "NoNewPrivileges", "PrivateUsers", "MemoryDenyWriteExecute"):
        assert one[f"Service.{key}"] == daemon[f"Service.{key}"], key
    assert unit_settings(TIMER.read_text())["Install.WantedBy"] == ["timers.target"]


@needs_analyze
def test_systemd_analyze_verify_and_security(tmp_path: Path) -> None:
    assert ANALYZE is not None
    opt = tmp_path / "opt" / "edgegw"
    (opt / "train-venv" / "bin").mkdir(parents=True)
    (opt / "train-venv" / "bin" / "edgegw").symlink_to(EDGEGW)
    (tmp_path / "edgegw-retrain.service").write_text(SERVICE.read_text().replace("/opt/edgegw", str(opt)))
    (tmp_path / "edgegw-retrain.timer").write_text(TIMER.read_text())
    r = subprocess.run(
        [ANALYZE, "verify", str(tmp_path / "edgegw-retrain.service"), str(tmp_path / "edgegw-retrain.timer")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0 and "edgegw-retrain" not in r.stdout + r.stderr, r.stdout + r.stderr
    r = subprocess.run([ANALYZE, "security", "--offline=true", str(SERVICE)], capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for \S+: ([\d.]+)", r.stdout + r.stderr)
    assert m and float(m.group(1)) <= 2.5, r.stdout + r.stderr


def test_the_command_line_says_learning_before_there_is_history(tmp_path: Path) -> None:
    cfg = tmp_path / "edgegw.yaml"
    text = (ROOT / "config" / "example.yaml").read_text().replace("model: models/pump", "model: learn")
    cfg.write_text(text.replace("  site: plant-a", f"  site: plant-a\n  state_dir: {tmp_path}"))
    argv = shlex.split(unit_settings(SERVICE.read_text())["Service.ExecStart"][-1])
    argv = [str(EDGEGW) if a.endswith("/bin/edgegw") else str(cfg) if a == "/etc/edgegw/edgegw.yaml" else a for a in argv]
    r = subprocess.run([*argv, "--no-limits"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    verdicts = [json.loads(line) for line in r.stdout.splitlines()]
    assert [v["asset"] for v in verdicts] == ["pump-1", "pump-2", "pump-3", "pump-4"]
    assert {v["outcome"] for v in verdicts} == {"learning"}
    r = subprocess.run([str(EDGEGW), "models", "-c", str(cfg), "--json"], capture_output=True, text=True, timeout=60)
    rows = json.loads(r.stdout)
    assert [(m["asset"], m["state"], m["version"]) for m in rows] == [(f"pump-{i}", "learning", None) for i in range(1, 5)]
