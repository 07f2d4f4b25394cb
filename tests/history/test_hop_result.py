"""The engine's HopResult: the buckets each hop hands to history equal the readings sent."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgegw.config import load_config
from edgegw.engine import window
from edgegw.engine.engine import Engine
from edgegw.records import HopResult
from tests.helpers import EXAMPLE

SIGNALS = ("vibration", "pressure", "temperature", "flow", "current", "suction_pressure")


def make(*over: str) -> tuple[Engine, list[HopResult]]:
    cfg = load_config(EXAMPLE, ["profiles.pump.model=null", *over])
    got: list[HopResult] = []
    e = Engine(cfg, lambda a: None, clock=lambda: 0.0)
    e.on_hop = got.append
    return e, got


def value(asset: int, sig: int, ts: float) -> float:
    return 1.0 + asset + 0.1 * sig + math.sin(ts * 1.7 + sig) * 0.5


def send(e: Engine, sent: dict[tuple[str, str, int], list[float]], t0: float, t1: float, rate: float, hop_each: bool) -> None:
    n = round((t1 - t0) * rate)
    for i in range(n):
        ts = t0 + i / rate
        for a in range(4):
            for j, s in enumerate(SIGNALS):
                v = value(a, j, ts)
                e.ingest(f"pump-{a + 1}", s, ts, v)
                sent.setdefault((f"pump-{a + 1}", s, math.floor(ts)), []).append(v)
        if hop_each:
            e.run_hops()


def buckets(got: list[HopResult]) -> dict[tuple[str, str, int], np.ndarray]:
    out: dict[tuple[str, str, int], np.ndarray] = {}
    for r in got:
        for j in range(len(r.bucket_starts)):
            a = r.assets[int(r.bucket_asset[j])]
            for si, s in enumerate(r.signals):
                key = (a, s, int(r.bucket_starts[j]))
                assert key not in out, f"bucket {key} emitted twice"
                out[key] = r.buckets[:, j, si]
    return out


Key = tuple[str, str, int]


def check(sent: dict[Key, list[float]], got: dict[Key, np.ndarray], keys: list[Key]) -> None:
    for key in keys:
        v = np.array(sent[key])
        want = [len(v), v.mean(), v.min(), v.max(), v[-1]]
        assert key in got, f"bucket {key} never emitted"
        np.testing.assert_allclose(got[key], want, rtol=1e-9, atol=1e-12, err_msg=str(key))


@pytest.mark.parametrize("parts", [True, False])
def test_usual_hops_emit_each_finished_bucket_once(parts: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if parts:  # the way a hop of many assets combines features
        monkeypatch.setattr(window, "PARTS_MIN", 0)
    e, got = make()
    sent: dict[tuple[str, str, int], list[float]] = {}
    send(e, sent, 1000.0, 1045.0, 10.0, hop_each=True)
    res = buckets(got)
    done = [k for k in sent if k[2] < 1044]  # the last bucket is still open
    check(sent, res, done)
    assert max(k[2] for k in res) == 1043
    r = got[-1]
    assert r.features.shape == (len(r.assets), len(r.feature_names))
    assert r.last is not None and r.judged is not None and r.anomaly is not None
    np.testing.assert_allclose(r.last[0], np.array([value(0, j, 1044.0) for j in range(6)]))  # the hop ran at 1044.0
    assert not r.judged.any() and np.isnan(r.anomaly).all()


def test_a_burst_emits_every_bucket_still_in_the_window_once() -> None:
    e, got = make()
    sent: dict[tuple[str, str, int], list[float]] = {}
    send(e, sent, 1000.0, 1005.0, 4.0, hop_each=True)
    send(e, sent, 1005.0, 1020.0, 4.0, hop_each=False)  # a backlog of 15 s in one go, then its hops
    e.run_hops()
    send(e, sent, 1020.0, 1023.0, 4.0, hop_each=True)
    res = buckets(got)
    check(sent, res, [k for k in sent if k[2] < 1022])
    assert sum(len(r.bucket_starts) for r in got) == 4 * 22  # 22 buckets per pump, none twice


def test_a_backlog_longer_than_the_window_keeps_the_newest_buckets() -> None:
    e, got = make()
    sent: dict[tuple[str, str, int], list[float]] = {}
    send(e, sent, 1000.0, 1002.0, 2.0, hop_each=True)
    send(e, sent, 1002.0, 1080.0, 2.0, hop_each=False)  # 78 s, the window holds 30 buckets
    e.run_hops()
    send(e, sent, 1080.0, 1082.0, 2.0, hop_each=True)
    res = buckets(got)
    check(sent, res, [k for k in sent if k[2] < 1001 or 1050 <= k[2] < 1081])
    assert not [k for k in res if 1002 <= k[2] < 1049]


def test_bad_values_travel_with_the_bucket() -> None:
    e, got = make()
    for i in range(30):
        ts = 1000.0 + i * 0.1
        e.ingest("pump-1", "vibration", ts, 3.0)
        e.ingest("pump-1", "pressure", ts, 500.0 if i % 3 == 0 else 5.0)  # outside range [-1, 40]
        e.run_hops()
    bad = {int(r.bucket_starts[j]): r.bucket_bad[j, 1] for r in got for j in range(len(r.bucket_starts))}
    assert bad == {1000: 4.0, 1001: 3.0}  # the third bucket is still open (3 bad ones in it so far)


def test_scores_by_asset_once_the_window_is_warm() -> None:
    from edgegw.gateway import load_models

    cfg = load_config(EXAMPLE)
    got: list[HopResult] = []
    e = Engine(cfg, lambda a: None, load_models(cfg, str(EXAMPLE)), clock=lambda: 0.0)
    e.on_hop = got.append
    send(e, {}, 1000.0, 1033.0, 2.0, hop_each=True)
    first, r = got[0], got[-1]
    assert first.judged is not None and not first.judged.any()
    assert r.judged is not None and r.judged.all() and r.anomaly is not None and np.isfinite(r.anomaly).all()
    assert r.threshold is not None and (r.threshold > 0).all() and r.model_version
    assert r.cause == ["", "", "", ""] or all(isinstance(c, str) for c in r.cause or [])
