"""The anomaly model's parts: calibration split, tail threshold, robust scale, envelope (in numpy
and in the exported graph), and the window and delays `edgegw train` derives from the data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from edgegw.cli import main as cli_main
from edgegw.ml import anomaly as am
from edgegw.ml.train import default_delays, derived_window
from tests.ml.modelkit import model_dir


def test_calibration_is_the_latest_normal_stretch_of_each_asset() -> None:
    assets = np.array(["a"] * 10 + ["b"] * 10, dtype=object)
    normal = np.ones(20, dtype=bool)
    normal[[9, 18]] = False  # a fault window is never calibration data
    held = am.calibration_split(assets, normal, share=0.2)
    assert np.flatnonzero(held).tolist() == [7, 8, 17, 19]


def test_tail_threshold_is_steadier_than_the_top_order_statistic() -> None:
    rng = np.random.default_rng(0)
    tail, top = [], []
    for _ in range(200):
        s = rng.exponential(1.0, 150)
        tail.append(am.tail_threshold(s, 0.005))
        top.append(np.quantile(s, 0.995))
    true = np.log(1 / 0.005)  # exceeded by 0.5 % of an exponential(1)
    assert abs(np.median(tail) - true) < 0.3
    assert np.std(tail) < 0.8 * np.std(top)


def test_robust_scale_ignores_outliers_and_never_divides_by_zero() -> None:
    x = np.column_stack([np.r_[np.arange(100.0), 1e6], np.full(101, 5.0), np.r_[np.zeros(90), np.ones(11)]])
    center, scale = am.robust_scale(x)
    assert center[0] == 50 and 30 < scale[0] < 45  # the 1e6 outlier does not set the scale
    assert scale[1] > 0 and scale[2] > 0  # constant, and zero IQR with some spread


def test_envelope_term_is_zero_inside_grows_far_outside_and_stays_bounded() -> None:
    x = np.column_stack([np.linspace(60, 94, 50), np.linspace(0, 1, 50)])
    env = am.Envelope.of(x, [0, 1], np.array([8.0, 0.25]), margin=0.5)
    probe = np.array([[70.0, 0.5], [94 + 0.4 * 34, 0.5], [26.0, 0.5], [-1e9, 0.5], [70.0, 1e9]])
    term = env.term(probe)
    assert term[0] == 0 and term[1] == 0  # inside, and within the margin
    assert term[2] == pytest.approx(0.5 / 1.5, rel=1e-9)  # 26 is one width (34) below 60: 0.5 past the margin
    assert 0.99 < term[3] < 1 and 0.99 < term[4] < 1


def test_exported_graph_adds_the_envelope_term(tmp_path: Path) -> None:
    """Far outside the training range the served score keeps rising (a forest alone saturates)."""
    d = model_dir(labelled=False)
    meta = json.loads((d / "model.json").read_text())
    a = meta["anomaly"]
    assert a["output"] == am.OUTPUT and a["score_sign"] == 1.0 and a["envelope"]["margin"] == am.ENVELOPE_MARGIN
    s = ort.InferenceSession(str(d / "anomaly.onnx"), providers=["CPUExecutionProvider"])
    assert [o.name for o in s.get_outputs()] == [am.OUTPUT]
    base = np.asarray(a["training_stats"]["center"], dtype=np.float32)
    col = meta["feature_names"].index("temperature.mean")
    env = a["envelope"]
    k = a["features_used"].index("temperature.mean")
    rows = np.repeat(base[None], 4, axis=0)
    for i, widths in enumerate([0.0, 1.0, 5.0, 50.0]):
        rows[i, col] = env["hi"][k] + (widths + env["margin"]) * env["width"][k]
    got = s.run(None, {s.get_inputs()[0].name: rows})[0].reshape(-1)
    # the forest's share is in (0, 1]; the envelope's (0, 1/2, 5/6, 50/51 here) lifts the score past it
    assert (np.diff(got) > 0).all()
    assert got[2] > 1 and got[3] < 2


@pytest.mark.parametrize(
    ("interval", "window", "hop"),
    [(0.1, 30, 1), (1.0, 30, 1), (5.0, 150, 5), (60.0, 1800, 60), (300.0, 3600, 300), (600.0, 3600, 600), (3600.0, 21600, 3600)],
)
def test_window_follows_the_sampling_interval(interval: float, window: float, hop: float) -> None:
    assert derived_window(interval) == (window, hop)


def test_delays_in_hops_cover_a_sparse_window() -> None:
    assert default_delays(30, 1, 1.0) == (3, 10)  # 30 samples per window
    assert default_delays(3600, 600, 600.0) == (6, 6)  # 6 samples: one odd sample is in 6 windows
    assert default_delays(1800, 600, 600.0) == (3, 3)


def _slow_csv(path: Path, step_s: int, n: int) -> Path:
    rng = np.random.default_rng(2)
    t0 = 1767592800
    x = rng.normal(0, 1, (n, 2)) + np.array([10.0, 20.0])
    path.write_text("timestamp,a,b\n" + "".join(f"{t0 + i * step_s},{r[0]:.4f},{r[1]:.4f}\n" for i, r in enumerate(x)))
    return path


def test_train_derives_window_from_ten_minute_samples_and_refuses_too_sparse_windows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _slow_csv(tmp_path / "slow.csv", 600, 600)
    out = tmp_path / "m"
    assert cli_main(["train", "--data", str(data), "--out", str(out), "--trees", "10"]) == 0
    report = capsys.readouterr().out
    assert "window 3600 s, hop 600 s (derived from the sampling interval: samples every ~600 s" in report
    meta = json.loads((out / "model.json").read_text())
    assert (meta["window_s"], meta["hop_s"]) == (3600, 600)
    assert meta["model_alarms"]["on_hops"] == 6 and meta["model_alarms"]["on_delay_s"] == 3600
    assert cli_main(["train", "--data", str(data), "--out", str(out), "--on-hops", "2", "--off-hops", "4", "--trees", "10"]) == 0
    ma = json.loads((out / "model.json").read_text())["model_alarms"]
    assert (ma["on_hops"], ma["off_hops"], ma["off_delay_s"]) == (2, 4, 2400)
    assert cli_main(["train", "--data", str(data), "--out", str(out), "--window-s", "30", "--hop-s", "1"]) == 1
    err = capsys.readouterr().err
    assert "sampled every 600 s: a 30 s window holds 0.05 samples (at least 3 needed)" in err


def test_relations_name_the_signal_that_left_the_others() -> None:
    """b and d follow a; c is independent. A window where b leaves the others' lines, each level
    within its own range, breaks b's relations; the median of each other signal's pairs stays whole."""
    from edgegw.engine.models import relation_z

    rng = np.random.default_rng(5)
    a = rng.uniform(0, 10, 2000)
    x = np.column_stack([a, 2 * a + rng.normal(0, 0.1, 2000), rng.normal(5, 1, 2000), a + rng.normal(0, 0.1, 2000)])
    names = ["a.mean", "b.mean", "c.mean", "d.mean"]
    center, scale = am.robust_scale(x)
    rel = am.fit_relations(x, names, ["a", "b", "c", "d"], center, scale)
    assert rel is not None and rel["features"] == names
    lines = [np.array(rel[k]) for k in ("slope", "intercept", "spread")]

    def rz(row: list[float]) -> np.ndarray:
        return relation_z((np.array(row) - center) / scale, *lines)

    assert np.abs(rz([5.0, 10.0, 5.0, 5.0])).max() < 3
    broken = rz([5.0, 13.0, 5.0, 5.0])
    assert broken[1] > 3 and np.abs(broken[[0, 2, 3]]).max() < 3


def test_alarm_explanation_names_a_broken_relation() -> None:
    from edgegw.config import Profile
    from edgegw.engine.models import load_model_set
    from tests.ml.modelkit import SIGNALS

    ms = load_model_set(model_dir(), "pump", Profile(window_s=30, signals={s: {} for s in SIGNALS}))
    meta = json.loads((model_dir() / "model.json").read_text())
    center = np.asarray(meta["anomaly"]["training_stats"]["center"])
    scale = np.asarray(meta["anomaly"]["training_stats"]["scale"])
    row = center.copy()
    k = meta["feature_names"].index("current.mean")
    row[k] += 4 * scale[k]  # current well off what flow and pressure drive, each level still plausible
    ev = ms.anomaly_evidence(row.astype(np.float32))
    assert ev["top"][0]["signal"] == "current" and ev["top"][0]["feature"] == "current.relation"
