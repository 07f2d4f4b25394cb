"""ONNX model serving (onnxruntime only): what the engine needs from a model set.

The engine hands a model set one feature matrix per hop tick (all due assets of a profile)
and gets back, per row, the verdicts that feed the alarm debounce.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from edgegw.records import Severity


class ModelError(Exception):
    """A model that must not serve: missing file, corrupt graph, metadata that does not fit."""


@dataclass(slots=True)
class Verdict:
    """One model's opinion of one feature row."""

    kind: str  # "anomaly" | "failure_risk"
    condition: bool  # alarm condition holds for this row
    score: float
    threshold: float
    severity: Severity = Severity.WARNING
    evidence: dict[str, Any] = field(default_factory=dict)


class ModelSet(Protocol):
    name: str
    version: str
    feature_names: list[str]

    def evaluate(self, x: np.ndarray) -> list[list[Verdict]]:
        """Score rows of x (n, n_features); one list of verdicts per row."""
        ...
