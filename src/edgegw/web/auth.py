"""Who may look and who may act: the users file, signed session cookies, CSRF tokens, login pacing.

The users file holds one line per user, `name:role:scrypt$n$r$p$salt$hash` (hashlib's scrypt, a
random salt per user), written whole and replaced atomically with mode 0600. Sessions are signed
cookies (HMAC-SHA256 with a key kept beside the users file), so a daemon restart keeps everyone
logged in and the page reconnects by itself; a session names its user and a fingerprint of the
password hash, so removing a user or changing a password ends their sessions, and a role change
takes effect at once (the role is read from the file, not the cookie).
"""

from __future__ import annotations

import argparse
import base64
import getpass
import hashlib
import hmac
import os
import re
import secrets
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

ROLES = ("viewer", "operator", "admin")
RANK = {r: i for i, r in enumerate(ROLES)}
NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
MIN_PASSWORD = 8
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1  # 16 MiB and ~50-200 ms per check: slow to guess, fine to log in
COOKIE = "edgegw_session"


class UsersError(Exception):
    """A users file that cannot be read or a user that cannot be added; the text says which."""


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: str
    hash: str  # scrypt$n$r$p$salt$hash

    def may(self, role: str) -> bool:
        return RANK[self.role] >= RANK[role]


def _b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def _unb64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    h = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(h)}"


def check_password(stored: str, password: str) -> bool:
    """Constant-time compare against a stored scrypt hash (slow on purpose: run it off the loop)."""
    try:
        algo, n, r, p, salt, want = stored.split("$")
        if algo != "scrypt":
            return False
        got = hashlib.scrypt(password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), dklen=32, maxmem=2**26)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, _unb64(want))


def read_users(path: Path) -> dict[str, User]:
    """name -> User; a missing file is no users. UsersError names the line that is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as e:
        raise UsersError(f"{path}: cannot read: {e}") from None
    users: dict[str, User] = {}
    for i, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) != 3 or not NAME.match(parts[0]) or parts[1] not in ROLES or not parts[2].startswith("scrypt$"):
            raise UsersError(f"{path}:{i}: expected NAME:ROLE:scrypt$... with ROLE one of {', '.join(ROLES)}")
        users[parts[0]] = User(*parts)
    return users


def write_users(path: Path, users: dict[str, User]) -> None:
    """The whole file, replaced atomically, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    body = "# edgegw users: edit with `edgegw users add|remove`\n" + "".join(
        f"{u.name}:{u.role}:{u.hash}\n" for u in sorted(users.values(), key=lambda u: u.name)
    )
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(body)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class Users:
    """The users file as the server sees it: read again whenever it changes on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._users: dict[str, User] = {}
        self.error: str | None = None

    def get(self, name: str) -> User | None:
        try:
            st = self.path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = (0, 0)
        if stamp != self._stamp:
            try:
                self._users = read_users(self.path)
                self.error = None
            except UsersError as e:  # keep who was known; the log says why
                self.error = str(e)
            self._stamp = stamp
        return self._users.get(name)

    def __len__(self) -> int:
        self.get("")
        return len(self._users)


def load_key(path: Path) -> bytes:
    """The session signing key, made once (0600). Unwritable: a key for this run only."""
    try:
        data = path.read_bytes()
        if len(data) >= 32:
            return data[:64]
    except FileNotFoundError:
        pass
    key = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key)
    except OSError:
        pass  # sessions then end with the process
    return key


class Sessions:
    """Signed, expiring session tokens and the CSRF token that goes with each."""

    def __init__(self, key: bytes, lifetime_s: float) -> None:
        self.key = key
        self.lifetime_s = lifetime_s
        self._revoked: dict[str, float] = {}  # token nonce -> its expiry

    def _sig(self, *parts: str) -> str:
        return _b64(hmac.new(self.key, "|".join(parts).encode(), hashlib.sha256).digest()[:24])

    def _print(self, user: User) -> str:
        return self._sig("pw", user.hash)[:12]

    def issue(self, user: User, now: float | None = None) -> str:
        expires = int((now or time.time()) + self.lifetime_s)
        body = _b64(f"{user.name}|{expires}|{self._print(user)}|{secrets.token_hex(8)}".encode())
        return f"{body}.{self._sig('s', body)}"

    def check(self, token: str, users: Users, now: float | None = None) -> User | None:
        """The user the token belongs to, while it is valid and they still exist unchanged."""
        body, _, sig = token.partition(".")
        if not body or not hmac.compare_digest(sig, self._sig("s", body)):
            return None
        try:
            name, expires, fp, nonce = _unb64(body).decode().split("|")
            if float(expires) < (now or time.time()) or nonce in self._revoked:
                return None
        except ValueError:
            return None
        user = users.get(name)
        if user is None or not hmac.compare_digest(fp, self._print(user)):
            return None
        return user

    def revoke(self, token: str) -> None:
        body = token.partition(".")[0]
        try:
            _, expires, _, nonce = _unb64(body).decode().split("|")
        except ValueError:
            return
        now = time.time()
        self._revoked = {n: e for n, e in self._revoked.items() if e > now}
        self._revoked[nonce] = float(expires)

    def csrf(self, token: str) -> str:
        return self._sig("csrf", token)

    def csrf_ok(self, token: str, given: str) -> bool:
        return bool(given) and hmac.compare_digest(given, self.csrf(token))


class LoginPacer:
    """At most `per_min` failed logins a minute per client address and per user name."""

    def __init__(self, per_min: int) -> None:
        self.per_min = per_min
        self._fails: dict[str, deque[float]] = {}

    def wait_s(self, *keys: str, now: float | None = None) -> float:
        """Seconds until another attempt is allowed (0: go ahead)."""
        now = now or time.monotonic()
        worst = 0.0
        for k in keys:
            q = self._fails.get(k)
            while q and q[0] <= now - 60:
                q.popleft()
            if q is not None and not q:
                del self._fails[k]
            elif q is not None and len(q) >= self.per_min:
                worst = max(worst, q[0] + 60 - now)
        return worst

    def failed(self, *keys: str, now: float | None = None) -> None:
        now = now or time.monotonic()
        if len(self._fails) > 10000:  # a flood of names must not grow memory for ever
            self._fails.clear()
        for k in keys:
            self._fails.setdefault(k, deque()).append(now)


# -- `edgegw users`


def configure(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = sub.add_parser("add", help="add a user or set their password and role (password from a prompt or stdin)")
    a.add_argument("name")
    a.add_argument("--role", choices=ROLES, default="viewer", help="viewer: looks; operator: also acks and shelves")
    r = sub.add_parser("remove", help="remove a user (their sessions end)")
    r.add_argument("name")
    for q in (a, r, sub.add_parser("list", help="list users and roles")):
        q.add_argument("-c", "--config", help="YAML config file (its web.users_file, else <state_dir>/users)")
        q.add_argument("--users-file", help="the users file (instead of the config's)")


def users_path(args: argparse.Namespace) -> Path:
    if args.users_file:
        return Path(args.users_file)
    if not args.config:
        raise UsersError("give --users-file PATH or -c CONFIG")
    from edgegw.config import load_config
    from edgegw.preflight import state_dir_of

    cfg = load_config(args.config)
    return default_users_file(cfg.web.users_file if cfg.web else None, state_dir_of(cfg)[0])


def default_users_file(configured: str | None, state_dir: Path | None) -> Path:
    if configured:
        return Path(configured)
    if state_dir is None:
        raise UsersError("no users file: set web.users_file or gateway.state_dir")
    return state_dir / "users"


def _password() -> str:
    if sys.stdin.isatty():
        pw = getpass.getpass("password: ")
        if getpass.getpass("again: ") != pw:
            raise UsersError("the passwords differ")
        return pw
    return sys.stdin.readline().rstrip("\r\n")


def main(args: argparse.Namespace) -> int:
    from edgegw.config import EX_CONFIG, ConfigError

    try:
        path = users_path(args)
        users = read_users(path)
        if args.action == "list":
            for u in sorted(users.values(), key=lambda u: u.name):
                print(f"{u.name}\t{u.role}")
            return 0
        if not NAME.match(args.name):
            raise UsersError(f"{args.name!r}: a user name is 1-64 letters, digits or _ . @ -")
        if args.action == "remove":
            if users.pop(args.name, None) is None:
                raise UsersError(f"no user {args.name!r} in {path}")
            write_users(path, users)
            print(f"removed {args.name} from {path}")
            return 0
        pw = _password()
        if len(pw) < MIN_PASSWORD:
            raise UsersError(f"the password must have at least {MIN_PASSWORD} characters")
        users[args.name] = User(args.name, args.role, hash_password(pw))
        write_users(path, users)
        print(f"{args.name} ({args.role}) saved in {path}")
        return 0
    except ConfigError as e:
        print("\n".join(e.problems), file=sys.stderr)
        return EX_CONFIG
    except (UsersError, OSError) as e:
        print(f"edgegw users: {e}", file=sys.stderr)
        return 1
