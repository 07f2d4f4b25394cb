"""The unit file: what it promises (notify + watchdog, no restart loop on a bad config, state and
config directories, credentials, hardening), that systemd-analyze verifies it and rates its
exposure at most 2.5, and that its command lines do what the unit assumes."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "systemd" / "edgegw.service"
EDGEGW = Path(sys.executable).parent / "edgegw"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed (apt install systemd)")


def unit_settings(text: str) -> dict[str, list[str]]:
    """`Section.Key` -> every value it is given, in order (systemd allows repeats)."""
    out: dict[str, list[str]] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return out


@pytest.fixture(scope="module")
def unit() -> dict[str, list[str]]:
    return unit_settings(UNIT.read_text())


def test_unit_promises(unit: dict[str, list[str]]) -> None:
    one = {k: v[-1] for k, v in unit.items()}
    assert one["Service.Type"] == "notify"
    assert one["Service.NotifyAccess"] == "main"
    assert re.fullmatch(r"\d+s?", one["Service.WatchdogSec"])
    assert one["Service.Restart"] == "on-failure"
    assert "78" in one["Service.RestartPreventExitStatus"].split()
    assert one["Service.ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert one["Service.ConfigurationDirectory"] == "edgegw"
    assert one["Service.StateDirectory"] == "edgegw"
    assert one["Service.WorkingDirectory"] == "/opt/edgegw"
    assert {"mqtt-password", "upstream-password"} <= set(unit["Service.LoadCredential"])
    for key, want in {
        "DynamicUser": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "NoNewPrivileges": "yes",
        "SystemCallErrorNumber": "EPERM",
    }.items():
        assert one[f"Service.{key}"] == want, key
    assert set(one["Service.RestrictAddressFamilies"].split()) == {"AF_UNIX", "AF_INET", "AF_INET6"}
    assert unit["Service.SystemCallFilter"][0] == "@system-service"
    assert one["Service.MemoryMax"].endswith("M")
    assert one["Install.WantedBy"] == "multi-user.target"
    # the pre-check must not fail the start: RestartPreventExitStatus= covers the main process only,
    # so a failing ExecStartPre would be restarted in a loop; the daemon exits 78 itself instead
    assert one["Service.ExecStartPre"].startswith("-/opt/edgegw/venv/bin/edgegw check -c /etc/edgegw/edgegw.yaml")
    assert one["Service.ExecStart"] == "/opt/edgegw/venv/bin/edgegw run -c /etc/edgegw/edgegw.yaml"


@needs_analyze
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    """verify needs the executables to exist: point /opt/edgegw at a throwaway copy."""
    opt = tmp_path / "opt" / "edgegw"
    (opt / "venv" / "bin").mkdir(parents=True)
    (opt / "venv" / "bin" / "edgegw").symlink_to(EDGEGW)
    unit = tmp_path / "edgegw.service"
    unit.write_text(UNIT.read_text().replace("/opt/edgegw", str(opt)))
    r = subprocess.run([ANALYZE, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "edgegw.service" not in out, out  # no warnings about our unit either


@needs_analyze
def test_systemd_analyze_security_exposure() -> None:
    r = subprocess.run([ANALYZE, "security", "--offline=true", str(UNIT)], capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for \S+: ([\d.]+)", r.stdout + r.stderr)
    assert m, r.stdout + r.stderr
    assert float(m.group(1)) <= 2.5, r.stdout


def _command(unit: dict[str, list[str]], key: str, config: Path) -> list[str]:
    argv = shlex.split(unit[key][-1].lstrip("-"))
    return [
        str(EDGEGW) if a == "/opt/edgegw/venv/bin/edgegw" else str(config) if a == "/etc/edgegw/edgegw.yaml" else a for a in argv
    ]


def test_command_lines_and_exit_78(unit: dict[str, list[str]], tmp_path: Path) -> None:
    """ExecStartPre passes on the example config; on a broken one both it and ExecStart exit 78,
    the status RestartPreventExitStatus= names, so systemd does not restart into the same error."""
    good = ROOT / "config" / "example.yaml"
    r = subprocess.run(_command(unit, "Service.ExecStartPre", good), capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    bad = tmp_path / "edgegw.yaml"
    bad.write_text(good.read_text().replace("window_s: 30", "window_s: -3"))
    prevent = unit["Service.RestartPreventExitStatus"][-1].split()
    for key in ("Service.ExecStartPre", "Service.ExecStart"):
        r = subprocess.run(_command(unit, key, bad), capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert str(r.returncode) in prevent, (key, r.returncode, r.stderr[-500:])
        assert "window_s" in r.stderr
