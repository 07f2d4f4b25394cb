"""The notify: section: both forms, names, secrets from files, clear errors; libraries load only when used."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edgegw.config import ConfigError
from tests.notify.peers import notify_config


def test_short_form_is_the_targets_with_defaults(tmp_path: Path) -> None:
    cfg = notify_config(
        tmp_path,
        1883,
        [
            {"type": "email", "smtp": {"host": "mail.example.net", "ssl": True}, "from": "gw@x.example", "to": ["a@x.example"]},
            {"type": "webhook", "url": "https://ntfy.example.net/pumps"},
        ],
    )
    n = cfg.notify
    assert n is not None
    assert [t.name for t in n.targets] == ["email-0", "webhook-1"]
    assert n.targets[0].smtp.port_or_default == 465 and n.targets[0].digest_s == 5
    assert n.targets[1].digest_s == 0 and n.targets[1].min_severity == "warning"
    assert n.state_dir is None and n.commands.topic == "cmd/{gateway}/alarms"
    assert n.journal_path(n.folder(None)) == Path("/var/lib/edgegw/alarms.db")
    assert n.folder(Path("/run/state")) == Path("/run/state")


def test_secrets_come_from_files(tmp_path: Path) -> None:
    (tmp_path / "url").write_text("https://hooks.slack.com/triggers/T0/123/abc\n")
    (tmp_path / "auth").write_text("Bearer xyz\n")
    cfg = notify_config(
        tmp_path,
        1883,
        {
            "state_dir": str(tmp_path),
            "targets": [
                {
                    "type": "webhook",
                    "name": "slack",
                    "url_file": str(tmp_path / "url"),
                    "header_files": {"Authorization": str(tmp_path / "auth")},
                }
            ],
        },
    )
    t = cfg.notify.targets[0]  # type: ignore[union-attr]
    assert t.url.get_secret_value().endswith("/abc") and t.headers["Authorization"] == "Bearer xyz"  # type: ignore[union-attr]
    assert "abc" not in repr(cfg.notify)


@pytest.mark.parametrize(
    ("target", "field", "what"),
    [
        ({"type": "email", "smtp": {"host": "h"}, "from": "gw@x.example"}, "notify.targets.0.to", "Field required"),
        (
            {"type": "email", "smtp": {"host": "h", "ssl": True, "starttls": True}, "from": "gw@x.example", "to": ["a@b.c"]},
            "notify.targets.0.smtp",
            "ssl or starttls",
        ),
        ({"type": "webhook", "url": "ftp://x"}, "notify.targets.0", "http:// or https://"),
        ({"type": "webhook"}, "notify.targets.0", "url or url_file is required"),
        ({"type": "pager", "url": "x"}, "notify.targets.0", "does not match any of the expected tags"),
        ({"type": "webhook", "url": "http://x", "min_severity": "loud"}, "notify.targets.0.min_severity", "Input should be"),
    ],
)
def test_bad_target_names_line_and_field(tmp_path: Path, target: dict, field: str, what: str) -> None:
    with pytest.raises(ConfigError) as e:
        notify_config(tmp_path, 1883, [target])
    line = len((tmp_path / "gw.yaml").read_text().splitlines())  # the notify: line, the file's last
    assert any(f"gw.yaml:{line}: {field}: " in p and what in p for p in e.value.problems), e.value.problems


def test_duplicate_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        notify_config(
            tmp_path,
            1883,
            [{"type": "webhook", "url": "http://a", "name": "x"}, {"type": "webhook", "url": "http://b", "name": "x"}],
        )
    assert "duplicate target name 'x'" in e.value.problems[0]


def test_daemon_imports_no_delivery_library_without_notify() -> None:
    code = (
        "import sys, edgegw.gateway, edgegw.cli, edgegw.config; "
        "print(','.join(m for m in ('aiosmtplib', 'httpx', 'aiosmtpd') if m in sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == ""


def test_a_ca_file_tls_cannot_use_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not a certificate\n")
    with pytest.raises(ConfigError) as e:
        notify_config(tmp_path, 1883, [{"type": "webhook", "url": "https://x.example", "ca_file": str(tmp_path / "ca.pem")}])
    assert any("notify.targets.0.ca_file: cannot use" in p for p in e.value.problems), e.value.problems
