"""The page in a real browser (Debian's chromium through Playwright): login, live tiles, alarm rows,
roles, escaping, and reconnecting by itself after a daemon restart. One browser for the module."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.helpers import Collector, publish, pump
from tests.peers import Broker
from tests.web.helpers import PASSWORDS, page_gateway

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
EVIL = "<script>"  # a legal asset id (one topic level) that must show as text

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="no /usr/bin/chromium (apt-get install chromium)")


async def feed(port: int, assets: list[str], hot: str | None = None) -> None:
    """Two readings per asset a hop apart, so each one hops once."""
    t = time.time()
    for dt in (0.0, 1.2):
        for a in assets:
            await publish(port, f"plant/pumps/{a}/telemetry", [pump(vibration=12.5 if a == hot else 3.0, ts=t + dt)])


async def test_page(mosquitto: Broker, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    assets = ["pump-1", "pump-2", "pump-3", EVIL]
    overrides = (f"assets.3.id={EVIL}", "profiles.pump.signals.vibration.off_delay_s=0")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        async with page_gateway(mosquitto.port, tmp_path, *overrides) as gw:
            url = gw.url + "/"
            site = gw.gw.cfg.gateway.site
            ctx0 = await browser.new_context()
            pg0 = await ctx0.new_page()
            await pg0.goto(url)
            assert await pg0.query_selector('input[name="username"]') and not await pg0.query_selector("[data-asset]")
            await ctx0.close()

            async def login(name: str):  # type: ignore[no-untyped-def]
                ctx = await browser.new_context()
                page = await ctx.new_page()
                await page.goto(url)
                await page.fill('input[name="username"]', name)
                await page.fill('input[name="password"]', PASSWORDS[name])
                await page.press('input[name="password"]', "Enter")
                await page.wait_for_selector("[data-asset]")
                return page

            viewer = await login("vera")
            await feed(mosquitto.port, assets)
            for a in assets:
                await viewer.wait_for_selector(f'[data-asset="{a}"][data-state="normal"]', timeout=5000)
            # the evil asset id is text: its tile shows it literally and no script element appeared
            name = await viewer.text_content(f'[data-asset="{EVIL}"] .name')
            assert name == EVIL
            assert await viewer.evaluate("document.querySelectorAll('main script').length") == 0

            async with Collector(mosquitto.port, f"alerts/{site}/#") as sub:
                await feed(mosquitto.port, assets, hot="pump-2")
                row = '[data-alarm-key="pump-2/threshold/vibration"]'
                await viewer.wait_for_selector('[data-asset="pump-2"][data-state="critical"]', timeout=5000)
                await viewer.wait_for_selector(row, timeout=5000)
                assert await viewer.query_selector(f"{row} >> text=Acknowledge") is None, "a viewer is offered Acknowledge"

                operator = await login("otto")
                await operator.click(f"{row} >> text=Acknowledge")
                acked = await sub.wait(lambda s: [d for d in s.alerts(asset="pump-2") if d.get("acked_by")], 5)
                assert acked[-1]["acked_by"] == "otto"
                await operator.wait_for_selector(f'{row}[data-ack="acked"]', timeout=5000)
                await viewer.wait_for_selector(f'{row}[data-ack="acked"]', timeout=5000)  # every browser sees the ack

        # the daemon restarts on the same port: the open page reconnects and follows live again
        async with page_gateway(mosquitto.port, tmp_path, *overrides, web_port=int(gw.url.rsplit(":", 1)[1])):
            await feed(mosquitto.port, assets, hot="pump-3")
            await viewer.wait_for_selector('[data-asset="pump-3"][data-state="critical"]', timeout=8000)
        await browser.close()
