"""`edgegw check` lists every problem of a config in one run, each on its line, with "did you mean"."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edgegw.config import ConfigError, load_config
from tests.helpers import EXAMPLE


def test_check_lists_a_misspelt_key_an_unknown_signal_and_an_unknown_profile_together(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace("stale_after_s:", "stale_afer_s:")
    assert "vibration: vibration" in text
    text = text.replace("vibration: vibration", "vibration: vibraton", 1)
    text = text.replace(
        "  - {id: pump-4, profile: pump}\n", "  - {id: pump-4, profile: pump}\n  - {id: pump-9, profile: pumpp}\n"
    )
    f = tmp_path / "gw.yaml"
    f.write_text(text)
    r = subprocess.run(
        [sys.executable, "-m", "edgegw", "check", "-c", str(f)], capture_output=True, text=True, cwd=EXAMPLE.parent.parent
    )
    assert r.returncode == 78, r.stdout + r.stderr
    lines = text.splitlines()

    def line_of(needle: str) -> int:
        return next(i for i, t in enumerate(lines, 1) if needle in t)

    out = r.stderr
    assert (
        f"{f}:{line_of('stale_afer_s')}: profiles.pump.stale_afer_s: unknown key 'stale_afer_s' (did you mean 'stale_after_s'?)"
        in out
    )
    assert (
        f"{f}:{line_of('vibraton')}: sources.0.fields.vibration: "
        "signal 'vibraton' is not in any profile (did you mean 'vibration'?)" in out
    )
    assert f"{f}:{line_of('pumpp')}: assets.4.profile: unknown profile 'pumpp' (did you mean 'pump'?)" in out
    assert "(3 problems)" in out


def test_opcua_nodes_name_assets_and_signals_the_config_defines(tmp_path: Path) -> None:
    f = tmp_path / "gw.yaml"
    head, sep, tail = EXAMPLE.read_text().partition("\nprofiles:")
    f.write_text(
        head
        + "\n  - type: opcua\n    endpoint: opc.tcp://127.0.0.1:4840\n    nodes:\n"
        + "      - {node: 'ns=2;s=a', asset: pump-7, signal: flow}\n"
        + "      - {node: 'ns=2;s=b', asset: pump-1, signal: flw}\n"
        + sep
        + tail
    )
    with pytest.raises(ConfigError) as e:
        load_config(f, ["profiles.pump.model=null"])
    ps = e.value.problems
    assert any("sources.1.nodes.0.asset: unknown asset 'pump-7'" in p for p in ps), ps
    assert any("sources.1.nodes.1.signal: signal 'flw' is not in profile 'pump' (did you mean 'flow'?)" in p for p in ps), ps


def test_a_misspelt_key_inside_a_tagged_source_gets_a_hint(tmp_path: Path) -> None:
    f = tmp_path / "gw.yaml"
    f.write_text(EXAMPLE.read_text().replace("    topic: ", "    topik: ", 1))
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert any("sources.0.topik: unknown key 'topik' (did you mean 'topic'?)" in p for p in e.value.problems), e.value.problems


def test_check_lists_a_wrong_name_and_a_model_that_cannot_serve_together(tmp_path: Path) -> None:
    """A file whose schema holds still gets the preflight's checks (models, TLS, queues) in the same run."""
    f = tmp_path / "gw.yaml"
    f.write_text(
        EXAMPLE.read_text()
        .replace("      flow: flow\n", "      flow: flw\n", 1)
        .replace("model: models/pump", f"model: {tmp_path}")
    )
    r = subprocess.run([sys.executable, "-m", "edgegw", "check", "-c", str(f)], capture_output=True, text=True)
    assert r.returncode == 78
    assert "sources.0.fields.flow: signal 'flw' is not in any profile (did you mean 'flow'?)" in r.stderr
    assert f"profiles.pump.model: {tmp_path}" in r.stderr and "(2 problems)" in r.stderr
