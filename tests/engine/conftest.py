"""Engine test fixtures."""

from __future__ import annotations

import pytest

from edgegw.engine import window


@pytest.fixture(params=["parts", "sum"])
def parts(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Both ways a hop computes features: the window parts (as for many assets) and the plain
    sum of each window's buckets (as for a few: these tests have 1-3 assets)."""
    if request.param == "parts":
        monkeypatch.setattr(window, "PARTS_MIN", 0)
    return request.param == "parts"
