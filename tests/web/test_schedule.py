"""`report: {every, to}`: the report is written when due, kept while the SMTP server is away,
and mailed (HTML attached) once it is back; the next due time survives a restart."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import yaml

from edgegw.config import load_config
from edgegw.web.schedule import ReportMailer
from tests.notify.peers import Smtp, email_target
from tests.peers import until
from tests.web.dayhistory import build


async def test_a_due_report_waits_out_an_smtp_outage(tmp_path: Path) -> None:
    build(tmp_path, 0.05)
    smtp = Smtp()  # not started yet: the server is away
    d = yaml.safe_load((tmp_path / "config.yaml").read_text())
    d["notify"] = {"targets": [email_target(smtp, name="office")], "commands": {"enabled": False}}
    d["report"] = {"every": "1h", "to": ["office"]}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(d))
    cfg = load_config(tmp_path / "config.yaml")
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "next").write_text(str(time.time() + 0.3))
    mailer = ReportMailer(cfg, tmp_path / "history.db", tmp_path)
    task = asyncio.create_task(mailer.run())
    try:
        await until(lambda: list(reports.glob("*.pending")), 20, "the report written and pending")
        note = json.loads(next(reports.glob("*.pending")).read_text())
        assert note["to"] == ["office"] and (reports / note["file"]).is_file()

        def next_in_an_hour() -> bool:  # the pending note is written before the next time
            try:
                return float((reports / "next").read_text()) > time.time() + 3000
            except ValueError:  # caught between truncate and write
                return False

        await until(next_in_an_hour, 5, "the next report an hour on")
        await asyncio.sleep(0.5)
        assert not smtp.box.messages and list(reports.glob("*.pending"))  # kept while the server is away
        smtp.start()
        await until(lambda: smtp.box.messages, 30, "the report mailed")
        m = smtp.box.messages[0]
        assert "report gw-pumphouse-1" in m["Subject"]
        html = next(p for p in m.iter_attachments() if p.get_content_type() == "text/html")
        assert html.get_filename() == note["file"] and "Pump house report" in html.get_content()
        await until(lambda: not list(reports.glob("*.pending")), 5, "the pending note gone")
    finally:
        await mailer.close(1.0)
        await asyncio.wait_for(task, 10)
        smtp.stop()


def test_check_names_a_report_target_that_is_no_email_target(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.helpers import EXAMPLE

    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgegw",
            "check",
            "-c",
            str(EXAMPLE),
            "--set",
            "profiles.pump.model=null",
            "--set",
            f"gateway.state_dir={tmp_path}",
            "--set",
            "report.every=7d",
            "--set",
            "report.to=[office]",
        ],
        capture_output=True,
        text=True,
    )
    assert (
        r.returncode == 78 and "report.to.0: 'office' is not an email target of notify: (no notify email target)" in r.stderr
    ), r.stderr
