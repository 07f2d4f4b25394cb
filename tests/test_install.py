"""install.sh / uninstall.sh into a throwaway root (no running systemd needed): a runtime-only venv
that really runs the daemon from the unit's working directory, the config kept on upgrade, the
unit enabled, and an uninstall that keeps config and outbox unless purged. Also: the recommended
mosquitto settings load in a real mosquitto."""

from __future__ import annotations

import filecmp
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.peers import MOSQUITTO, Broker, free_port, wait_port

ROOT = Path(__file__).resolve().parent.parent
SYSTEMD = ROOT / "systemd"


def sh(script: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DESTDIR", "VIRTUAL_ENV")}
    env["PYTHON"] = sys.executable  # the interpreter running the tests (>= 3.11) makes the venv
    r = subprocess.run(["sh", str(SYSTEMD / script), *args], capture_output=True, text=True, timeout=timeout, env=env)
    assert r.returncode == 0, f"{script} {args}: rc {r.returncode}\n{r.stdout}\n{r.stderr[-3000:]}"
    return r


def ready_under_notify(argv: list[str], cwd: Path, tmp: Path, timeout: float = 60) -> str:
    """Run a daemon with a notify socket until READY=1 (or it exits); SIGTERM it; its log."""
    path = tmp / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(str(path))
        s.settimeout(0.2)
        env = {**os.environ, "NOTIFY_SOCKET": str(path), "PYTHONFAULTHANDLER": "1"}
        with open(tmp / "daemon.log", "wb") as log:
            p = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        got: list[str] = []
        try:
            end = time.monotonic() + timeout
            while time.monotonic() < end and p.poll() is None and not any("READY=1" in m for m in got):
                try:
                    got.append(s.recv(4096).decode())
                except TimeoutError:
                    continue
        finally:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.send_signal(signal.SIGABRT)  # the stacks go to the log
                p.wait(10)
                raise AssertionError("no exit 20 s after SIGTERM:\n" + (tmp / "daemon.log").read_text()[-6000:]) from None
    log_text = (tmp / "daemon.log").read_text()
    assert any("READY=1" in m for m in got), log_text[-3000:]
    return log_text


@pytest.mark.timeout(900)
def test_install_upgrade_uninstall(tmp_path: Path, mosquitto: Broker) -> None:
    root = tmp_path / "root"
    out = sh("install.sh", "--root", str(root), "--mosquitto").stdout
    assert "wrote /etc/edgegw/edgegw.yaml" in out

    opt, etc = root / "opt" / "edgegw", root / "etc" / "edgegw"
    py = opt / "venv" / "bin" / "python"
    # the runtime only: onnxruntime yes, scikit-learn no
    r = subprocess.run(
        [
            str(py),
            "-c",
            "import onnxruntime, numpy, aiomqtt, edgegw.gateway\n"
            "import importlib.util as u; assert u.find_spec('sklearn') is None, 'sklearn installed'",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    # scripts name the interpreter by its path on the target system
    assert (opt / "venv" / "bin" / "edgegw").read_text().splitlines()[0] == "#!/opt/edgegw/venv/bin/python"
    example = (ROOT / "config" / "example.yaml").read_text()
    assert (etc / "edgegw.yaml").read_text() == example.replace("model: models/pump", "model: /opt/edgegw/models/pump")
    assert (etc / "edgegw.yaml.example").exists()
    unit = root / "etc" / "systemd" / "system" / "edgegw.service"
    assert filecmp.cmp(unit, SYSTEMD / "edgegw.service", shallow=False)
    wants = root / "etc" / "systemd" / "system" / "multi-user.target.wants" / "edgegw.service"
    assert wants.is_symlink() and os.readlink(wants) == "/etc/systemd/system/edgegw.service"
    assert (root / "etc" / "credstore").stat().st_mode & 0o777 == 0o700
    assert (root / "etc" / "mosquitto" / "conf.d" / "edgegw.conf").exists()
    if (ROOT / "models" / "pump").is_dir():
        assert not filecmp.dircmp(ROOT / "models" / "pump", opt / "models" / "pump").diff_files
        assert sorted(p.name for p in (ROOT / "models" / "pump").iterdir()) == sorted(
            p.name for p in (opt / "models" / "pump").iterdir()
        )

    # the installed config names the shipped models by their absolute path (here under --root)
    shipped = f"profiles.pump.model={opt / 'models' / 'pump'}"
    r = subprocess.run(
        [str(py), "-m", "edgegw", "check", "-c", str(etc / "edgegw.yaml"), "--set", shipped],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert r.returncode == 0 and "warning" not in r.stderr, r.stderr
    log = ready_under_notify(
        [
            str(py),
            "-m",
            "edgegw",
            "run",
            "-c",
            str(etc / "edgegw.yaml"),
            "--set",
            f"mqtt.port={mosquitto.port}",
            "--set",
            "gateway.id=gw-install-test",
            "--set",
            "sources.0.topic=install/{asset}/t",
            "--set",
            shipped,
        ],
        cwd=opt,
        tmp=tmp_path,
    )
    if (ROOT / "models" / "pump").is_dir():
        assert '"models": ["pump"]' in log, log[-3000:]  # loaded from /opt/edgegw/models/pump

    analyze = shutil.which("systemd-analyze")
    if analyze:
        mapped = tmp_path / "edgegw.service"
        mapped.write_text(unit.read_text().replace("/opt/edgegw", str(opt)))
        r = subprocess.run([analyze, "verify", str(mapped)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr

    # upgrade: same command again; the user's config stays, stale shipped files go
    (etc / "edgegw.yaml").write_text((etc / "edgegw.yaml").read_text() + "# edited on site\n")
    (opt / "models" / "stale.onnx").write_text("old")
    out = sh("install.sh", "--root", str(root)).stdout
    assert "kept /etc/edgegw/edgegw.yaml" in out
    assert (etc / "edgegw.yaml").read_text().endswith("# edited on site\n")
    assert not (opt / "models" / "stale.onnx").exists()
    assert wants.is_symlink()

    # uninstall keeps the config and the outbox (alerts not yet delivered upstream)
    state = root / "var" / "lib" / "edgegw"
    state.mkdir(parents=True)
    (state / "outbox.db").write_text("queued")
    sh("uninstall.sh", "--root", str(root))
    assert not opt.exists() and not unit.exists() and not wants.is_symlink()
    assert (etc / "edgegw.yaml").exists() and (state / "outbox.db").exists()
    sh("uninstall.sh", "--root", str(root), "--purge")
    assert not etc.exists() and not state.exists()


def test_install_refuses_the_training_extra(tmp_path: Path) -> None:
    r = subprocess.run(
        ["sh", str(SYSTEMD / "install.sh"), "--root", str(tmp_path), "--extras", "train"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "runtime only" in r.stderr
    assert not (tmp_path / "opt").exists()


def test_mosquitto_snippet_loads(tmp_path: Path) -> None:
    """The recommended settings are valid for a real mosquitto (on a free port instead of 1883)."""
    if MOSQUITTO is None:
        pytest.skip("mosquitto is not installed")
    text = (SYSTEMD / "mosquitto-edgegw.conf").read_text()
    assert "listener 1883 127.0.0.1" in text and "max_queued_messages 0" in text and "set_tcp_nodelay true" in text
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(text.replace("listener 1883 127.0.0.1", f"listener {port} 127.0.0.1"))
    with open(tmp_path / "mosquitto.log", "wb") as log:
        p = subprocess.Popen([MOSQUITTO, "-c", str(conf), "-v"], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_port(port)
        assert p.poll() is None
    finally:
        p.terminate()
        p.wait(10)
    assert "Error" not in (tmp_path / "mosquitto.log").read_text()


def test_scripts_are_posix_sh() -> None:
    for name in ("install.sh", "uninstall.sh"):
        r = subprocess.run(["sh", "-n", str(SYSTEMD / name)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert os.access(SYSTEMD / name, os.X_OK), f"{name} is not executable"
    if shutil.which("dash"):
        r = subprocess.run(["dash", str(SYSTEMD / "install.sh"), "--help"], capture_output=True, text=True)
        assert r.returncode == 0 and "--root" in r.stdout, r.stderr
