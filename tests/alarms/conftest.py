"""Alarm tests leave no retained alarms on the shared broker: other tests watch alerts/#."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.notify import peers

SITES: list[tuple[int, str]] = []  # (broker port, site) a test ran a gateway for


def leaves(port: int, site: str) -> None:
    """The test's gateway may leave retained alarms under alerts/{site}/: deleted after the test."""
    SITES.append((port, site))


@pytest.fixture(autouse=True)
async def _clear_retained_alarms() -> AsyncIterator[None]:
    yield
    sites = [*SITES, *peers.SITES]
    SITES[:], peers.SITES[:] = [], []
    for port, site in sites:
        if port != 1883:
            await peers.clear_retained(port, f"alerts/{site}/#")
