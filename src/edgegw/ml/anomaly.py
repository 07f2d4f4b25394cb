"""The anomaly model: robust scaling, principal axes without the small ones, an isolation forest,
and a bounded out-of-envelope term; its calibration split and its ONNX graph.

- Robust scaling (median, IQR): a few odd windows in the history do not set the scale.
- Principal axes: the forest splits along the directions the signals move in together, so a
  vibration creep that the load does not explain stands out. Directions with less than
  `MIN_EIGEN_RATIO` of the largest variance are dropped: normal data barely moves along them,
  and a slight drift there would isolate like a fault (and whitening would blow it up).
- An isolation forest's score saturates outside its training range: a value far out scores no
  higher than one just past the edge. The envelope term adds what the forest cannot see: per
  feature, the distance beyond the range the fitted windows spanned, in units of that range's
  width; past `margin` widths it rises towards 1 (e / (1 + e)), so the score stays bounded
  (the forest's score lies in (0, 1], the sum in (0, 2)).
- Calibration is out of sample, on the latest stretch of each asset's normal history (the
  stretch most like tomorrow), never on blocks interleaved with the fitted ones; the threshold
  extrapolates that stretch's score tail to the target false-alarm rate (`tail_threshold`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

MIN_EIGEN_RATIO = 1e-3  # principal axes with less variance than this share of the largest are dropped
CALIBRATION_SHARE = 0.2  # the latest fifth of each asset's normal windows calibrates the threshold
ENVELOPE_MARGIN = 2.0  # range widths beyond the fitted envelope before the envelope term counts
OUTPUT = "anomaly_score"
TAIL_BASE = 0.8  # the threshold extrapolates the calibration scores' tail above this quantile


def calibration_split(assets: np.ndarray, normal: np.ndarray, share: float = CALIBRATION_SHARE) -> np.ndarray:
    """Per asset, the latest `share` of its normal windows (windows are in time order per asset)."""
    held = np.zeros(len(assets), dtype=bool)
    for a in np.unique(assets):
        idx = np.flatnonzero((assets == a) & normal)
        n = round(len(idx) * share)
        if n:
            held[idx[len(idx) - n :]] = True
    return held


def tail_threshold(scores: np.ndarray, rate: float, base: float = TAIL_BASE) -> float:
    """The score exceeded by `rate` of normal windows, extrapolated from the tail: peaks over the
    `base` quantile with exponential excess (a generalised Pareto of shape 0). A 0.5 % quantile
    read off a few hundred calibration windows is their maximum, whatever it happens to be; the
    tail's mean excess is a steadier estimate."""
    q = float(np.quantile(scores, base))
    excess = scores[scores > q] - q
    if rate >= 1.0 - base or not len(excess):
        return float(np.quantile(scores, 1.0 - rate))
    return q + float(excess.mean()) * float(np.log((1.0 - base) / rate))


def robust_scale(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median and a robust spread per column: IQR / 1.349 (the std of a normal distribution), the
    std where the IQR is 0 (a mostly constant feature), a tiny floor where both are 0."""
    center = np.median(x, axis=0)
    q1, q3 = np.percentile(x, [25, 75], axis=0)
    scale = (q3 - q1) / 1.349
    std = x.std(axis=0)
    floor = 1e-9 * np.maximum(np.abs(center), 1.0)
    scale = np.where(scale > floor, scale, np.where(std > floor, std, floor))
    return center, scale


def kept_components(z: np.ndarray, ratio: float = MIN_EIGEN_RATIO) -> int:
    """Principal axes of robust-scaled rows z with at least `ratio` of the largest variance."""
    eig = np.linalg.svd(z - z.mean(axis=0), compute_uv=False) ** 2
    if not len(eig) or eig[0] <= 0:
        return 1
    return max(1, int((eig >= eig[0] * ratio).sum()))


def pipeline(
    used: list[int], center: np.ndarray, scale: np.ndarray, n_components: int, trees: int, max_samples: int, seed: int
) -> Any:
    """Select the used feature columns, robust-scale, principal axes, isolation forest."""
    from sklearn.compose import ColumnTransformer
    from sklearn.decomposition import PCA
    from sklearn.ensemble import IsolationForest
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import RobustScaler

    scaler = RobustScaler()  # fitted by Pipeline.fit, then given our floored scale below
    pipe = Pipeline(
        [
            ("select", ColumnTransformer([("used", "passthrough", used)])),
            ("scale", scaler),
            ("axes", PCA(n_components=n_components, whiten=True, svd_solver="full", random_state=seed)),
            ("iforest", IsolationForest(n_estimators=trees, max_samples=max_samples, random_state=seed)),
        ]
    )
    pipe.robust_center, pipe.robust_scale = center, scale
    return pipe


def fit(pipe: Any, x: np.ndarray) -> Any:
    """Fit the pipeline with its own robust center and scale (RobustScaler's would set a zero IQR to 1)."""
    sel, scaler = pipe.steps[0][1], pipe.steps[1][1]
    xs = sel.fit_transform(x)
    scaler.fit(xs)
    scaler.center_, scaler.scale_ = pipe.robust_center.astype(np.float64), pipe.robust_scale.astype(np.float64)
    z = scaler.transform(xs)
    axes, forest = pipe.steps[2][1], pipe.steps[3][1]
    forest.fit(axes.fit_transform(z))
    return pipe


@dataclass
class Envelope:
    """The range of each used feature over the fitted windows, and the margin in range widths."""

    used: np.ndarray  # feature columns
    lo: np.ndarray
    hi: np.ndarray
    width: np.ndarray
    margin: float

    @classmethod
    def of(cls, x: np.ndarray, used: list[int], scale: np.ndarray, margin: float) -> Envelope:
        xu = x[:, used]
        lo, hi = xu.min(axis=0), xu.max(axis=0)
        # a feature that never moved gets a width of its robust spread, never 0
        width = np.maximum(hi - lo, scale)
        return cls(np.asarray(used, dtype=np.int64), lo, hi, width, float(margin))

    def excess(self, x: np.ndarray) -> np.ndarray:
        """Per row and used feature: how many range widths outside the envelope (0 inside)."""
        xu = x[:, self.used].astype(np.float64)
        return np.maximum(0.0, np.maximum(xu - self.hi, self.lo - xu) / self.width)

    def term(self, x: np.ndarray) -> np.ndarray:
        """The bounded envelope term per row: e / (1 + e), e = the largest excess beyond the margin."""
        e = np.maximum(0.0, self.excess(x).max(axis=1) - self.margin) if self.used.size else np.zeros(len(x))
        return e / (1.0 + e)

    def to_meta(self) -> dict[str, Any]:
        return {"lo": self.lo.tolist(), "hi": self.hi.tolist(), "width": self.width.tolist(), "margin": self.margin}


def fit_relations(
    x: np.ndarray, names: list[str], signals: list[str], center: np.ndarray, scale: np.ndarray
) -> dict[str, Any] | None:
    """Pairwise relations of the signals' window means on normal windows, in robust units: signal j
    against a straight line in signal i (slope[i, j], intercept[i, j]), with the robust spread of
    what the line leaves. The daemon names a signal whose relation broke by the median of its
    pairs' residuals (`engine.models.relation_z`): a fault breaks every pair of the signal it moves but only
    one pair of each other signal, so the median points at the one that left. None for fewer
    than three signals (with two, a broken pair cannot say which side moved)."""
    if len(signals) < 3:
        return None
    cols = [names.index(f"{s}.mean") for s in signals]
    z = (x[:, cols] - center[cols]) / scale[cols]
    n = len(signals)
    slope, intercept, spread = np.zeros((n, n)), np.zeros((n, n)), np.ones((n, n))
    zm = z.mean(axis=0)
    zc = z - zm
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            a = float(zc[:, i] @ zc[:, j]) / max(float(zc[:, i] @ zc[:, i]), 1e-12)
            slope[i, j], intercept[i, j] = a, zm[j] - a * zm[i]
            r = z[:, j] - a * z[:, i] - intercept[i, j]
            q1, q3 = np.percentile(r, [25, 75])
            spread[i, j] = max((q3 - q1) / 1.349, 0.05)
    return {
        "features": [names[c] for c in cols],
        "slope": slope.tolist(),
        "intercept": intercept.tolist(),
        "spread": spread.tolist(),
    }


def score(pipe: Any, env: Envelope, x: np.ndarray) -> np.ndarray:
    """What the exported graph outputs: forest score 2^(-E[h]/c(n)) plus the envelope term."""
    return -pipe.score_samples(x.astype(np.float32)) + env.term(x)


def add_envelope(proto: Any, env: Envelope, forest_output: str = "score_samples") -> Any:
    """Append the envelope term to an exported anomaly graph: output `OUTPUT` = envelope term -
    score_samples (score_samples is the negated forest score). Standard ONNX ops only."""
    from onnx import TensorProto, helper, numpy_helper

    g = proto.graph
    x = g.input[0].name
    ss = next(o.name for o in g.output if o.name.endswith(forest_output))
    f32 = np.float32

    def const(name: str, v: Any, dtype: Any = f32) -> str:
        g.initializer.append(numpy_helper.from_array(np.asarray(v, dtype=dtype), "env_c_" + name))
        return "env_c_" + name

    # every input column (no Gather): unused ones get a zero scale and sit at -margin
    n_in = g.input[0].type.tensor_type.shape.dim[1].dim_value
    inv = np.zeros(n_in)
    over = np.full(n_in, env.margin)
    under = np.full(n_in, -env.margin)
    inv[env.used] = 1.0 / env.width
    over[env.used] = env.hi * inv[env.used] + env.margin
    under[env.used] = env.lo * inv[env.used] - env.margin
    nodes = [
        helper.make_node("Mul", [x, const("inv_width", inv[None])], ["env_t"], name="env_t"),
        helper.make_node("Sub", ["env_t", const("over", over[None])], ["env_over"], name="env_over"),
        helper.make_node("Sub", [const("under", under[None]), "env_t"], ["env_under"], name="env_under"),
        helper.make_node("Max", ["env_over", "env_under"], ["env_out"], name="env_out"),
        helper.make_node("ReduceMax", ["env_out"], ["env_max"], axes=[1], keepdims=1, name="env_max"),
        helper.make_node("Relu", ["env_max"], ["env_e"], name="env_e"),
        helper.make_node("Add", ["env_e", const("one", [1.0])], ["env_e1"], name="env_e1"),
        helper.make_node("Div", ["env_e", "env_e1"], ["env_term"], name="env_term"),
        helper.make_node("Sub", ["env_term", ss], [OUTPUT], name="env_score"),
    ]
    g.node.extend(nodes)
    del g.output[:]  # the daemon reads this one output: nothing else is computed
    g.output.append(helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, [None, 1]))
    need = {OUTPUT}
    kept = []
    for n in reversed(list(g.node)):
        if any(o in need for o in n.output):
            kept.append(n)
            need.update(i for i in n.input if i)
    del g.node[:]
    g.node.extend(reversed(kept))
    inits = [i for i in g.initializer if i.name in need]
    del g.initializer[:]
    g.initializer.extend(inits)
    return proto


__all__ = [
    "CALIBRATION_SHARE",
    "ENVELOPE_MARGIN",
    "MIN_EIGEN_RATIO",
    "OUTPUT",
    "Envelope",
    "add_envelope",
    "calibration_split",
    "fit",
    "kept_components",
    "pipeline",
    "robust_scale",
    "score",
    "tail_threshold",
]
