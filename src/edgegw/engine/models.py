"""ONNX model serving (onnxruntime only): what the engine needs from a model set.

The engine hands a model set one feature matrix per hop tick (all due assets of a profile)
and gets back, per row, the verdicts that feed the alarm debounce.

A model directory holds `model.json` (the metadata: signals, window, feature order,
threshold, training statistics, version) and `anomaly.onnx` (+ `failure.onnx` when the
model was trained with fault labels); each ONNX file repeats its metadata in
`metadata_props`. `load_model_set()` refuses anything that does not fit the profile with a
`ModelError` naming what differs, so a hot reload can keep the old model serving.

`failure_risk` holds only where the classifier's fault probability reaches the threshold and
the anomaly score reaches the model's `anomaly_gate` (a high percentile of normal scores). The
classifier runs only on those rows (a few per cent of normal windows): the others' failure
verdict has a NaN score (null in JSON), which is never a risk.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from edgegw.config.learn import LEARN
from edgegw.engine.features import feature_names as engine_feature_names
from edgegw.engine.modelmeta import META_FILE, MetaError, ModelMeta, read_meta
from edgegw.records import Severity

if TYPE_CHECKING:
    from edgegw.config import Profile

TOP_N = 3
MIN_Z_OTHER_SIGNAL = 2.0


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


@dataclass(slots=True, eq=False)
class Scores:
    """One hop's model output for n rows, as arrays. `verdict(i, kind)` builds one row's Verdict
    with its evidence; `verdicts()` all of them (for hop observers: training, backtests)."""

    models: OnnxModelSet
    x: np.ndarray  # the rows as the models saw them (float32, model column order)
    judged: np.ndarray  # False: too few samples to judge, no verdict
    anomaly: np.ndarray  # anomaly score (higher is more unusual)
    hot: np.ndarray  # anomaly condition
    risk: np.ndarray | None = None  # failure probability, NaN where the classifier was not run
    risk_hot: np.ndarray | None = None
    probs: np.ndarray | None = None  # the classifier's class probabilities, rows of probs_row only
    probs_row: dict[int, int] = field(default_factory=dict)

    def verdict(self, i: int, kind: str) -> Verdict:
        m = self.models
        if kind == "anomaly":
            hot = bool(self.hot[i])
            ev = m.anomaly_evidence(self.x[i]) if hot else {}
            return Verdict("anomaly", hot, float(self.anomaly[i]), m.threshold, Severity.WARNING, ev)
        assert self.risk is not None and self.risk_hot is not None
        hot, p = bool(self.risk_hot[i]), float(self.risk[i])
        ev = m.risk_evidence(self.probs[self.probs_row[i]], p) if hot and self.probs is not None else {}
        return Verdict("failure_risk", hot, p, m.failure_threshold, Severity.CRITICAL, ev)

    def causes(self) -> dict[int, str]:
        """The named cause of each row whose failure risk is over its threshold (row -> class or
        the model's unknown class), as `risk_evidence` names it, for all rows at once."""
        if self.risk_hot is None or self.probs is None or not self.risk_hot.any():
            return {}
        m = self.models
        if not len(m._fault_idx):
            return {}
        rows = np.flatnonzero(self.risk_hot)
        p = self.probs[[self.probs_row[r] for r in rows.tolist()]]
        pf = p[:, m._fault_idx]
        c = m._fault_idx[np.argmax(pf, axis=1)]
        share = p[np.arange(len(rows)), c] / np.maximum(pf.sum(axis=1), 1e-12)
        sure = (share >= m._cause_threshold).tolist()
        names = [m.classes[i] if ok else m._unknown for i, ok in zip(c.tolist(), sure, strict=True)]
        return dict(zip(rows.tolist(), names, strict=True))

    def verdicts(self) -> list[list[Verdict]]:
        kinds = ("anomaly",) if self.risk is None else ("anomaly", "failure_risk")
        return [[self.verdict(i, k) for k in kinds] if ok else [] for i, ok in enumerate(self.judged.tolist())]


class ModelSet(Protocol):
    name: str
    version: str
    feature_names: list[str]
    delays: tuple[float, float] | None  # the model's alarm (on, off) delays in seconds, if it has its own

    def evaluate(self, x: np.ndarray) -> list[list[Verdict]]:
        """Score rows of x (n, n_features); one list of verdicts per row."""
        ...

    def score(self, x: np.ndarray) -> Scores:
        """The same as arrays, for the engine's hop."""
        ...


def _session(path: Path) -> Any:
    """An onnxruntime session sized for a small device: one intra-op thread, sequential.

    Created from the path, not from the file's bytes: onnxruntime's InferenceSession keeps the
    bytes it was given for as long as the session lives (~0.3 MB per graph, resident for nothing).
    """
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    try:
        with path.open("rb"):  # a missing or unreadable file is named as such, not as a bad graph
            pass
    except OSError as e:
        raise ModelError(f"{path}: cannot read: {e.strerror}") from None
    try:
        return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types for a bad graph
        raise ModelError(f"{path}: not a loadable ONNX model: {str(e).splitlines()[0][:200]}") from None


class OnnxModel:
    """One ONNX graph: float32 (n, n_features) in, the named output out."""

    __slots__ = ("input", "output", "path", "session")

    def __init__(self, path: Path, meta: ModelMeta, output: str, n_features: int) -> None:
        self.path = path
        self.session = _session(path)
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ModelError(f"{path}: expected one input, found {len(inputs)}")
        shape = inputs[0].shape
        if len(shape) != 2 or (isinstance(shape[1], int) and shape[1] != n_features):
            raise ModelError(f"{path}: input shape {shape} does not take {n_features} features")
        outs = [o.name for o in self.session.get_outputs()]
        if output not in outs:
            raise ModelError(f"{path}: no output {output!r} (has {outs})")
        self.input = inputs[0].name
        self.output = output
        stored = self.session.get_modelmeta().custom_metadata_map
        version = stored.get("edgegw.version")
        if version != meta.version:
            raise ModelError(
                f"{path}: file is model version {version!r} but {META_FILE} says {meta.version!r} "
                "(files from different trainings?)"
            )

    def run(self, x: np.ndarray) -> np.ndarray:
        out: np.ndarray = self.session.run([self.output], {self.input: x})[0]
        return out


class OnnxModelSet:
    """The anomaly model (+ failure classifier) of one profile, scored in one call per hop."""

    def __init__(
        self,
        meta: ModelMeta,
        anomaly: OnnxModel,
        failure: OnnxModel | None,
        columns: np.ndarray | None,
        failure_threshold: float,
        directory: Path,
        hop_s: float = 1.0,
    ) -> None:
        self.meta = meta
        self.directory = directory
        self.name: str = meta.name
        self.version: str = meta.version
        self.feature_names: list[str] = list(meta.feature_names)
        self._columns = columns  # profile column order -> model column order, None when equal
        self._anomaly = anomaly
        am = meta.anomaly
        self.threshold = am.threshold
        self._sign = am.score_sign
        used = [self.feature_names.index(n) for n in am.features_used]
        self._used = np.asarray(used, dtype=np.int64)
        stats = am.training_stats
        # robust center and spread when the model has them: explanations are in the units it judges by
        mean_all = np.asarray(stats.mean if stats.center is None else stats.center, dtype=np.float64)
        std_all = np.asarray(stats.std if stats.scale is None else stats.scale, dtype=np.float64)
        std_all = np.maximum(std_all, 1e-9 * np.maximum(np.abs(mean_all), 1.0))
        self._mean = mean_all[self._used]
        self._scale = std_all[self._used]
        self._used_names = [self.feature_names[i] for i in used]
        self._used_signals = [n.split(".", 1)[0] for n in self._used_names]
        rel = am.relations
        if rel:  # each signal's mean against its lines in the others: named when its relations broke
            rcols = [self.feature_names.index(f) for f in rel.features]
            self._rel_cols = np.asarray(rcols, dtype=np.int64)
            self._rel_center, self._rel_scale = mean_all[rcols], std_all[rcols]
            self._rel = tuple(np.asarray(v, dtype=np.float64) for v in (rel.slope, rel.intercept, rel.spread))
            rsig = [f.split(".", 1)[0] for f in rel.features]
            self._used_names += [f"{sg}.relation" for sg in rsig]
            self._used_signals += rsig
        else:
            self._rel_cols = np.zeros(0, dtype=np.int64)
        mins = am.min_samples
        self._count_cols = np.array([self.feature_names.index(f"{s}.count") for s in mins], dtype=np.int64)
        self._min_count = np.array(list(mins.values()), dtype=np.float32)
        self.sparse_rows = 0  # windows too sparse to judge (just after a gap): not scored
        self.delays = meta.model_alarms.delays(hop_s)
        self._failure = failure
        self.failure_threshold = failure_threshold
        fm = meta.failure_risk
        if failure is not None and fm is not None:
            self.classes: list[str] = list(fm.classes)
            normal = fm.normal_class
            self._normal = self.classes.index(normal) if normal in self.classes else -1
            self._gate = fm.anomaly_gate
            self._fault_idx = np.array([i for i in range(len(self.classes)) if i != self._normal], dtype=np.int64)
            self._cause_threshold = fm.cause_threshold
            self._unknown = fm.unknown_class

    def evaluate(self, x: np.ndarray) -> list[list[Verdict]]:
        """Score rows of x (n, n_features); one list of verdicts per row (empty for a window too
        sparse to judge: fewer samples than `min_samples`, as just after a gap)."""
        return self.score(x).verdicts()

    def score(self, x: np.ndarray) -> Scores:
        """Both models over rows of x, as arrays: the engine's alarm logic reads these without a
        Python object per row; evidence is worked out only for the rows whose alarm changes."""
        if self._columns is not None:
            x = x[:, self._columns]
        if x.dtype != np.float32 or not x.flags.c_contiguous:
            x = np.ascontiguousarray(x, dtype=np.float32)
        if len(self._count_cols):
            sparse = (x[:, self._count_cols] < self._min_count).any(axis=1)
            self.sparse_rows += int(sparse.sum())
            judged = np.logical_not(sparse)
        else:
            judged = np.ones(len(x), dtype=bool)
        score = self._anomaly.run(x).reshape(-1).astype(np.float64) * self._sign
        sc = Scores(self, x, judged, score, (score > self.threshold) & judged)
        if self._failure is not None:
            # the classifier only speaks for windows the anomaly model finds unusual (score at the
            # gate): only those are run through it, ~5 % of normal windows; the others get NaN
            gated = np.flatnonzero(score >= self._gate)
            sc.risk = np.full(len(x), np.nan)
            if len(gated):
                sc.probs = self._failure.run(x if len(gated) == len(x) else x[gated]).astype(np.float64)
                p = sc.probs
                sc.risk[gated] = 1.0 - p[:, self._normal] if self._normal >= 0 else p.max(axis=1)
                sc.probs_row = {int(r): j for j, r in enumerate(gated.tolist())}
            sc.risk_hot = (sc.risk >= self.failure_threshold) & judged  # NaN (not run) is never a risk
        return sc

    def anomaly_evidence(self, x: np.ndarray) -> dict[str, Any]:
        """The features of one model-ordered row that deviate most from normal operation."""
        z = (x[self._used].astype(np.float64) - self._mean) / self._scale
        if len(self._rel_cols):
            m = (x[self._rel_cols].astype(np.float64) - self._rel_center) / self._rel_scale
            z = np.concatenate([z, relation_z(m, *self._rel)])
        ev = self._explain(z, np.argsort(-np.abs(z)))
        values, n = x[self._used].astype(np.float64), len(self._mean)
        for t in ev["top"]:  # the feature's value and its normal (the training centre): "8x normal" in the text
            i = self._used_names.index(t["feature"])
            if i < n:
                t["value"], t["normal"] = _round(float(values[i])), _round(float(self._mean[i]))
        return ev

    def risk_evidence(self, probs: np.ndarray, p_fault: float) -> dict[str, Any]:
        """The most likely fault class of one row, from the classifier's calibrated probabilities;
        "unknown" when its share of the fault probability is below the model's cause_threshold
        (no class is confident: naming one would be a guess)."""
        if not len(self._fault_idx):
            return {}
        pf = probs[self._fault_idx]
        c = int(self._fault_idx[np.argmax(pf)])
        share = float(probs[c]) / max(float(pf.sum()), 1e-12)
        cls = self.classes[c] if share >= self._cause_threshold else self._unknown
        return {
            "class": cls,
            "probability": round(p_fault, 4),
            "class_probability": round(float(probs[c]), 4),
            "cause_share": round(share, 4),
        }

    def _explain(self, z: np.ndarray, order: np.ndarray) -> dict[str, Any]:
        """The strongest deviations, one entry per signal first (a signal other than the top one is
        named when it deviates by at least MIN_Z_OTHER_SIGNAL), then the next strongest features."""
        top: list[dict[str, Any]] = []
        seen: set[str] = set()
        rest: list[int] = []
        names, sigs = self._used_names, self._used_signals
        zl = z.tolist()
        for c in order.tolist():
            sig = sigs[c]
            weak = abs(zl[c]) < MIN_Z_OTHER_SIGNAL
            if sig in seen or (top and weak):
                rest.append(c)
                if weak and len(rest) >= TOP_N:
                    break  # sorted by |z|: nothing later can name another signal
                continue
            seen.add(sig)
            top.append({"feature": names[c], "signal": sig, "z": round(zl[c], 2)})
            if len(top) == TOP_N:
                break
        for c in rest[: TOP_N - len(top)]:
            top.append({"feature": names[c], "signal": sigs[c], "z": round(zl[c], 2)})
        return {"top": top, "signals": list(dict.fromkeys(t["signal"] for t in top))}


def relation_z(m: np.ndarray, slope: np.ndarray, intercept: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """Per signal, the median over the other signals of its residual from their lines (robust
    units of each pair's spread), from m, the signals' window means in robust units; the pairs'
    lines come from training (edgegw.ml.anomaly.fit_relations)."""
    r = (m[None, :] - slope * m[:, None] - intercept) / spread  # r[i, j]: j against its line in i
    n = len(m)
    off = ~np.eye(n, dtype=bool)
    return np.asarray(np.median(r.T[off.T].reshape(n, n - 1), axis=1))


def read_model_meta(directory: Path) -> ModelMeta:
    """directory/model.json as a ModelMeta; ModelError names the file and what is missing or wrong."""
    side = directory / META_FILE
    try:
        return read_meta(directory)
    except FileNotFoundError:
        raise ModelError(f"{side}: missing (a model directory holds {META_FILE} and anomaly.onnx)") from None
    except OSError as e:
        raise ModelError(f"{side}: cannot read: {e.strerror}") from None
    except MetaError as e:
        raise ModelError(str(e)) from None


def check_fit(meta: ModelMeta, profile_name: str, profile: Profile) -> np.ndarray | None:
    """Refuse a model whose signals, units, window or features differ from the profile's.

    Returns the column order that maps the profile's feature vector onto the model's, or None
    when they are the same.
    """
    where = f"model {meta.name!r} {meta.version!r} vs profile {profile_name!r}"
    msig = list(meta.signals)
    psig = list(profile.signals)
    missing = [s for s in msig if s not in psig]
    extra = [s for s in psig if s not in msig]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"model needs signal(s) {missing} the profile lacks")
        if extra:
            parts.append(f"profile has signal(s) {extra} the model was not trained on")
        raise ModelError(f"{where}: {'; '.join(parts)}")
    units = meta.units
    for s in psig:
        mu, pu = units.get(s), profile.signals[s].unit
        if mu and pu and mu != pu:
            raise ModelError(f"{where}: signal {s!r} unit differs (model {mu!r}, profile {pu!r})")
    if not math.isclose(meta.window_s, profile.window_s, rel_tol=1e-9):
        raise ModelError(f"{where}: window_s differs (model {meta.window_s}, profile {profile.window_s})")
    want = engine_feature_names(msig)
    if list(meta.feature_names) != want:
        raise ModelError(
            f"{where}: the model's features {meta.feature_names[:3]}... are not what this edgegw computes "
            f"({want[:3]}...): retrain it"
        )
    if msig == psig:
        return None
    have = engine_feature_names(psig)
    return np.array([have.index(n) for n in want], dtype=np.int64)


def load_profile_models(
    profiles: Mapping[str, Profile], config_path: str | None
) -> tuple[dict[str, ModelSet], list[tuple[str, Path, ModelError]]]:
    """The model set of each profile that names one (its path relative to the config's folder),
    and (profile, path, why) for each whose model must not serve."""
    from edgegw.config import resolve_path

    out: dict[str, ModelSet] = {}
    failed: list[tuple[str, Path, ModelError]] = []
    for name, profile in profiles.items():
        if profile.model and profile.model != LEARN:  # a learned model is the learner's to load
            path = resolve_path(profile.model, config_path)
            try:
                out[name] = load_model_set(path, name, profile)
            except ModelError as e:
                failed.append((name, path, e))
    return out, failed


def load_model_set(path: str | Path, profile_name: str, profile: Profile) -> OnnxModelSet:
    """Load, check against the profile and warm up a model directory; ModelError if it must not serve."""
    directory = Path(path)
    if directory.is_file():
        directory = directory.parent
    if not directory.is_dir():
        raise ModelError(f"{directory}: no such model directory")
    meta = read_model_meta(directory)
    columns = check_fit(meta, profile_name, profile)
    nf = len(meta.feature_names)
    anomaly = OnnxModel(directory / meta.anomaly.file, meta, meta.anomaly.output, nf)
    fm = meta.failure_risk
    failure = OnnxModel(directory / fm.file, meta, fm.output, nf) if fm else None
    ms = OnnxModelSet(meta, anomaly, failure, columns, profile.model_alarms.failure_threshold, directory, profile.hop_s)
    _warm_up(ms, meta, nf)
    return ms


def _warm_up(ms: OnnxModelSet, meta: ModelMeta, nf: int) -> None:
    """Run the graphs once (first-call allocations happen now, not on the first hop) and sanity-check."""
    mean = np.asarray(meta.anomaly.training_stats.mean, dtype=np.float32).reshape(1, nf)
    if ms._columns is not None:
        inv = np.empty_like(ms._columns)
        inv[ms._columns] = np.arange(nf)
        mean = mean[:, inv]
    try:
        for x in (mean, np.repeat(mean, 8, axis=0)):
            rows = ms.evaluate(x)
            if ms._failure is not None:  # evaluate() runs it only past the anomaly gate
                probs = ms._failure.run(np.ascontiguousarray(x if ms._columns is None else x[:, ms._columns]))
                if not np.isfinite(probs).all():
                    raise ModelError(f"{ms.directory}: warm-up gave non-finite failure probabilities")
            if len(rows) != len(x) or not all(math.isfinite(r[0].score) for r in rows if r):
                raise ModelError(f"{ms.directory}: warm-up gave {len(rows)} verdict rows or non-finite scores")
    except ModelError:
        raise
    except Exception as e:  # a graph that loads but cannot run this input
        raise ModelError(f"{ms.directory}: warm-up run failed: {str(e).splitlines()[0][:200]}") from None


def _round(v: float) -> float:
    """Four significant digits: evidence for people and machines, not float noise."""
    return float(f"{v:.4g}") if math.isfinite(v) else v
