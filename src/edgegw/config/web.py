"""The `web:` section: the operator's page served by the daemon (`pip install 'edgegw[web]'`).

Off unless the section is there. It listens on loopback unless told otherwise; any other address
should come with `tls` (a warning is logged without it). There is no default user and no
anonymous access unless `anonymous: viewer` is set on purpose.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from edgegw.config.base import MAX_CERT_BYTES, Base, ConfigPath, regular_file


def split_listen(listen: str) -> tuple[str, int]:
    """`host:port` (IPv6 as `[::1]:8080`) -> (host, port)."""
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"{listen!r}: expected HOST:PORT, for example 127.0.0.1:8080")
    n = int(port)
    if not 0 < n < 65536:
        raise ValueError(f"{listen!r}: port {n} is outside 1..65535")
    return host.strip("[]"), n


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class WebTls(Base):
    cert_file: ConfigPath = Field(description="PEM certificate (chain) the page is served with.")
    key_file: ConfigPath = Field(description="PEM private key of cert_file.")

    @model_validator(mode="after")
    def _files(self) -> WebTls:
        for key in ("cert_file", "key_file"):
            problem = regular_file(getattr(self, key), MAX_CERT_BYTES)
            if problem:
                raise ValueError(f"{key}: {problem}")
        return self


class WebConfig(Base):
    listen: str = Field("127.0.0.1:8080", description="HOST:PORT the page listens on; loopback unless set.")
    users_file: ConfigPath | None = Field(
        None, description="Users and password hashes (`edgegw users add`); default <state_dir>/users."
    )
    tls: WebTls | None = Field(None, description="Serve HTTPS with these files (recommended off loopback).")
    anonymous: Literal["off", "viewer"] = Field(
        "off", description="`viewer`: anyone who reaches the page may look (never act) without logging in."
    )
    session_hours: float = Field(12.0, gt=0, le=24 * 30, description="A login lasts this long.")
    login_attempts_per_min: int = Field(
        10, ge=1, le=1000, description="Failed logins per minute per client address (and per user name) before a wait."
    )
    sse_queue: int = Field(256, ge=16, le=10000, description="Updates queued per browser; beyond it the browser resyncs.")

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        split_listen(v)
        return v

    @model_validator(mode="after")
    def _installed(self) -> WebConfig:
        if importlib.util.find_spec("aiohttp") is None:
            raise ValueError("the page needs aiohttp, which is not installed: pip install 'edgegw[web]'")
        return self

    @property
    def host(self) -> str:
        return split_listen(self.listen)[0]

    @property
    def port(self) -> int:
        return split_listen(self.listen)[1]


_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|h|d)\s*$")


def span_s(text: str) -> float:
    """`30m`, `24h`, `7d` -> seconds."""
    m = _SPAN.match(text)
    if not m:
        raise ValueError(f"{text!r}: expected a span such as 24h or 7d")
    return float(m[1]) * {"m": 60, "h": 3600, "d": 86400}[m[2]]


class ReportSchedule(Base):
    """`report:` a report of the last `every` mailed through notify email targets, every `every`
    (at UTC multiples of it: 24h at midnight UTC), kept on disk until each target took it."""

    every: str = Field("7d", description="How often, and the period each report covers: 24h, 7d, ...")
    to: list[str] = Field(min_length=1, description="Names of notify email targets that get the report.")
    assets: list[str] = Field(default_factory=list, description="Only these assets; empty: all.")
    keep: int = Field(8, ge=1, le=1000, description="Reports kept in <state_dir>/reports.")

    @field_validator("every")
    @classmethod
    def _every(cls, v: str) -> str:
        if span_s(v) < 3600:
            raise ValueError(f"{v!r}: at least 1h")
        return v

    @property
    def every_s(self) -> float:
        return span_s(self.every)
