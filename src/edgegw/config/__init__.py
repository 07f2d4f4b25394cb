"""The YAML schema as one strict pydantic tree (root: `GatewayConfig`) and `load_config()`.

Everything is validated before anything starts. A bad file raises `ConfigError` whose
problems each read `file:line: field.path: what is wrong`; the CLI prints them and exits 78.
Secrets never live in the file: `${ENV}` is substituted at load, and `*_file` fields are read
at load (systemd credentials: `${CREDENTIALS_DIRECTORY}/name`).

One module per section; this package re-exports the public names.
"""

from edgegw.config.base import EX_CONFIG, Base, ConfigError, SecretHolder
from edgegw.config.brokers import MqttBroker, TlsConfig
from edgegw.config.daemon import IngestConfig, LogConfig, MetricsConfig
from edgegw.config.load import load_config, resolve_path
from edgegw.config.outputs import AlertsConfig, RollupsConfig
from edgegw.config.profiles import AssetSpec, ModelAlarmSpec, Profile, SignalSpec
from edgegw.config.root import GatewayConfig, GatewayInfo
from edgegw.config.sources import (
    CoapSource,
    MqttSource,
    OpcuaNode,
    OpcuaSecurity,
    OpcuaSource,
    Source,
    TimestampSpec,
)
from edgegw.config.upstream import OutboxConfig, UpstreamConfig, UpstreamSend

__all__ = [
    "EX_CONFIG",
    "AlertsConfig",
    "AssetSpec",
    "Base",
    "CoapSource",
    "ConfigError",
    "GatewayConfig",
    "GatewayInfo",
    "IngestConfig",
    "LogConfig",
    "MetricsConfig",
    "ModelAlarmSpec",
    "MqttBroker",
    "MqttSource",
    "OpcuaNode",
    "OpcuaSecurity",
    "OpcuaSource",
    "OutboxConfig",
    "Profile",
    "RollupsConfig",
    "SecretHolder",
    "SignalSpec",
    "Source",
    "TimestampSpec",
    "TlsConfig",
    "UpstreamConfig",
    "UpstreamSend",
    "load_config",
    "resolve_path",
]
