from __future__ import annotations

import numpy as np

from edgegw.engine.window import RingBuffer


def test_ring_keeps_newest_in_order() -> None:
    rb = RingBuffer(5)
    for i in range(12):
        rb.append(float(i), float(i) * 10)
    ts, vals = rb.view()
    assert ts.tolist() == [7, 8, 9, 10, 11]
    assert vals.tolist() == [70, 80, 90, 100, 110]


def test_window_is_half_open_by_time() -> None:
    rb = RingBuffer(100)
    for i in range(50):
        rb.append(float(i), float(i))
    ts, vals = rb.window(10.0, 20.0)
    assert ts[0] == 10.0 and ts[-1] == 19.0 and len(vals) == 10


def test_partial_fill() -> None:
    rb = RingBuffer(8)
    rb.append(1.0, 2.0)
    ts, _ = rb.view()
    assert len(rb) == 1 and ts.tolist() == [1.0] and np.isnan(RingBuffer(3).first_ts())
