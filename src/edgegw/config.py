"""The YAML schema as one strict pydantic tree (root: `GatewayConfig`) and `load_config()`.

Everything is validated before anything starts. A bad file raises `ConfigError` whose
problems each read `file:line: field.path: what is wrong`; the CLI prints them and exits 78.
Secrets never live in the file: `${ENV}` is substituted at load, and `*_file` fields are read
at load (systemd credentials: `${CREDENTIALS_DIRECTORY}/name`).
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

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


# ---------------------------------------------------------------- gateway, brokers


class GatewayInfo(Base):
    id: str = Field(default_factory=socket.gethostname, description="Gateway id, used in topics and alerts.")
    site: str = Field("default", description="Site name, used in topics and alerts.")


class TlsConfig(Base):
    ca_file: str | None = Field(None, description="CA bundle to verify the broker; omitted: the system store.")
    cert_file: str | None = Field(None, description="Client certificate (mTLS).")
    key_file: str | None = Field(None, description="Client private key (mTLS).")
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
    password_file: str | None = Field(None, description="File holding the password (systemd credential).")
    client_id: str | None = Field(None, description="Client id prefix; default edgegw-<gateway id>.")
    keepalive_s: int = Field(30, ge=5, le=3600)
    tls: TlsConfig | None = None


# ---------------------------------------------------------------- sources


class TimestampSpec(Base):
    field: str | None = Field(None, description="Payload field holding the event time; none: receive time.")
    unit: Literal["s", "ms", "iso"] = Field("s", description="Epoch seconds, epoch milliseconds or ISO 8601.")


class MqttSource(Base):
    type: Literal["mqtt"]
    topic: str = Field(description="Topic template with {asset} and optionally {signal} placeholders.")
    format: Literal["json", "number", "senml"] = "json"
    timestamp: TimestampSpec = Field(default_factory=TimestampSpec)
    fields: dict[str, str] = Field(
        default_factory=dict,
        description="JSON field (dotted path allowed) -> signal name. Empty: every numeric top-level field.",
    )
    asset: str | None = Field(None, description="Fixed asset id when the topic has no {asset}.")
    signal: str | None = Field(None, description="Fixed signal for number payloads when the topic has no {signal}.")
    qos: Literal[0, 1, 2] = 1

    @model_validator(mode="after")
    def _placeholders(self) -> MqttSource:
        if "{asset}" not in self.topic and not self.asset:
            raise ValueError("topic has no {asset} placeholder: set asset")
        if self.format == "number" and "{signal}" not in self.topic and not self.signal:
            raise ValueError("number payloads need a {signal} placeholder in topic or a signal")
        for part in self.topic.split("/"):
            if ("{" in part and part not in ("{asset}", "{signal}")) or part in ("+", "#"):
                raise ValueError(f"topic level {part!r}: use {{asset}}/{{signal}} placeholders, not wildcards")
        return self


class OpcuaSecurity(Base):
    """How the secure channel is protected and whom the client trusts."""

    policy: Literal["None", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"] = Field(
        "None", description="Security policy of the endpoint to use."
    )
    mode: Literal["None", "Sign", "SignAndEncrypt"] = Field(
        "None", description="Message security mode; None only with policy None."
    )
    certificate: str | None = Field(None, description="Client application certificate (DER or PEM).")
    private_key: str | None = Field(None, description="Client private key (PEM or DER, unencrypted).")
    server_certificate: str | None = Field(
        None, description="The server certificate to trust (pinned: any other certificate is refused)."
    )
    trust_any_server: bool = Field(
        False, description="Without server_certificate: accept whatever certificate the endpoint offers."
    )
    application_uri: str | None = Field(
        None, description="Client application URI; default: the URI in the certificate's subjectAltName."
    )

    @model_validator(mode="after")
    def _consistent(self) -> OpcuaSecurity:
        if (self.policy == "None") != (self.mode == "None"):
            raise ValueError("policy None goes with mode None; a signing policy needs mode Sign or SignAndEncrypt")
        if self.policy != "None":
            if not (self.certificate and self.private_key):
                raise ValueError(f"policy {self.policy} needs certificate and private_key")
            if not self.server_certificate and not self.trust_any_server:
                raise ValueError("set server_certificate (the server to trust), or trust_any_server: true")
        for key in ("certificate", "private_key", "server_certificate"):
            path = getattr(self, key)
            if path and not os.access(path, os.R_OK):
                raise ValueError(f"{key}: cannot read {path}")
        return self


_NODE_ID = re.compile(r"^(ns=\d+;|nsu=[^;]+;)?(i=\d+|s=.+|g=[0-9a-fA-F-]{36}|b=.+)$")


class OpcuaNode(Base):
    node: str | None = Field(None, description="NodeId string, e.g. ns=2;s=pump-3.vibration.")
    browse_path: str | None = Field(
        None, description="Browse path from Objects, '/'-separated ns:Name steps, e.g. 2:Pumps/2:pump-3/2:vibration."
    )
    asset: str = Field(description="Asset the node's values belong to.")
    signal: str = Field(description="Signal name within the asset's profile.")

    @model_validator(mode="after")
    def _one_address(self) -> OpcuaNode:
        if bool(self.node) == bool(self.browse_path):
            raise ValueError("give exactly one of node or browse_path")
        if self.node and not _NODE_ID.match(self.node):
            raise ValueError(f"node {self.node!r}: expected a NodeId like ns=2;s=pump-3.vibration or ns=2;i=1001")
        if self.browse_path:
            for step in self.browse_path.strip("/").split("/"):
                ns, sep, name = step.partition(":")
                if not (sep and ns.isdigit() and name):
                    raise ValueError(f"browse_path step {step!r}: expected ns:Name, e.g. 2:pump-3")
        return self


class OpcuaSource(SecretHolder):
    type: Literal["opcua"]
    endpoint: str = Field(pattern=r"^opc\.tcp://", description="opc.tcp:// endpoint URL.")
    security: OpcuaSecurity = Field(default_factory=OpcuaSecurity)
    username: str | None = Field(None, description="User name; none: anonymous.")
    password: SecretStr | None = Field(None, description="Password; use ${ENV} or password_file, not plain text.")
    password_file: str | None = Field(None, description="File holding the password (systemd credential).")
    sampling_ms: float = Field(100, ge=0, description="Requested sampling interval per monitored item.")
    publishing_ms: float = Field(500, ge=10, description="Requested publishing interval of the subscription.")
    queue_size: int = Field(10, ge=1, description="Server-side queue per monitored item (values between publishes).")
    deadband: float | None = Field(None, ge=0, description="Data-change deadband value; none: every change.")
    deadband_type: Literal["absolute", "percent"] = Field(
        "absolute", description="percent needs the server to know the node's EURange."
    )
    timestamp: Literal["source", "server", "receive"] = Field(
        "source", description="Which time a reading gets; falls back source -> server -> receive."
    )
    timeout_s: float = Field(5.0, gt=0, description="Per-request timeout.")
    keepalive_s: float = Field(
        5.0, gt=0, description="Subscription keep-alive; silence for twice this long means the connection is dead."
    )
    watchdog_s: float = Field(2.0, gt=0, description="How often the client probes the server's state.")
    reconnect_max_s: float = Field(30.0, gt=0, description="Cap of the reconnect backoff (with jitter).")
    nodes: list[OpcuaNode] = Field(min_length=1)

    @model_validator(mode="after")
    def _auth(self) -> OpcuaSource:
        if self.password is not None and not self.username:
            raise ValueError("password given without username")
        return self


class CoapSource(Base):
    type: Literal["coap"]
    mode: Literal["observe", "poll", "server"] = Field(
        "observe", description="observe: RFC 7641 observation (polls while it fails); poll: GET every poll_s; "
        "server: devices POST/PUT readings to this gateway."
    )
    uri: str | None = Field(None, description="Resource URI for observe/poll modes (coap:// over UDP).")
    asset: str | None = Field(None, description="Asset of the resource (observe/poll); default: last path segment.")
    bind: str = Field("127.0.0.1", description="Server mode: address to listen on.")
    port: int = Field(5683, ge=1, le=65535, description="Server mode: UDP port.")
    path: str = Field(
        "pumps/{asset}", description="Server mode: resource path template with {asset} and optionally {signal}."
    )
    format: Literal["json", "senml", "number"] = Field(
        "senml", description="Payload format assumed when a message has no Content-Format option."
    )
    fields: dict[str, str] = Field(
        default_factory=dict, description="JSON field -> signal (json); SenML name -> signal (senml)."
    )
    timestamp: TimestampSpec = Field(default_factory=TimestampSpec, description="Event time in JSON payloads.")
    signal: str | None = Field(None, description="Signal for plain-number payloads without {signal} in path.")
    poll_s: float = Field(5.0, gt=0, description="Polling interval, and observe fallback.")
    observe_timeout_s: float | None = Field(
        None, gt=0, description="Re-register when no notification for this long; default: Max-Age + 5 s."
    )
    reobserve_s: float = Field(30.0, gt=0, description="While polling as fallback, try observing again this often.")
    request_timeout_s: float = Field(10.0, gt=0, description="A GET or observe registration unanswered this long fails.")
    max_payload_bytes: int = Field(16384, ge=64, description="Larger payloads: 4.13 in server mode, dropped otherwise.")

    @model_validator(mode="after")
    def _mode(self) -> CoapSource:
        if self.mode in ("observe", "poll"):
            if not self.uri:
                raise ValueError(f"mode {self.mode} needs uri")
            if not self.uri.startswith("coap://"):
                raise ValueError("uri must start with coap:// (UDP)")
            if self.format == "number" and not self.signal:
                raise ValueError("number payloads need signal")
        else:
            parts = self.path.strip("/").split("/")
            if "{asset}" not in parts:
                raise ValueError("path needs an {asset} segment, e.g. pumps/{asset}")
            for part in parts:
                if not part or ("{" in part and part not in ("{asset}", "{signal}")):
                    raise ValueError(f"path segment {part!r}: use literal names, {{asset}} or {{signal}}")
        return self


Source = Annotated[MqttSource | OpcuaSource | CoapSource, Field(discriminator="type")]


# ---------------------------------------------------------------- profiles and assets


class SignalSpec(Base):
    unit: str | None = None
    hi: float | None = None
    hihi: float | None = None
    lo: float | None = None
    lolo: float | None = None
    deadband: float = Field(0.0, ge=0, description="Hysteresis: clear only below hi - deadband (above lo + deadband).")
    on_delay_s: float = Field(0.0, ge=0, description="Condition must hold this long (event time) to raise.")
    off_delay_s: float = Field(0.0, ge=0, description="Condition must be gone this long (event time) to clear.")
    range: tuple[float, float] | None = Field(None, description="Physical range; outside it a reading is bad.")

    @model_validator(mode="after")
    def _order(self) -> SignalSpec:
        if self.hi is not None and self.hihi is not None and self.hihi < self.hi:
            raise ValueError("hihi must be >= hi")
        if self.lo is not None and self.lolo is not None and self.lolo > self.lo:
            raise ValueError("lolo must be <= lo")
        if self.range is not None and self.range[0] >= self.range[1]:
            raise ValueError("range must be [min, max] with min < max")
        return self


class ModelAlarmSpec(Base):
    on_delay_s: float | None = Field(
        None, ge=0, description="Model verdict must hold this long (event time) to raise (default: the model's delay)."
    )
    off_delay_s: float | None = Field(None, ge=0, description="... and be gone this long to clear (default: the model's).")
    failure_threshold: float = Field(0.5, gt=0, lt=1, description="failure_risk raises above this probability.")


class Profile(Base):
    window_s: float = Field(
        30.0, gt=0, description="Feature window length; a whole multiple of hop_s (the window is window_s/hop_s hops)."
    )
    hop_s: float = Field(
        1.0, gt=0, description="How often features and models run per asset; windows end on multiples of it."
    )
    stale_after_s: float = Field(10.0, gt=0, description="A signal silent this long (wall clock) raises stale.")
    max_rate_hz: float = Field(
        10.0, gt=0, le=10000,
        description="Expected highest sample rate per signal. Accepted for compatibility; it no longer limits "
        "the window, which holds every sample of the last window_s.",
    )
    model: str | None = Field(None, description="Model directory (anomaly + failure ONNX and metadata).")
    model_alarms: ModelAlarmSpec = Field(default_factory=ModelAlarmSpec)
    signals: dict[str, SignalSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _hop(self) -> Profile:
        if self.hop_s > self.window_s:
            raise ValueError("hop_s must be <= window_s")
        hops = self.window_s / self.hop_s
        if abs(hops - round(hops)) > 1e-9 * hops:
            raise ValueError(
                f"window_s ({self.window_s:g}) must be a whole multiple of hop_s ({self.hop_s:g}): "
                "a window is made of whole hops"
            )
        return self


class AssetSpec(Base):
    id: str = Field(pattern=r"^[^/+#\s]+$", description="Asset id as it appears in topics.")
    profile: str


# ---------------------------------------------------------------- outputs


class AlertsConfig(Base):
    topic: str = Field("alerts/{site}/{asset}/{kind}/{source}", description="Alert topic template.")
    qos: Literal[0, 1, 2] = 1
    retain_active: bool = Field(True, description="Keep active alarms retained; a clear removes them.")


class RollupsConfig(Base):
    interval_s: float = Field(60.0, ge=1, description="Aggregation interval, aligned to wall-clock boundaries.")
    topic: str = "rollups/{site}/{asset}"
    enabled: bool = True


class OutboxConfig(Base):
    path: str = Field("/var/lib/edgegw/outbox.db", description="SQLite file of messages waiting for upstream.")
    max_mb: float = Field(
        512, gt=0, description="Cap on stored messages; when full the oldest readings, then rollups go first."
    )
    commit_ms: float = Field(
        200, ge=0, description="fsync period: a power cut loses at most this much unacknowledged traffic."
    )
    replay_rate: float = Field(500, gt=0, description="Backlog messages per second after a reconnect.")
    inflight: int = Field(
        32, ge=1, le=65535, description="QoS 1 publishes awaiting PUBACK at once (throughput over a slow link)."
    )


class UpstreamSend(Base):
    alerts: bool = Field(True, description="Send alerts upstream.")
    rollups: bool = Field(True, description="Send rollups upstream.")
    readings: list[str] = Field(
        default_factory=list, description="Signals whose raw readings go upstream, decimated (all assets)."
    )
    readings_every_s: float = Field(10.0, gt=0, description="Decimation: the latest reading per signal per period.")


class UpstreamConfig(SecretHolder):
    host: str = Field(description="Upstream broker host.")
    port: int = Field(8883, ge=1, le=65535, description="Upstream broker port.")
    protocol: Literal["3.1.1", "5"] = Field("5", description="MQTT protocol version.")
    tls: TlsConfig | None = Field(
        None, description="TLS settings; TLS is on unless tls_enabled is false (verification on by default)."
    )
    tls_enabled: bool | None = Field(
        None, description="Default: on when a tls section is given or the port is 8883, off otherwise."
    )
    username: str | None = Field(None, description="User name; none: anonymous.")
    password: SecretStr | None = Field(None, description="Password; use ${ENV} or password_file, not plain text.")
    password_file: str | None = Field(None, description="File holding the password (systemd credential).")
    client_id: str | None = Field(None, description="Client id; default edgegw-<gateway id>-up.")
    keepalive_s: int = Field(30, ge=5, le=3600, description="MQTT keep-alive.")
    topic_prefix: str = Field("edge/{gateway}", description="Prepended to the local topics; {gateway} and {site}.")
    outbox: OutboxConfig = Field(default_factory=OutboxConfig)
    send: UpstreamSend = Field(default_factory=UpstreamSend)

    @property
    def use_tls(self) -> bool:
        """TLS unless switched off: explicit setting, else a tls section or port 8883."""
        if self.tls_enabled is not None:
            return self.tls_enabled
        return self.tls is not None or self.port == 8883

    @model_validator(mode="after")
    def _upstream(self) -> UpstreamConfig:
        if self.password is not None and not self.username:
            raise ValueError("password given without username")
        try:
            self.topic_prefix.format(gateway="g", site="s")
        except (KeyError, IndexError, ValueError):
            raise ValueError(f"topic_prefix {self.topic_prefix!r}: only {{gateway}} and {{site}} placeholders") from None
        for part in self.topic_prefix.split("/"):
            if part in ("+", "#") or not part:
                raise ValueError(f"topic_prefix {self.topic_prefix!r}: no wildcards or empty levels")
        return self


class IngestConfig(Base):
    max_payload_bytes: int = Field(65536, ge=64, description="Larger messages are dropped.")
    max_future_s: float = Field(300.0, ge=0, description="Event times further ahead of the clock are dropped.")
    max_age_s: float = Field(
        2 * 365 * 86400.0, gt=0, description="Event times older than this are dropped (history replays allowed)."
    )


class MetricsConfig(Base):
    """Self-metrics on status/{gateway}/metrics, and an optional Prometheus endpoint."""

    interval_s: float = Field(10.0, ge=1, description="Self-metrics period on status/{gateway}/metrics.")
    prometheus_port: int | None = Field(
        None, ge=0, le=65535,
        description="Serve Prometheus /metrics on this port (needs edgegw[metrics]); off when unset, 0: any free port.",
    )
    prometheus_bind: str = Field(
        "127.0.0.1", description="Address of the Prometheus endpoint; localhost unless you mean to expose it."
    )

    @model_validator(mode="after")
    def _prometheus_installed(self) -> MetricsConfig:
        import importlib.util

        if self.prometheus_port is not None and importlib.util.find_spec("prometheus_client") is None:
            raise ValueError("prometheus_port is set but prometheus-client is not installed: pip install 'edgegw[metrics]'")
        return self


class LogConfig(Base):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class GatewayConfig(Base):
    """The root of the YAML file."""

    gateway: GatewayInfo = Field(default_factory=GatewayInfo)
    mqtt: MqttBroker = Field(default_factory=MqttBroker)
    sources: list[Source] = Field(default_factory=list)
    profiles: dict[str, Profile] = Field(min_length=1)
    assets: list[AssetSpec] = Field(min_length=1)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    rollups: RollupsConfig = Field(default_factory=RollupsConfig)
    upstream: UpstreamConfig | None = None
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    log: LogConfig = Field(default_factory=LogConfig)

    @model_validator(mode="after")
    def _assets(self) -> GatewayConfig:
        seen: set[str] = set()
        for i, a in enumerate(self.assets):
            if a.profile not in self.profiles:
                raise ValueError(f"assets.{i}.profile: unknown profile {a.profile!r} (have {sorted(self.profiles)})")
            if a.id in seen:
                raise ValueError(f"assets.{i}.id: duplicate asset id {a.id!r}")
            seen.add(a.id)
        return self


# ---------------------------------------------------------------- loading

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _substitute(node: Any, path: tuple[Any, ...], problems: list[tuple[tuple[Any, ...], str]]) -> Any:
    """Replace ${VAR} and ${VAR:-default} in every string, in place; unknown variables are problems."""
    if isinstance(node, dict):
        for k in list(node):
            node[k] = _substitute(node[k], (*path, k), problems)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            node[i] = _substitute(v, (*path, i), problems)
    elif isinstance(node, str) and "${" in node:

        def repl(m: re.Match[str]) -> str:
            val = os.environ.get(m.group(1), m.group(2))
            if val is None:
                problems.append((path, f"environment variable ${{{m.group(1)}}} is not set"))
                return ""
            return val

        return _ENV.sub(repl, node)
    return node


def _line_of(root: Any, loc: Sequence[Any]) -> int | None:
    """1-based line of the deepest YAML node on `loc` that exists (discriminator tags are skipped)."""
    node, line = root, None
    for key in loc:
        if isinstance(node, CommentedMap) and key in node:
            with contextlib.suppress(KeyError, TypeError):  # keys added by --set have no position
                line = node.lc.key(key)[0] + 1
            node = node[key]
        elif isinstance(node, CommentedSeq) and isinstance(key, int) and 0 <= key < len(node):
            with contextlib.suppress(KeyError, TypeError):
                line = node.lc.item(key)[0] + 1
            node = node[key]
        elif isinstance(node, CommentedMap | CommentedSeq):
            continue  # e.g. the union tag 'mqtt' in ('sources', 0, 'mqtt', 'topic')
        else:
            break
    return line


def _apply_override(root: dict[Any, Any], expr: str) -> str | None:
    """Apply `a.b.0.c=value` (value parsed as YAML); return a problem or None."""
    key, sep, raw = expr.partition("=")
    if not sep or not key:
        return f"--set {expr!r}: expected KEY=VALUE"
    try:
        value = YAML(typ="safe").load(raw) if raw.strip() else ""
    except YAMLError:
        value = raw
    parts = key.split(".")
    node: Any = root
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                return f"--set {key}: no list item {part!r}"
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                if node.get(part) is None:
                    node[part] = CommentedMap()
                node = node[part]
        else:
            return f"--set {key}: {'.'.join(parts[:i])} is not a mapping"
    return None


def load_config(path: str | os.PathLike[str], overrides: Sequence[str] = ()) -> GatewayConfig:
    """Read, substitute, override and validate a config file; raise ConfigError listing every problem."""
    fname = str(path)
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise ConfigError([f"{fname}: cannot read: {e.strerror}"]) from None
    try:
        root = YAML(typ="rt").load(text)
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{fname}:{mark.line + 1}" if mark else fname
        raise ConfigError([f"{where}: YAML syntax: {e.problem or e.context}"]) from None
    except YAMLError as e:
        raise ConfigError([f"{fname}: YAML syntax: {e}"]) from None
    if root is None:
        root = CommentedMap()
    if not isinstance(root, dict):
        raise ConfigError([f"{fname}:1: the top level must be a mapping"])
    problems: list[str] = []
    for expr in overrides:
        p = _apply_override(root, expr)
        if p:
            problems.append(p)
    env_problems: list[tuple[tuple[Any, ...], str]] = []
    _substitute(root, (), env_problems)
    for loc, msg in env_problems:
        line = _line_of(root, loc)
        problems.append(f"{fname}{f':{line}' if line else ''}: {'.'.join(map(str, loc))}: {msg}")
    if problems:
        raise ConfigError(problems)
    try:
        return GatewayConfig.model_validate(root)
    except ValidationError as e:
        for err in e.errors():
            loc = tuple(err["loc"])
            line = _line_of(root, loc)
            msg = err["msg"].removeprefix("Value error, ")
            shown = [p for i, p in enumerate(loc) if not _is_tag(loc, i)]
            dotted = ".".join(str(p) for p in shown) or "(top level)"
            if err["type"] == "extra_forbidden":
                msg = f"unknown key {loc[-1]!r}"
            problems.append(f"{fname}{f':{line}' if line else ''}: {dotted}: {msg}")
        raise ConfigError(problems) from None


def _is_tag(loc: tuple[Any, ...], i: int) -> bool:
    """The discriminated union adds the source type to error paths: sources.0.mqtt.topic."""
    return i >= 2 and loc[i - 2] == "sources" and isinstance(loc[i - 1], int) and loc[i] in ("mqtt", "opcua", "coap")


def resolve_path(p: str, config_file: str | os.PathLike[str] | None = None) -> Path:
    """A relative path from the config: the working directory first, then the config file's folder."""
    path = Path(p)
    if path.is_absolute() or config_file is None or path.exists():
        return path
    alt = Path(config_file).resolve().parent / path
    return alt if alt.exists() else path
