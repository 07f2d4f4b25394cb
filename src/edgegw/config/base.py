"""What every config section shares: the strict base model, the error type, names safe in MQTT
topics, and files read at load (secrets) or later (certificates), checked to be small regular files."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, SecretStr, ValidationInfo, model_validator

EX_CONFIG = 78
MAX_SECRET_BYTES = 64 * 2**10
MAX_CERT_BYTES = 4 * 2**20


class ConfigError(Exception):
    """A config that must not start a gateway; `problems` are ready to print, one per line."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


class Base(BaseModel):
    """Unknown keys are errors; numbers must be finite (.inf and .nan break windows and limits)."""

    model_config = ConfigDict(extra="forbid", frozen=False, allow_inf_nan=False)


_UNSAFE = re.compile(r"[/+#\s\x00-\x1f\x7f]")


def _topic_safe(v: str) -> str:
    if not v:
        raise ValueError("must not be empty")
    if _UNSAFE.search(v):
        raise ValueError(f"{v!r}: no '/', '+', '#', spaces or control characters (it is one MQTT topic level)")
    return v


TopicName = Annotated[str, AfterValidator(_topic_safe)]
"""A name that becomes one topic level (gateway id, site, asset id): MQTT-safe, not empty."""


def _from_config_dir(v: str, info: ValidationInfo) -> str:
    """A relative path made absolute against the config file's folder (`load_config` passes it as
    the validation context); a path that exists only from the working directory is still taken,
    with a warning, so configs written for the old rule keep running."""
    ctx = info.context
    if not v or not isinstance(ctx, dict) or "config_dir" not in ctx or Path(v).is_absolute():
        return v
    beside = Path(os.path.normpath(Path(ctx["config_dir"]) / v))
    if not beside.exists() and Path(v).exists():
        here = Path(v).resolve()
        ctx.setdefault("cwd_paths", []).append((v, str(beside), str(here)))
        return str(here)
    return str(beside)


ConfigPath = Annotated[str, AfterValidator(_from_config_dir)]
"""A file or folder named in the config. Relative, it means relative to the config file's folder,
whatever the working directory: declare every path field with this type (`users_file: ConfigPath |
None`, `dict[str, ConfigPath]`) and it arrives absolute, so errors name the resolved path. Only
`load_config` resolves (a model built in code keeps what it is given). A field that also takes a
keyword (`model: learn`) declares it first: `Literal["learn"] | ConfigPath`."""


def regular_file(path: str, max_bytes: int) -> str | None:
    """What is wrong with `path` as a small readable regular file, or None when it is one."""
    try:
        st = os.stat(path)
    except OSError as e:
        return f"cannot read {path}: {e.strerror}"
    if not stat.S_ISREG(st.st_mode):
        return f"{path} is not a regular file"
    if st.st_size > max_bytes:
        return f"{path} is larger than {max_bytes // 1024} KiB"
    if not os.access(path, os.R_OK):
        return f"cannot read {path}: permission denied"
    return None


def _read_secret(path: str, field: str) -> SecretStr:
    problem = regular_file(path, MAX_SECRET_BYTES)
    if problem:
        raise ValueError(f"{field}: {problem}")
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_SECRET_BYTES + 1)
        return SecretStr(data[:MAX_SECRET_BYTES].decode("utf-8").strip())
    except OSError as e:
        raise ValueError(f"{field}: cannot read {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{field}: {path} is not UTF-8 text") from None


class SecretHolder(Base):
    """Mixin logic: `password_file` is read into `password` at load time."""

    @model_validator(mode="after")
    def _load_password_file(self) -> SecretHolder:
        pf = getattr(self, "password_file", None)
        if pf:
            if getattr(self, "password", None) is not None:
                raise ValueError("give password or password_file, not both")
            setattr(self, "password", _read_secret(pf, "password_file"))  # noqa: B010 - subclasses declare it
        return self
