"""Relative paths in a config mean relative to the config file's folder, from any working directory."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgegw.config import ConfigError, load_config
from tests.helpers import EXAMPLE

ROOT = EXAMPLE.parent.parent


def site(tmp_path: Path) -> Path:
    """A copy of the example as a plant engineer lays it out: config/ beside models/ and secrets/."""
    (tmp_path / "config").mkdir()
    shutil.copytree(ROOT / "models", tmp_path / "models")
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "mqtt").write_text("s3cret\n")
    (tmp_path / "state").mkdir()
    text = EXAMPLE.read_text().replace("model: models/pump", "model: ../models/pump")
    text = text.replace("gateway:\n", "gateway:\n  state_dir: ../state\n", 1)
    text = text.replace("  port: 1883\n", "  port: 1883\n  password_file: ../secrets/mqtt\n", 1)
    text += "upstream:\n  host: 127.0.0.1\n  outbox: {path: ../state/outbox.db}\n"
    cfg = tmp_path / "config" / "gw.yaml"
    cfg.write_text(text)
    return cfg


def test_relative_paths_resolve_beside_the_config_not_the_working_directory(tmp_path: Path) -> None:
    cfg_file = site(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(elsewhere)
        cfg = load_config(cfg_file)
    assert cfg.profiles["pump"].model == str(tmp_path / "models" / "pump")
    assert cfg.gateway.state_dir == str(tmp_path / "state")
    assert cfg.upstream is not None and cfg.upstream.outbox.path == str(tmp_path / "state" / "outbox.db")
    assert cfg.mqtt.password is not None and cfg.mqtt.password.get_secret_value() == "s3cret"
    assert cfg.warnings == []
    r = subprocess.run(
        [sys.executable, "-m", "edgegw", "check", "-c", str(cfg_file)], cwd=elsewhere, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    assert ": ok" in r.stdout and "1 model(s)" in r.stdout


def test_the_example_checks_from_another_folder(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "edgegw", "check", "-c", str(EXAMPLE)], cwd=tmp_path, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    assert "warning" not in r.stderr


def test_a_missing_relative_file_is_named_by_its_resolved_path(tmp_path: Path) -> None:
    cfg_file = site(tmp_path)
    cfg_file.write_text(cfg_file.read_text().replace("../secrets/mqtt", "secrets/mqtt"))
    with pytest.raises(ConfigError) as e:
        load_config(cfg_file)
    (p,) = e.value.problems
    assert "mqtt.password_file" in p and str(tmp_path / "config" / "secrets" / "mqtt") in p


def test_a_path_found_only_from_the_working_directory_still_loads_with_a_warning(tmp_path: Path) -> None:
    """A config written for the old rule (paths from where the daemon starts) keeps running, told why."""
    (tmp_path / "models").mkdir()
    shutil.copytree(ROOT / "models" / "pump", tmp_path / "models" / "pump")
    cfg_file = tmp_path / "etc" / "gw.yaml"
    cfg_file.parent.mkdir()
    cfg_file.write_text(EXAMPLE.read_text())
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path)
        cfg = load_config(cfg_file)
    assert cfg.profiles["pump"].model == str(tmp_path / "models" / "pump")
    (w,) = cfg.warnings
    assert "profiles.pump.model" in w and str(tmp_path / "etc" / "models" / "pump") in w


def test_tests_keep_state_in_a_temporary_directory(state_directory: Path) -> None:
    """A test never writes into /var/lib/edgegw, even on a machine where it exists."""
    from edgegw.preflight import prepare

    f = state_directory / "gw.yaml"
    f.write_text(EXAMPLE.read_text().replace("model: models/pump", "model: null") + "upstream: {host: 127.0.0.1}\n")
    ready = prepare(str(f))
    assert ready.state_dir == state_directory and Path("/var/lib/edgegw") not in (state_directory, *state_directory.parents)
    assert ready.cfg.upstream is not None and Path(ready.cfg.upstream.outbox.path).parent == state_directory
