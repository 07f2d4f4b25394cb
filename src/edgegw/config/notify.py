"""The `notify:` section: notification targets (email, webhook), the alarm journal and the
ack/shelve commands.

Written either as a list of targets (the short form) or as a mapping with `targets:` and the
optional `state_dir`, `journal` and `commands`. Secrets (SMTP password, webhook URL, header
values) come from `*_file` fields or `${ENV}`, read at load like the rest of the config. The
delivery libraries are only looked for here; they load when a target starts.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import ssl
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator

from edgegw.config.base import MAX_CERT_BYTES, Base, _read_secret, regular_file

SEVERITIES = ("info", "warning", "critical")
DEFAULT_STATE_DIR = "/var/lib/edgegw"


def loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _check_ca(path: str) -> None:
    """A CA file that TLS could not use is a config error now, not a failing target later."""
    problem = regular_file(path, MAX_CERT_BYTES)  # a device or FIFO would hang OpenSSL's read
    if problem:
        raise ValueError(f"ca_file: {problem}")
    try:
        ssl.create_default_context(cafile=path)
    except (OSError, ssl.SSLError) as e:
        raise ValueError(f"ca_file: cannot use {path}: {e}") from None


def _needs(module: str, what: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise ValueError(f"{what} needs {module}, which is not installed: pip install 'edgegw[notify]'")


class TargetBase(Base):
    """What every target has: its name, what it takes, how it paces and retries."""

    name: str = Field(
        "",
        pattern=r"^[A-Za-z0-9_.-]*$",
        description="Names the target in metrics, logs and its queue file; default <type>-<index>.",
    )
    min_severity: Literal["info", "warning", "critical"] = Field(
        "warning", description="Raises below this severity are not sent (a clear follows its raise)."
    )
    assets: list[str] = Field(default_factory=list, description="Only these assets (shell patterns); empty: all.")
    kinds: list[str] = Field(default_factory=list, description="Only these alarm kinds; empty: all.")
    on_clear: bool = Field(True, description="Also send when an alarm clears.")
    digest_s: float = Field(
        5.0,
        ge=0,
        le=3600,
        description="The first alarm after a quiet spell goes at once; what follows within this window goes "
        "as one digest. 0: one message per alarm.",
    )
    max_per_hour: int | None = Field(
        60, ge=1, description="Rate cap: more messages than this per hour are held and sent as one digest later."
    )
    max_batch: int = Field(100, ge=1, le=1000, description="Most alarms in one digest.")
    timeout_s: float = Field(20.0, gt=0, description="One delivery attempt gives up after this long.")
    retry_max_s: float = Field(30.0, ge=1, description="Cap of the retry backoff while the peer is unreachable.")
    alarm_after_s: float = Field(
        120.0, gt=0, description="Failing this long raises the gateway alarm notify_failed (asset = gateway id)."
    )
    max_mb: float = Field(16, gt=0, description="Cap of the target's queue on disk; beyond it the oldest go.")

    @property
    def where(self) -> str:
        """Where notifications go, safe to log."""
        raise NotImplementedError


class SmtpServer(Base):
    host: str = Field(description="SMTP server.")
    port: int | None = Field(None, ge=1, le=65535, description="Default 465 with ssl, 587 with starttls, else 25.")
    starttls: bool | None = Field(None, description="true: require STARTTLS; false: never; unset: when the server offers it.")
    ssl: bool = Field(False, description="Implicit TLS from the first byte (SMTPS, port 465).")
    ca_file: str | None = Field(None, description="CA bundle to verify the server; omitted: the system store.")
    username: str | None = None
    password: SecretStr | None = Field(None, description="Use ${ENV} or password_file, not plain text.")
    password_file: str | None = Field(None, description="File holding the password (systemd credential).")

    @model_validator(mode="after")
    def _consistent(self) -> SmtpServer:
        if self.ssl and self.starttls:
            raise ValueError("give ssl or starttls, not both")
        if self.password_file:
            if self.password is not None:
                raise ValueError("give password or password_file, not both")
            self.password = _read_secret(self.password_file, "password_file")
        if self.password is not None and not self.username:
            raise ValueError("password given without username")
        if self.username and not (self.ssl or self.starttls) and not loopback(self.host):
            raise ValueError("credentials need an encrypted connection: set starttls: true or ssl: true")
        if self.ca_file:
            _check_ca(self.ca_file)
        return self

    @property
    def port_or_default(self) -> int:
        return self.port or (465 if self.ssl else 587 if self.starttls else 25)


class EmailTarget(TargetBase):
    type: Literal["email"]
    smtp: SmtpServer
    from_: str = Field(alias="from", pattern=r"^[^@\s]+@[^@\s]+$", description="Sender address.")
    to: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]] = Field(min_length=1, description="Recipients.")
    subject_prefix: str = Field("[edgegw]", description="Starts every subject line.")

    @model_validator(mode="after")
    def _installed(self) -> EmailTarget:
        _needs("aiosmtplib", "an email target")
        return self

    @property
    def where(self) -> str:
        return f"smtp://{self.smtp.host}:{self.smtp.port_or_default}"


class WebhookTarget(TargetBase):
    type: Literal["webhook"]
    url: SecretStr | None = Field(None, description="http(s):// URL to POST to; a secret for Slack or Teams.")
    url_file: str | None = Field(None, description="File holding the URL.")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra headers; values may use ${ENV}.")
    header_files: dict[str, str] = Field(
        default_factory=dict, description="Header name -> file holding its value (e.g. Authorization)."
    )
    ca_file: str | None = Field(None, description="CA bundle to verify an https server; omitted: the system store.")
    digest_s: float = Field(
        0.0,
        ge=0,
        le=3600,
        description="0 (default): one POST per alarm whose body is the alert JSON as published on MQTT; "
        "above 0, a digest is a JSON array of alerts.",
    )

    @model_validator(mode="after")
    def _url(self) -> WebhookTarget:
        if self.url_file:
            if self.url is not None:
                raise ValueError("give url or url_file, not both")
            self.url = _read_secret(self.url_file, "url_file")
        if self.url is None:
            raise ValueError("url or url_file is required")
        if not self.url.get_secret_value().startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        for name, path in self.header_files.items():
            self.headers[name] = _read_secret(path, f"header_files.{name}").get_secret_value()
        if self.ca_file:
            _check_ca(self.ca_file)
        _needs("httpx", "a webhook target")
        return self

    @property
    def where(self) -> str:
        """Scheme, host and port: the path and query may hold a token."""
        assert self.url is not None
        u = urlsplit(self.url.get_secret_value())
        return f"{u.scheme}://{u.hostname}{f':{u.port}' if u.port else ''}"


Target = Annotated[EmailTarget | WebhookTarget, Field(discriminator="type")]


class JournalConfig(Base):
    """Every transition, ack and shelve, kept on the gateway; `edgegw alarms` prints it."""

    enabled: bool = True
    path: str | None = Field(None, description="SQLite file; default <state_dir>/alarms.db.")
    retention_days: float = Field(90, gt=0, description="Entries older than this are deleted.")
    max_mb: float = Field(16, gt=0, description="Beyond this size the oldest entries go first.")
    flush_s: float = Field(10.0, ge=0.1, le=600, description="Entries are written in one batch this often (SD-card friendly).")


class CommandsConfig(Base):
    """Alarm commands (ack, shelve, unshelve, clear) over MQTT on the local broker; the listener runs
    without a notify section too, and `enabled: false` here turns it off."""

    enabled: bool = True
    topic: str = Field(
        "cmd/{gateway}/alarms",
        description="Commands arrive on <topic>/ack, /shelve, /unshelve, /clear; replies go to <topic>/response.",
    )
    max_shelve_s: float = Field(7 * 86400.0, gt=0, description="Longest shelf a command may ask for.")

    @model_validator(mode="after")
    def _topic(self) -> CommandsConfig:
        try:
            self.topic.format(gateway="g", site="s")
        except (KeyError, IndexError, ValueError):
            raise ValueError(f"topic {self.topic!r}: only {{gateway}} and {{site}} placeholders") from None
        if any(p in ("+", "#", "") for p in self.topic.split("/")):
            raise ValueError(f"topic {self.topic!r}: no wildcards or empty levels")
        return self


class NotifyConfig(Base):
    """The whole section. A bare list is the targets with every other setting at its default."""

    state_dir: str | None = Field(
        None,
        description="Where the target queues and the journal live; default: the gateway's state directory "
        "(gateway.state_dir, $STATE_DIRECTORY, /var/lib/edgegw).",
    )
    targets: list[Target] = Field(default_factory=list)
    journal: JournalConfig = Field(default_factory=JournalConfig)
    commands: CommandsConfig = Field(default_factory=CommandsConfig)

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, data: Any) -> Any:
        return {"targets": data} if isinstance(data, list) else data

    @model_validator(mode="after")
    def _names(self) -> NotifyConfig:
        seen: set[str] = set()
        for i, t in enumerate(self.targets):
            t.name = t.name or f"{t.type}-{i}"
            if t.name in seen:
                raise ValueError(f"targets.{i}.name: duplicate target name {t.name!r}")
            seen.add(t.name)
        return self

    def folder(self, gateway_state_dir: Path | None) -> Path:
        """Where queues and journal live: `state_dir`, else the gateway's, else /var/lib/edgegw."""
        return Path(self.state_dir) if self.state_dir else gateway_state_dir or Path(DEFAULT_STATE_DIR)

    def journal_path(self, folder: Path) -> Path:
        return Path(self.journal.path) if self.journal.path else folder / "alarms.db"


def queue_file(folder: Path, target: TargetBase) -> Path:
    return folder / f"notify-{target.name}.db"
