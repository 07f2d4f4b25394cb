"""Broker connection settings: the local broker (`mqtt:`) and TLS, shared with `upstream:`."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator

from edgegw.config.base import Base, ConfigPath, SecretHolder


class TlsConfig(Base):
    ca_file: ConfigPath | None = Field(None, description="CA bundle to verify the broker; omitted: the system store.")
    cert_file: ConfigPath | None = Field(None, description="Client certificate (mTLS).")
    key_file: ConfigPath | None = Field(None, description="Client private key (mTLS).")
    insecure: bool = Field(False, description="Skip server certificate and hostname checks (never in production).")

    @model_validator(mode="after")
    def _pair(self) -> TlsConfig:
        if bool(self.cert_file) != bool(self.key_file):
            raise ValueError("cert_file and key_file go together")
        return self


class MqttBroker(SecretHolder):
    host: str = Field("127.0.0.1", description="Local broker host.")
    port: int = Field(1883, ge=1, le=65535, description="Local broker port.")
    username: str | None = None
    password: SecretStr | None = None
    password_file: ConfigPath | None = Field(None, description="File holding the password (systemd credential).")
    client_id: str | None = Field(None, description="Client id prefix; default edgegw-<gateway id>.")
    keepalive_s: int = Field(30, ge=5, le=3600)
    tls: TlsConfig | None = None
