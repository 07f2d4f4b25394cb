"""The `sources:` list: one model per protocol, told apart by `type`."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, model_validator

from edgegw.config.base import MAX_CERT_BYTES, Base, ConfigPath, SecretHolder, regular_file


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
    certificate: ConfigPath | None = Field(None, description="Client application certificate (DER or PEM).")
    private_key: ConfigPath | None = Field(None, description="Client private key (PEM or DER, unencrypted).")
    server_certificate: ConfigPath | None = Field(
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
            problem = path and regular_file(path, MAX_CERT_BYTES)
            if problem:
                raise ValueError(f"{key}: {problem}")
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
    password_file: ConfigPath | None = Field(None, description="File holding the password (systemd credential).")
    sampling_ms: float = Field(100, ge=0, le=3.6e6, description="Requested sampling interval per monitored item.")
    publishing_ms: float = Field(500, ge=10, le=3.6e6, description="Requested publishing interval of the subscription.")
    queue_size: int = Field(10, ge=1, le=100000, description="Server-side queue per monitored item (values between publishes).")
    deadband: float | None = Field(None, ge=0, description="Data-change deadband value; none: every change.")
    deadband_type: Literal["absolute", "percent"] = Field(
        "absolute", description="percent needs the server to know the node's EURange."
    )
    timestamp: Literal["source", "server", "receive"] = Field(
        "source", description="Which time a reading gets; falls back source -> server -> receive."
    )
    timeout_s: float = Field(5.0, gt=0, le=3600, description="Per-request timeout.")
    keepalive_s: float = Field(
        5.0, gt=0, le=3600, description="Subscription keep-alive; silence for twice this long means the connection is dead."
    )
    watchdog_s: float = Field(2.0, gt=0, le=3600, description="How often the client probes the server's state.")
    reconnect_max_s: float = Field(30.0, gt=0, le=3600, description="Cap of the reconnect backoff (with jitter).")
    nodes: list[OpcuaNode] = Field(default_factory=list, description="Each monitored node; or a template (node/browse_path).")
    node: str | None = Field(
        None, description="NodeId template over assets and signals, e.g. ns=2;s={asset}.{signal}: a node per pair."
    )
    browse_path: str | None = Field(None, description="Browse path template, e.g. 2:Pumps/2:{asset}/2:{signal}.")
    assets: list[str] | None = Field(None, description="Assets the template covers; default: every asset.")
    signals: list[str] | None = Field(None, description="Signals the template covers; default: each asset's profile's.")

    @model_validator(mode="after")
    def _auth(self) -> OpcuaSource:
        if self.password is not None and not self.username:
            raise ValueError("password given without username")
        return self

    @model_validator(mode="after")
    def _template(self) -> OpcuaSource:
        if self.node and self.browse_path:
            raise ValueError("give one template: node or browse_path")
        template = self.node or self.browse_path
        if template is None:
            if not self.nodes:
                raise ValueError("nodes: give at least one node, or a node / browse_path template")
            return self
        try:
            template.format(asset="a", signal="s")
        except (KeyError, IndexError, ValueError):
            raise ValueError(f"{template!r}: only {{asset}} and {{signal}} placeholders") from None
        return self

    def expand(self, signals_of: dict[str, list[str]]) -> None:
        """Add a node per (asset, signal) the template covers; `signals_of`: each asset's profile signals."""
        template = self.node or self.browse_path
        if template is None:
            return
        key = "node" if self.node else "browse_path"
        have = {(n.node or n.browse_path, n.asset, n.signal) for n in self.nodes}  # expanded once, however often validated
        for asset in self.assets if self.assets is not None else list(signals_of):
            for signal in self.signals if self.signals is not None else signals_of.get(asset, []):
                address = template.format(asset=asset, signal=signal)
                if (address, asset, signal) in have:
                    continue
                try:
                    self.nodes.append(OpcuaNode.model_validate({key: address, "asset": asset, "signal": signal}))
                except ValidationError as e:
                    why = e.errors()[0]["msg"].removeprefix("Value error, ")
                    raise ValueError(f"{template!r} for {asset}/{signal}: {why}") from None


class CoapSource(Base):
    type: Literal["coap"]
    mode: Literal["observe", "poll", "server"] = Field(
        "observe",
        description="observe: RFC 7641 observation (polls while it fails); poll: GET every poll_s; "
        "server: devices POST/PUT readings to this gateway.",
    )
    uri: str | None = Field(None, description="Resource URI for observe/poll modes (coap:// over UDP).")
    asset: str | None = Field(None, description="Asset of the resource (observe/poll); default: last path segment.")
    bind: str = Field("127.0.0.1", description="Server mode: address to listen on.")
    port: int = Field(5683, ge=1, le=65535, description="Server mode: UDP port.")
    path: str = Field("pumps/{asset}", description="Server mode: resource path template with {asset} and optionally {signal}.")
    format: Literal["json", "senml", "number"] = Field(
        "senml", description="Payload format assumed when a message has no Content-Format option."
    )
    fields: dict[str, str] = Field(default_factory=dict, description="JSON field -> signal (json); SenML name -> signal (senml).")
    timestamp: TimestampSpec = Field(default_factory=TimestampSpec, description="Event time in JSON payloads.")
    signal: str | None = Field(None, description="Signal for plain-number payloads without {signal} in path.")
    poll_s: float = Field(5.0, gt=0, le=86400, description="Polling interval, and observe fallback.")
    observe_timeout_s: float | None = Field(
        None, gt=0, le=86400, description="Re-register when no notification for this long; default: Max-Age + 5 s."
    )
    reobserve_s: float = Field(30.0, gt=0, le=86400, description="While polling as fallback, try observing again this often.")
    request_timeout_s: float = Field(10.0, gt=0, le=3600, description="A GET or observe registration unanswered this long fails.")
    max_payload_bytes: int = Field(16384, ge=64, le=2**20, description="Larger payloads: 4.13 in server mode, dropped otherwise.")

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
