"""What every config section shares: the strict base model, the error type, secrets from files."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, SecretStr, model_validator

EX_CONFIG = 78


class ConfigError(Exception):
    """A config that must not start a gateway; `problems` are ready to print, one per line."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


class Base(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


def _read_secret(path: str, field: str) -> SecretStr:
    try:
        return SecretStr(Path(path).read_text().strip())
    except OSError as e:
        raise ValueError(f"{field}: cannot read {path}: {e.strerror}") from None


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
