"""Notification tests leave no retained alarms on the shared broker: other tests watch alerts/#."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.notify import peers


@pytest.fixture(autouse=True)
async def _clear_retained_alarms() -> AsyncIterator[None]:
    yield
    sites, peers.SITES[:] = list(peers.SITES), []
    for port, site in sites:
        if port != 1883:  # configs only validated, never run
            await peers.clear_retained(port, f"alerts/{site}/#")
