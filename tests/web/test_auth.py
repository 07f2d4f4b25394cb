"""Users, passwords, sessions and login pacing; `edgegw users` as a plant engineer runs it."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from edgegw.web.auth import LoginPacer, Sessions, User, Users, UsersError, check_password, hash_password, read_users, write_users


def edgegw(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgegw", *args], input=stdin, capture_output=True, text=True, timeout=60)


def test_users_command(tmp_path: Path) -> None:
    f = tmp_path / "users"
    r = edgegw("users", "add", "otto", "--role", "operator", "--users-file", str(f), stdin="oper-pass-456\n")
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert "oper-pass-456" not in f.read_text()
    u = read_users(f)["otto"]
    assert u.role == "operator" and check_password(u.hash, "oper-pass-456") and not check_password(u.hash, "oper-pass-457")
    r = edgegw("users", "add", "vera", "--users-file", str(f), stdin="short\n")
    assert r.returncode == 1 and "at least 8" in r.stderr and "vera" not in read_users(f)
    r = edgegw("users", "list", "--users-file", str(f))
    assert r.stdout.split() == ["otto", "operator"]
    r = edgegw("users", "remove", "otto", "--users-file", str(f))
    assert r.returncode == 0 and read_users(f) == {}


def test_salted_and_broken_files(tmp_path: Path) -> None:
    assert hash_password("same-password") != hash_password("same-password")
    f = tmp_path / "users"
    f.write_text("otto:root:scrypt$1\n")
    with pytest.raises(UsersError, match=r"users:1: expected NAME:ROLE"):
        read_users(f)


def test_sessions_end_with_the_user_or_their_password(tmp_path: Path) -> None:
    f = tmp_path / "users"
    otto = User("otto", "operator", hash_password("oper-pass-456"))
    write_users(f, {"otto": otto})
    users = Users(f)
    s = Sessions(os.urandom(32), 3600)
    token = s.issue(otto)
    assert s.check(token, users) == otto
    assert s.check(token[:-2] + "xx", users) is None  # forged
    assert s.check(token, users, now=__import__("time").time() + 7200) is None  # expired
    assert Sessions(os.urandom(32), 3600).check(token, users) is None  # another key
    assert s.csrf_ok(token, s.csrf(token)) and not s.csrf_ok(token, "") and not s.csrf_ok(token, s.csrf(s.issue(otto)))
    write_users(f, {"otto": User("otto", "viewer", otto.hash)})
    assert s.check(token, users).role == "viewer"  # type: ignore[union-attr]  # the role is read from the file
    write_users(f, {"otto": User("otto", "viewer", hash_password("new-pass-789"))})
    assert s.check(token, users) is None  # a new password ends old sessions
    other = s.issue(users.get("otto"))  # type: ignore[arg-type]
    s.revoke(other)
    assert s.check(other, users) is None


def test_pacer() -> None:
    p = LoginPacer(3)
    for _ in range(3):
        assert p.wait_s("ip:a", "user:x", now=100.0) == 0
        p.failed("ip:a", "user:x", now=100.0)
    assert p.wait_s("ip:b", "user:x", now=101.0) == pytest.approx(59.0)  # the name is paced from any address
    assert p.wait_s("ip:b", "user:y", now=101.0) == 0
    assert p.wait_s("ip:a", now=161.0) == 0


def test_config_errors_name_the_field(tmp_path: Path) -> None:
    from tests.helpers import EXAMPLE

    r = edgegw(
        "check",
        "-c",
        str(EXAMPLE),
        "--set",
        "profiles.pump.model=null",
        "--set",
        "web.listen=0.0.0.0",
        "--set",
        "web.anonymous=admin",
    )
    assert r.returncode == 78
    assert "web.listen: '0.0.0.0': expected HOST:PORT" in r.stderr and "web.anonymous" in r.stderr


def test_check_warns_of_no_users_and_no_tls_beyond_loopback(tmp_path: Path) -> None:
    from tests.helpers import EXAMPLE

    users = tmp_path / "users"
    r = edgegw(
        "check",
        "-c",
        str(EXAMPLE),
        "--set",
        "profiles.pump.model=null",
        "--set",
        "web.listen=0.0.0.0:8080",
        "--set",
        f"web.users_file={users}",
    )
    assert r.returncode == 0, r.stderr
    assert (
        f"no users in {users} yet: edgegw users add" in r.stderr
        and "0.0.0.0:8080 is reachable beyond this machine without TLS" in r.stderr
    )
