"""`edgegw report` on simulated history: what a maintenance meeting reads, in one file."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.web.dayhistory import build


def test_report_of_simulated_history(tmp_path: Path) -> None:
    build(tmp_path, 0.5)
    out = tmp_path / "report.html"
    r = subprocess.run(
        [sys.executable, "-m", "edgegw", "report", "-c", str(tmp_path / "config.yaml"), "--since", "30m", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    html = out.read_text()
    # self-contained: no script, no fetched image, font or style sheet
    assert "<script" not in html and not re.search(r"""(src|href)=["']?(https?:|//)""", html) and "<link" not in html
    for a in ("pump-1", "pump-2", "pump-3", "pump-4"):
        assert f'id="{a}"' in html
    summary = html.split("<h3>Top events</h3>")[0]
    rows = {
        m[0]: m[1:]
        for m in re.findall(
            r'<tr><td><a href="#([^"]+)">[^<]+</a></td><td class=n>([\d.]+)%</td><td class="n ?(\w*)">([\d.]+)%', summary
        )
    }
    assert float(rows["pump-1"][0]) > 90 and rows["pump-1"][1] != "bad"  # readings all along, nothing critical
    assert rows["pump-3"][1] == "bad" and float(rows["pump-3"][2]) > 0  # the cavitation spell
    assert float(rows["pump-2"][2]) > 5 * float(rows["pump-1"][2])  # the worn bearing
    assert "cavitation" in html.split('id="pump-3"')[1].split("</section>")[0]
    pump2 = html.split('id="pump-2"')[1].split("</section>")[0]
    assert "vibration checked on site" in pump2 and "otto" in pump2  # the ack, with who and why
    assert pump2.count("<svg") == 7  # six signals and the anomaly score
    assert "hihi 11" in pump2  # vibration's limits drawn


def test_report_refuses_unknown_assets_and_missing_history(tmp_path: Path) -> None:
    cfg_path = tmp_path / "config.yaml"
    build(tmp_path, 0.02)
    r = subprocess.run(
        [sys.executable, "-m", "edgegw", "report", "-c", str(cfg_path), "--asset", "pump-9", "--out", "x.html"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "pump-9" in r.stderr
    (tmp_path / "history.db").unlink()
    r = subprocess.run(
        [sys.executable, "-m", "edgegw", "report", "-c", str(cfg_path), "--out", "x.html"], capture_output=True, text=True
    )
    assert r.returncode == 1 and "no history" in r.stderr


def test_report_as_pdf(tmp_path: Path) -> None:
    import shutil

    import pytest

    if shutil.which("chromium") is None:
        pytest.skip("no chromium to print with")
    build(tmp_path, 0.02)
    out = tmp_path / "report.pdf"
    r = subprocess.run(
        [sys.executable, "-m", "edgegw", "report", "-c", str(tmp_path / "config.yaml"), "--since", "1h", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert out.read_bytes().startswith(b"%PDF-")
