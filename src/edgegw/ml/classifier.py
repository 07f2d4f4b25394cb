"""The failure classifier of `edgegw train`: which fault a window shows, or that it does not know.

It does not read raw levels. A tree model trained on a few fault episodes learns where those
episodes sat (this pump, that part of the load cycle) and names a wrong cause with certainty on
the next machine. It reads what a fault changes, whatever the operating point:

- relations: each signal's window mean (and newest value) against a linear prediction from the
  other signals' values, fitted on normal windows and scaled by its normal spread (motor current
  above what the flow and head need, discharge pressure below the pump curve, flow below what
  the current drives);
- relative spread: each signal's std over its |mean| (impacts, a flickering flow).

Gradient-boosted trees over those features, class-balanced, then calibrated on held-out windows
(a temperature and a bias per class on the log-probabilities, fitted by likelihood): a
probability of 0.9 means right about nine times in ten on episodes the trees never saw. The cause
is named only when its share of the fault probability reaches `cause_threshold`, chosen on the
held-out windows so that named causes are right at least `CAUSE_PRECISION` of the time; below it
the daemon says "unknown".

The whole chain (relations, trees, calibration) is one ONNX graph over the engine's feature row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

NORMAL = "0"
UNKNOWN = "unknown"
CAUSE_PRECISION = 0.9  # named causes must be right this often on the held-out windows
CAUSE_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)
MAX_NORMAL_FIT = 20000  # normal windows the trees see (evenly spaced): more only adds time
RIDGE = 1e-3
_EPS = 1e-9


@dataclass(slots=True)
class Relations:
    """Derived features of a feature row: linear ones (one Gather, MatMul and Add) and ratios."""

    names: list[str]
    value_cols: np.ndarray  # engine columns the linear features read
    weights: np.ndarray  # (len(value_cols), n_linear)
    offset: np.ndarray  # (n_linear,)
    std_cols: np.ndarray  # (S,)
    mean_cols: np.ndarray  # (S,)
    floor: np.ndarray  # (S,) added to |mean| so a signal near zero does not blow the ratio up

    def transform(self, x: np.ndarray) -> np.ndarray:
        """(n, n_features) engine rows -> derived features, in float32 like the ONNX graph."""
        x = np.asarray(x, dtype=np.float32)
        lin = x[:, self.value_cols] @ self.weights.astype(np.float32) + self.offset.astype(np.float32)
        ratio = x[:, self.std_cols] / (np.abs(x[:, self.mean_cols]) + self.floor.astype(np.float32))
        return np.concatenate([lin, ratio], axis=1).astype(np.float32)


def fit_relations(x_normal: np.ndarray, names: list[str], signals: list[str]) -> Relations:
    """Pairwise relations fitted on normal rows: for each pair of signals, the second's window mean
    (and newest value) against a straight line in the first's, in units of its normal spread. A
    fault breaks the pairs of the signal it moves and leaves the others whole, so the broken pairs
    say which signal went astray. Also each signal's skew and kurtosis (shape, scale-free) as they are."""
    col = {n: i for i, n in enumerate(names)}
    mean_cols = np.array([col[f"{sig}.mean"] for sig in signals], dtype=np.int64)
    std_cols = np.array([col[f"{sig}.std"] for sig in signals], dtype=np.int64)
    v = x_normal[:, mean_cols].astype(np.float64)
    mu, sd = v.mean(axis=0), np.maximum(v.std(axis=0), _EPS)
    pairs = [(i, j) for i in range(len(signals)) for j in range(i + 1, len(signals))]
    value_cols: list[int] = []
    blocks: list[tuple[np.ndarray, np.ndarray]] = []
    out_names: list[str] = []
    for kind in ("mean", "last"):
        value_cols += [col[f"{sig}.{kind}"] for sig in signals]
        w = np.zeros((len(signals), len(pairs)))
        c = np.zeros(len(pairs))
        for k, (i, j) in enumerate(pairs):
            zi, zj = (v[:, i] - mu[i]) / sd[i], (v[:, j] - mu[j]) / sd[j]
            slope = float(zi @ zj) / max(float(zi @ zi), _EPS)
            spread = max(float((zj - slope * zi).std()), 1e-3)
            # r = (zj - slope zi) / spread, as an affine map of the raw values
            w[i, k] = -slope / sd[i] / spread
            w[j, k] = 1.0 / sd[j] / spread
            c[k] = (slope * mu[i] / sd[i] - mu[j] / sd[j]) / spread
            out_names.append(f"{signals[j]}~{signals[i]}.{kind}")
        blocks.append((w, c))
    shape = [col[f"{sig}.{f}"] for sig in signals for f in ("skew", "kurtosis")]
    value_cols += shape
    out_names += [names[i] for i in shape]
    n_lin = len(out_names)
    weights = np.zeros((len(value_cols), n_lin))
    offset = np.zeros(n_lin)
    s, p = len(signals), len(pairs)
    for b, (w, c) in enumerate(blocks):
        weights[b * s : (b + 1) * s, b * p : (b + 1) * p] = w
        offset[b * p : (b + 1) * p] = c
    weights[2 * s :, 2 * p :] = np.eye(len(shape))
    out_names += [f"{sig}.std/mean" for sig in signals]
    return Relations(
        names=out_names,
        value_cols=np.array(value_cols, dtype=np.int64),
        weights=weights,
        offset=offset,
        std_cols=std_cols,
        mean_cols=mean_cols,
        floor=0.01 * sd + _EPS,
    )


def failure_pipeline(used: list[int], seed: int) -> Any:
    """Select the used feature columns, class-balanced gradient-boosted trees over the fault classes."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline

    return Pipeline(
        [
            ("select", ColumnTransformer([("used", "passthrough", used)])),
            (
                "hgb",
                HistGradientBoostingClassifier(
                    max_iter=100,
                    max_leaf_nodes=15,
                    learning_rate=0.1,
                    early_stopping=False,
                    class_weight="balanced",
                    random_state=seed,
                ),
            ),
        ]
    )


@dataclass(slots=True)
class FailureClassifier:
    """Relations -> trees -> calibration; `predict_proba` is what the exported graph computes."""

    relations: Relations
    trees: Any  # fitted failure_pipeline over the derived features
    classes: list[str]
    temperature: float = 1.0
    bias: np.ndarray = field(default_factory=lambda: np.zeros(0))
    cause_threshold: float = 0.5
    report: list[str] = field(default_factory=list)

    def raw_proba(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.trees.predict_proba(self.relations.transform(x)), dtype=np.float64)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return calibrate(self.raw_proba(x), self.temperature, self.bias)

    def meta(self) -> dict[str, Any]:
        """What model.json says about the classifier, beyond classes and thresholds."""
        return {
            "features": self.relations.names,
            "calibration": {"temperature": round(self.temperature, 6), "bias": [round(b, 6) for b in self.bias.tolist()]},
            "cause_threshold": self.cause_threshold,
            "unknown_class": UNKNOWN,
        }


def calibrate(p: np.ndarray, temperature: float, bias: np.ndarray) -> np.ndarray:
    """softmax(log(p) / T + b), as the graph computes it."""
    z = np.log(np.maximum(p, 1e-7)) / temperature + bias
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


def fit_calibration(p: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Temperature and per-class bias minimising the log-loss of calibrate(p) against class indices y."""
    from scipy.optimize import minimize

    k = p.shape[1]
    logp = np.log(np.maximum(p, 1e-7))
    onehot = np.eye(k)[y]

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        inv_t, b = np.exp(theta[0]), theta[1:]
        z = logp * inv_t + b
        z -= z.max(axis=1, keepdims=True)
        lse = np.log(np.exp(z).sum(axis=1))
        q = np.exp(z - lse[:, None])
        nll = float((lse - (z * onehot).sum(axis=1)).mean()) + 1e-4 * float(b @ b)
        g = (q - onehot) / len(p)
        grad = np.concatenate([[float((g * logp).sum()) * inv_t], g.sum(axis=0) + 2e-4 * b])
        return nll, grad

    res = minimize(loss, np.zeros(k + 1), jac=True, method="L-BFGS-B")
    return float(np.exp(-res.x[0])), np.asarray(res.x[1:], dtype=np.float64)


def cause_share(probs: np.ndarray, normal: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the most likely fault class and its share of the fault probability."""
    fault = [i for i in range(probs.shape[1]) if i != normal]
    pf = probs[:, fault]
    top = pf.argmax(axis=1)
    share = pf[np.arange(len(pf)), top] / np.maximum(pf.sum(axis=1), 1e-12)
    return np.asarray(fault)[top], share


def holdout(label: np.ndarray, assets: np.ndarray, ends: np.ndarray, normal_held: np.ndarray) -> np.ndarray:
    """Windows held out to calibrate and score the classifier: normal windows of the held-out time
    blocks, and for each fault class its latest episode (with one episode only, its last 30 %)."""
    held = normal_held & (label == NORMAL)
    for cls in sorted(set(label.tolist()) - {NORMAL}):
        runs: list[np.ndarray] = []
        for a in np.unique(assets):
            idx = np.flatnonzero(assets == a)
            d = np.diff(np.concatenate([[0], (label[idx] == cls).astype(np.int8), [0]]))
            runs += [idx[s:e] for s, e in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1), strict=True)]
        runs.sort(key=lambda r: float(ends[r[-1]]))
        if len(runs) >= 2:
            held[runs[-1]] = True
        elif runs:
            r = runs[0]
            held[r[int(len(r) * 0.7) :]] = True
    return held


def fit_classifier(
    x: np.ndarray,
    label: np.ndarray,
    assets: np.ndarray,
    ends: np.ndarray,
    normal_held: np.ndarray,
    names: list[str],
    signals: list[str],
    seed: int,
    served: Callable[[np.ndarray], np.ndarray] | None = None,
    risk_threshold: float = 0.5,
) -> FailureClassifier:
    """Fit on all but the held-out episodes (see `holdout`), calibrate and score on those.

    `served(rows)` says which rows the daemon would run the classifier on (anomaly score at the
    gate): calibration meets normal windows as the daemon does; every fault window counts. The
    cause threshold is chosen on the windows whose fault probability reaches `risk_threshold`.
    """
    from sklearn.metrics import precision_recall_fscore_support

    label = label.astype(str)
    held = holdout(label, assets, ends, normal_held)
    fit = ~held
    if len(set(label[fit].tolist())) < 2:
        fit = np.ones(len(label), dtype=bool)
    normal_fit = np.flatnonzero(fit & (label == NORMAL))
    relations = fit_relations(x[normal_fit], names, signals)
    if len(normal_fit) > MAX_NORMAL_FIT:  # evenly spaced, so every asset and time of day stays in
        keep = np.zeros(len(label), dtype=bool)
        keep[normal_fit[np.linspace(0, len(normal_fit) - 1, MAX_NORMAL_FIT).astype(np.int64)]] = True
        fit &= keep | (label != NORMAL)
    z = relations.transform(x)
    trees = failure_pipeline(list(range(z.shape[1])), seed)
    trees.fit(z[fit], label[fit])
    classes = [str(c) for c in trees.classes_]
    clf = FailureClassifier(relations, trees, classes, bias=np.zeros(len(classes)))
    normal = classes.index(NORMAL) if NORMAL in classes else -1
    faults = [c for c in classes if c != NORMAL]
    cal = held & np.isin(label, classes)
    if served is not None:
        cal[held] &= (label[held] != NORMAL) | served(x[held])
    if not cal.any() or normal < 0:
        clf.report.append("  (no held-out labelled windows to calibrate and score on)")
        return clf
    raw_held = clf.raw_proba(x[held])
    pred = np.array(classes)[raw_held.argmax(axis=1)]
    p, r, f1, n = precision_recall_fscore_support(label[held], pred, labels=faults, zero_division=0)
    y = np.array([classes.index(c) if c in classes else normal for c in label[cal]])
    raw = raw_held[cal[held]]
    clf.temperature, clf.bias = fit_calibration(raw, y)
    probs = calibrate(raw, clf.temperature, clf.bias)
    top, share = cause_share(probs, normal)
    alarm = 1.0 - probs[:, normal] >= risk_threshold
    is_fault = y != normal
    for t in CAUSE_THRESHOLDS:
        named = alarm & is_fault & (share >= t)
        if named.any() and float((top[named] == y[named]).mean()) >= CAUSE_PRECISION:
            clf.cause_threshold = t
            break
    else:
        clf.cause_threshold = CAUSE_THRESHOLDS[-1]
    named = alarm & (share >= clf.cause_threshold)
    clf.report.append(
        f"  calibrated on {int(cal.sum())} held-out windows (temperature {clf.temperature:.2f}); "
        f"cause named at a share of the fault probability >= {clf.cause_threshold:.2f}, else {UNKNOWN}"
    )
    for c, pi, ri, fi, ni in zip(faults, p, r, f1, n, strict=True):
        k = classes.index(c)
        rows = y == k
        right = float((named & rows & (top == k)).sum()) / max(int(rows.sum()), 1)
        unknown = float((alarm & rows & (share < clf.cause_threshold)).sum()) / max(int(rows.sum()), 1)
        clf.report.append(
            f"  {c}: precision {pi:.2f} recall {ri:.2f} F1 {fi:.2f} ({ni} held-out windows); "
            f"alarm names it {right:.0%}, says {UNKNOWN} {unknown:.0%}"
        )
    return clf
