"""A model directory's description, `model.json` (format edgegw-model/1): one typed schema that
`edgegw train` writes and the daemon and `edgegw backtest` read.

Standard library only: the daemon imports it. The fields the daemon reads are typed and checked
on reading, naming the field that is missing or wrong; what only describes the training (data,
parameters, library versions, the score's wording) is kept as written. Sections and keys keep
the order the file has always had, and keys this version does not know are kept, not dropped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

FORMAT = "edgegw-model/1"
META_FILE = "model.json"
ANOMALY_FILE = "anomaly.onnx"
FAILURE_FILE = "failure.onnx"
MODEL_KINDS = ("anomaly", "failure_risk")  # the model alarms, in the engine's row order
ON_HOPS, OFF_HOPS = 3, 10  # model alarm delays in hops when neither the profile nor the model sets them


class MetaError(ValueError):
    """A model description that cannot be used; the message names the field."""


def _num(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise MetaError(f"{where}: expected a number, got {v!r}")
    return v  # an int stays one: the file reads back as written


def _text(v: Any, where: str) -> str:
    if not isinstance(v, str):
        raise MetaError(f"{where}: expected a string, got {v!r}")
    return v


def _texts(v: Any, where: str) -> list[str]:
    if not isinstance(v, list):
        raise MetaError(f"{where}: expected a list, got {type(v).__name__}")
    return [_text(s, f"{where}[{i}]") for i, s in enumerate(v)]


def _numbers(v: Any, where: str) -> list[float]:
    if not isinstance(v, list):
        raise MetaError(f"{where}: expected a list of numbers, got {type(v).__name__}")
    return [_num(x, f"{where}[{i}]") for i, x in enumerate(v)]


def _mapping(v: Any, where: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise MetaError(f"{where}: expected an object, got {type(v).__name__}")
    return v


def _as_dict(obj: Any) -> dict[str, Any]:
    """The dataclass's fields in declaration order, then its `extra` keys."""
    out: dict[str, Any] = {}
    for f in fields(obj):
        if f.name != "extra":
            v = getattr(obj, f.name)
            out[f.name] = v.to_dict() if hasattr(v, "to_dict") else v
    out.update(obj.extra)
    return out


def _extra(d: Mapping[str, Any], cls: type) -> dict[str, Any]:
    known = {f.name for f in fields(cls)}
    return {k: v for k, v in d.items() if k not in known}


@dataclass(frozen=True, kw_only=True)
class TrainingStats:
    """Per feature (feature_names order): mean and std of the fitted windows, and the robust
    center and scale the explanations use when the model has them."""

    mean: list[float]
    std: list[float]
    center: list[float] | None = None
    scale: list[float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Any, where: str) -> TrainingStats:
        d = _mapping(d, where)
        for k in ("mean", "std"):
            if k not in d:
                raise MetaError(f"{where}: lacks {k!r}")
        opt = {k: _numbers(d[k], f"{where}.{k}") for k in ("center", "scale") if d.get(k) is not None}
        return cls(mean=_numbers(d["mean"], f"{where}.mean"), std=_numbers(d["std"], f"{where}.std"), **opt, extra=_extra(d, cls))

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True, kw_only=True)
class Relations:
    """Each signal's window mean against its lines in the others (edgegw.ml.anomaly.fit_relations)."""

    features: list[str]
    slope: list[Any]
    intercept: list[Any]
    spread: list[Any]
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Any, where: str) -> Relations:
        d = _mapping(d, where)
        for k in ("features", "slope", "intercept", "spread"):
            if k not in d:
                raise MetaError(f"{where}: lacks {k!r}")
        return cls(
            features=_texts(d["features"], f"{where}.features"),
            slope=list(d["slope"]),
            intercept=list(d["intercept"]),
            spread=list(d["spread"]),
            extra=_extra(d, cls),
        )

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True, kw_only=True)
class AnomalyMeta:
    """The anomaly model: its file and output, threshold, the features it uses and the statistics
    its explanations are in."""

    kind: str = "anomaly"
    file: str
    score: str | None = None  # what the score means, in words
    output: str = "score_samples"
    score_sign: float = 1.0
    threshold: float
    false_alarm_target: float | None = None
    heldout_false_alarm: float | None = None
    min_samples: dict[str, int] = field(default_factory=dict)  # per signal: fewer in a window is not judged
    features_used: list[str]
    training_stats: TrainingStats
    envelope: dict[str, Any] | None = None
    relations: Relations | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    REQUIRED = ("file", "threshold", "features_used", "training_stats")

    @classmethod
    def from_dict(cls, d: Any) -> AnomalyMeta:
        if not isinstance(d, dict) or not all(k in d for k in cls.REQUIRED):
            raise MetaError("the 'anomaly' section lacks file, threshold, features_used or training_stats")
        w = "anomaly"
        mins = _mapping(d.get("min_samples") or {}, f"{w}.min_samples")
        return cls(
            kind=str(d.get("kind", "anomaly")),
            file=_text(d["file"], f"{w}.file"),
            score=d.get("score"),
            output=_text(d.get("output", "score_samples"), f"{w}.output"),
            score_sign=_num(d.get("score_sign", 1.0), f"{w}.score_sign"),
            threshold=_num(d["threshold"], f"{w}.threshold"),
            false_alarm_target=d.get("false_alarm_target"),
            heldout_false_alarm=d.get("heldout_false_alarm"),
            min_samples={_text(s, f"{w}.min_samples"): int(_num(n, f"{w}.min_samples.{s}")) for s, n in mins.items()},
            features_used=_texts(d["features_used"], f"{w}.features_used"),
            training_stats=TrainingStats.from_dict(d["training_stats"], f"{w}.training_stats"),
            envelope=d.get("envelope"),
            relations=Relations.from_dict(d["relations"], f"{w}.relations") if d.get("relations") else None,
            extra=_extra(d, cls),
        )

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True, kw_only=True)
class FailureMeta:
    """The failure classifier: its file and output, classes, the anomaly gate it speaks past and
    the share of the fault probability below which its cause is `unknown_class`."""

    kind: str = "failure_risk"
    file: str
    output: str = "probabilities"
    classes: list[str]
    normal_class: str = "0"
    threshold: float | None = None
    anomaly_gate: float = -math.inf
    features: list[str] | None = None
    calibration: dict[str, Any] | None = None
    cause_threshold: float = 0.0
    unknown_class: str = "unknown"
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Any) -> FailureMeta:
        if not isinstance(d, dict) or "classes" not in d or "file" not in d:
            raise MetaError("the 'failure_risk' section lacks file or classes")
        w = "failure_risk"
        if not isinstance(d["classes"], list):
            raise MetaError(f"{w}.classes: expected a list, got {type(d['classes']).__name__}")
        return cls(
            kind=str(d.get("kind", "failure_risk")),
            file=_text(d["file"], f"{w}.file"),
            output=_text(d.get("output", "probabilities"), f"{w}.output"),
            classes=[str(c) for c in d["classes"]],
            normal_class=str(d.get("normal_class", "0")),
            threshold=None if d.get("threshold") is None else _num(d["threshold"], f"{w}.threshold"),
            anomaly_gate=_num(d.get("anomaly_gate", -math.inf), f"{w}.anomaly_gate"),
            features=d.get("features"),
            calibration=d.get("calibration"),
            cause_threshold=_num(d.get("cause_threshold", 0.0), f"{w}.cause_threshold"),
            unknown_class=str(d.get("unknown_class", "unknown")),
            extra=_extra(d, cls),
        )

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True, kw_only=True)
class ModelAlarms:
    """The model's alarm delays, in hops (scaled by the serving profile's hop) and in seconds at
    the training hop, and the failure-probability threshold."""

    on_hops: int | None = None
    off_hops: int | None = None
    on_delay_s: float | None = None
    off_delay_s: float | None = None
    failure_threshold: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Any) -> ModelAlarms:
        d = d or {}
        if not isinstance(d, dict):
            raise MetaError(f"model_alarms: expected an object, got {type(d).__name__}")
        known = ("on_hops", "off_hops", "on_delay_s", "off_delay_s", "failure_threshold")
        try:
            vals = {k: _num(d[k], k) for k in known if d.get(k) is not None}
        except MetaError:
            raise MetaError(f"model_alarms holds non-numeric delays: {d}") from None
        return cls(**vals, extra=_extra(d, cls))  # type: ignore[arg-type]

    def delays(self, hop_s: float) -> tuple[float, float] | None:
        """(on, off) in seconds at a hop of hop_s: the hops times the hop, else the seconds; None
        when the model has neither."""
        if self.on_hops is not None and self.off_hops is not None:
            return float(self.on_hops) * hop_s, float(self.off_hops) * hop_s
        if self.on_delay_s is not None and self.off_delay_s is not None:
            return float(self.on_delay_s), float(self.off_delay_s)
        return None

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True, kw_only=True)
class ModelMeta:
    """What `model.json` holds. `anomaly` and `failure_risk` are the per-model sections; each
    ONNX file's `metadata_props` repeats its section together with the common fields."""

    format: str = FORMAT
    name: str
    version: str
    signals: list[str]
    units: dict[str, str | None] = field(default_factory=dict)
    window_s: float
    hop_s: float = 1.0
    feature_names: list[str]
    anomaly: AnomalyMeta
    failure_risk: FailureMeta | None = None
    model_alarms: ModelAlarms = field(default_factory=ModelAlarms)
    data: dict[str, Any] | None = None  # what it was trained on
    params: dict[str, Any] | None = None  # the training settings
    library_versions: dict[str, str] | None = None
    trained_at: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    REQUIRED = ("name", "version", "signals", "window_s", "feature_names", "anomaly")
    COMMON = ("format", "name", "version", "signals", "units", "window_s", "hop_s", "feature_names")

    @classmethod
    def from_dict(cls, d: Any) -> ModelMeta:
        """The description in a parsed model.json; MetaError names what is missing or wrong."""
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise MetaError(f"not an edgegw model description (format {FORMAT!r} expected)")
        for key in cls.REQUIRED:
            if key not in d:
                raise MetaError(f"lacks {key!r}")
        units = _mapping(d.get("units") or {}, "units")
        failure = d.get("failure_risk")
        return cls(
            name=_text(d["name"], "name"),
            version=_text(d["version"], "version"),
            signals=_texts(d["signals"], "signals"),
            units={str(s): (None if u is None else str(u)) for s, u in units.items()},
            window_s=_num(d["window_s"], "window_s"),
            hop_s=_num(d.get("hop_s", 1.0), "hop_s"),
            feature_names=_texts(d["feature_names"], "feature_names"),
            anomaly=AnomalyMeta.from_dict(d["anomaly"]),
            failure_risk=FailureMeta.from_dict(failure) if failure else None,
            model_alarms=ModelAlarms.from_dict(d.get("model_alarms")),
            data=d.get("data"),
            params=d.get("params"),
            library_versions=d.get("library_versions"),
            trained_at=d.get("trained_at"),
            extra=_extra(d, cls),
        )

    def to_dict(self) -> dict[str, Any]:
        """model.json's content, in its key order (`failure_risk` is null without a classifier)."""
        return _as_dict(self)

    def common(self) -> dict[str, Any]:
        """The fields every ONNX file's metadata repeats."""
        d = self.to_dict()
        return {k: d[k] for k in self.COMMON if k in d}

    def file_meta(self, kind: str) -> dict[str, Any]:
        """What one ONNX file's `metadata_props` hold: the common fields and the model's section."""
        section = self.anomaly if kind == "anomaly" else self.failure_risk
        assert section is not None
        return {**self.common(), **section.to_dict()}


def read_meta(directory: Path) -> ModelMeta:
    """The description in directory/model.json. OSError when it cannot be read; MetaError (the
    message starting with the file) when it is no JSON or not a usable description."""
    side = directory / META_FILE
    text = side.read_text()
    try:
        raw = json.loads(text)
    except ValueError as e:
        raise MetaError(f"{side}: not valid JSON: {e}") from None
    try:
        return ModelMeta.from_dict(raw)
    except MetaError as e:
        raise MetaError(f"{side}: {e}") from None


def dumps(meta: ModelMeta) -> str:
    """model.json's text."""
    return json.dumps(meta.to_dict(), indent=1, sort_keys=False) + "\n"
