"""Config: the example validates; bad files name file:line and field; CLI exits 78."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edgegw.config import ConfigError, load_config
from tests.helpers import EXAMPLE


def test_example_config_is_valid() -> None:
    cfg = load_config(EXAMPLE)
    assert [a.id for a in cfg.assets] == ["pump-1", "pump-2", "pump-3", "pump-4"]
    vib = cfg.profiles["pump"].signals["vibration"]
    assert (vib.hi, vib.hihi, vib.on_delay_s) == (7.1, 11.0, 2)
    assert cfg.sources[0].topic == "plant/pumps/{asset}/telemetry"


def test_every_config_in_config_dir_is_valid() -> None:
    for f in sorted(EXAMPLE.parent.glob("*.yaml")):
        load_config(f)


def problems(tmp_path: Path, text: str, *overrides: str) -> list[str]:
    f = tmp_path / "c.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(f, overrides)
    return e.value.problems


def test_unknown_key_and_wrong_type_name_line_and_field(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace("port: 1883", "port: not-a-port") + "\nbogus_section: {a: 1}\n"
    ps = problems(tmp_path, text)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "port: not-a-port" in t)
    port = [p for p in ps if "mqtt.port" in p]
    assert port and f":{line}: mqtt.port:" in port[0], ps
    assert any("bogus_section" in p and "unknown key" in p for p in ps)


def test_every_problem_is_listed(tmp_path: Path) -> None:
    text = (
        "gateway: {id: x}\nmqtt: {port: 99999}\n"
        "profiles: {p: {signals: {v: {hi: 2, hihi: 1}}}}\n"
        "assets: [{id: a, profile: p}]\nsources: [{type: mqtt, topic: a/b}]\n"
    )
    ps = problems(tmp_path, text)
    assert len(ps) == 3, ps
    joined = "\n".join(ps)
    assert "mqtt.port" in joined and "hihi must be >= hi" in joined and "{asset}" in joined
    assert all(p.startswith(str(tmp_path / "c.yaml") + ":") for p in ps)


def test_unknown_profile_is_refused(tmp_path: Path) -> None:
    ps = problems(tmp_path, "profiles: {p: {signals: {v: {}}}}\nassets: [{id: a, profile: q}]\n")
    assert "unknown profile 'q'" in ps[0]


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    ps = problems(tmp_path, EXAMPLE.read_text() + "\n  : : [\n")
    assert "YAML syntax" in ps[0]


def test_set_overrides_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEGW_TEST_SITE", "plant-z")
    text = EXAMPLE.read_text().replace("site: plant-a", "site: ${EDGEGW_TEST_SITE}")
    f = tmp_path / "c.yaml"
    f.write_text(text)
    cfg = load_config(f, ["mqtt.port=1884", "gateway.id=gw-2", "sources.0.qos=0"])
    assert (cfg.mqtt.port, cfg.gateway.id, cfg.gateway.site, cfg.sources[0].qos) == (1884, "gw-2", "plant-z", 0)


def test_missing_env_is_a_problem(tmp_path: Path) -> None:
    ps = problems(tmp_path, EXAMPLE.read_text().replace("site: plant-a", "site: ${EDGEGW_NOPE_NOT_SET}"))
    assert "EDGEGW_NOPE_NOT_SET" in ps[0] and "gateway.site" in ps[0]


def test_password_file_is_read_and_secret(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("s3cret\n")
    f = tmp_path / "c.yaml"
    f.write_text(EXAMPLE.read_text())
    cfg = load_config(f, ["mqtt.username=u", f"mqtt.password_file={tmp_path / 'pw'}"])
    assert cfg.mqtt.password is not None and cfg.mqtt.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(cfg)


@pytest.mark.parametrize("verb", ["check", "run"])
def test_cli_exit_78_on_bad_config(tmp_path: Path, verb: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(EXAMPLE.read_text().replace("port: 1883", "port: not-a-port"))
    r = subprocess.run([sys.executable, "-m", "edgegw", verb, "-c", str(f)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 78
    assert "mqtt.port" in r.stderr and "Traceback" not in r.stderr


def test_cli_check_ok() -> None:
    r = subprocess.run([sys.executable, "-m", "edgegw", "check", "-c", str(EXAMPLE)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "ok" in r.stdout


def test_window_must_be_whole_hops(tmp_path: Path) -> None:
    ps = problems(tmp_path, EXAMPLE.read_text(), "profiles.pump.hop_s=0.7")
    assert len(ps) == 1 and "profiles.pump" in ps[0] and "window_s (30) must be a whole multiple of hop_s (0.7)" in ps[0]
    for ok in ("profiles.pump.hop_s=0.1", "profiles.pump.hop_s=7.5", "profiles.pump.hop_s=30"):
        assert load_config(EXAMPLE, [ok]).profiles["pump"].hop_s > 0
    f = tmp_path / "bad.yaml"
    f.write_text(EXAMPLE.read_text().replace("window_s: 30", "window_s: 30.5"))
    r = subprocess.run([sys.executable, "-m", "edgegw", "check", "-c", str(f)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 78 and "window_s (30.5) must be a whole multiple of hop_s" in r.stderr, r.stderr
