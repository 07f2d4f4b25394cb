from __future__ import annotations

from collections.abc import Iterator

import pytest
import sklearn.ensemble  # noqa: F401 - load the OpenMP runtime so the limit applies to it
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Fitting with more threads than free cores only contends on a small shared machine."""
    with threadpool_limits(limits=1):
        yield
