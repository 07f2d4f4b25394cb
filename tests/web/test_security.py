"""The page's security rules, over real HTTP against the gateway's own server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from tests.helpers import Collector, publish, pump
from tests.peers import Broker
from tests.web.helpers import login, page_gateway


def client() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))  # unsafe: keep cookies of an IP host


async def test_rules(mosquitto: Broker, tmp_path: Path) -> None:
    async with page_gateway(mosquitto.port, tmp_path, "web.login_attempts_per_min=3") as p:
        gw = p.gw
        site = gw.cfg.gateway.site
        async with client() as anon:
            # no session: the login page, and every API answers 401
            async with anon.get(p.url + "/") as r:
                text = await r.text()
                assert r.status == 200 and 'name="username"' in text and "data-asset" not in text
            for path in ("/api/state", "/api/events", "/api/gateway", "/api/trend?asset=pump-1", "/api/me"):
                async with anon.get(p.url + path) as r:
                    assert r.status == 401, path
            async with anon.post(p.url + "/api/alarms/ack", json={"keys": ["pump-1/threshold/vibration"]}) as r:
                assert r.status == 401
            # a login from another site is refused
            async with anon.post(
                p.url + "/login",
                data={"username": "otto", "password": "oper-pass-456"},
                headers={"Origin": "http://evil.example"},
            ) as r:
                assert r.status == 403
            # wrong passwords: 401, then the pacing answers 429 even for the right one
            for _ in range(3):
                async with anon.post(
                    p.url + "/login", data={"username": "otto", "password": "nope-nope"}, headers={"Origin": p.url}
                ) as r:
                    assert r.status == 401
            async with anon.post(
                p.url + "/login", data={"username": "otto", "password": "oper-pass-456"}, headers={"Origin": p.url}
            ) as r:
                assert r.status == 429 and int(r.headers["Retry-After"]) > 0
            gw.web.pacer._fails.clear()  # type: ignore[union-attr]

        async with Collector(mosquitto.port, f"alerts/{site}/#") as sub:
            await publish(mosquitto.port, "plant/pumps/pump-1/telemetry", [pump(vibration=12.5)])
            await sub.wait(lambda s: s.alerts(asset="pump-1", state="raised"))
            key = "pump-1/threshold/vibration"
            async with client() as viewer:
                csrf = await login(viewer, p.url, "vera")
                async with viewer.get(p.url + "/api/state") as r:
                    assert key in {f"{a['asset']}/{a['kind']}/{a['source']}" for a in (await r.json())["alarms"]}
                async with viewer.post(
                    p.url + "/api/alarms/ack", json={"keys": [key]}, headers={"X-CSRF-Token": csrf, "Origin": p.url}
                ) as r:
                    assert r.status == 403
            async with client() as op:
                csrf = await login(op, p.url, "otto")
                async with op.post(p.url + "/api/alarms/ack", json={"keys": [key]}, headers={"Origin": p.url}) as r:
                    assert r.status == 403, "no CSRF token"
                async with op.post(
                    p.url + "/api/alarms/ack", json={"keys": [key]}, headers={"X-CSRF-Token": "x" * 32, "Origin": p.url}
                ) as r:
                    assert r.status == 403, "a wrong CSRF token"
                async with op.post(
                    p.url + "/api/alarms/ack",
                    json={"keys": [key]},
                    headers={"X-CSRF-Token": csrf, "Origin": "http://evil.example"},
                ) as r:
                    assert r.status == 403, "another origin"
                await asyncio.sleep(0.3)
                assert not [d for d in sub.alerts(asset="pump-1") if d.get("acked_by")], "a refused request acknowledged"
                async with op.post(
                    p.url + "/api/alarms/ack",
                    json={"keys": [key], "note": "seen"},
                    headers={"X-CSRF-Token": csrf, "Origin": p.url},
                ) as r:
                    body = await r.json()
                    assert r.status == 200 and body["ok"], body
                acked = await sub.wait(lambda s: [d for d in s.alerts(asset="pump-1") if d.get("acked_by")])
                assert acked[-1]["acked_by"] == "otto" and acked[-1]["_topic"].endswith(key)
                # shelve (a reason is required) and unshelve: the page's alarm table shows the shelf
                hdr = {"X-CSRF-Token": csrf, "Origin": p.url}
                async with op.post(p.url + "/api/alarms/shelve", json={"keys": [key], "duration_s": 3600}, headers=hdr) as r:
                    assert r.status == 400 and "reason" in (await r.json())["reason"]
                async with op.post(
                    p.url + "/api/alarms/shelve", json={"keys": [key], "duration_s": 3600, "note": "sensor swap"}, headers=hdr
                ) as r:
                    assert (await r.json())["ok"]
                async with op.get(p.url + "/api/state") as r:
                    shelved = [a for a in (await r.json())["alarms"] if a["asset"] == "pump-1" and a.get("shelved_until")]
                    assert shelved and shelved[0]["shelved_by"] == "otto"
                async with op.post(p.url + "/api/alarms/unshelve", json={"keys": [key]}, headers=hdr) as r:
                    assert (await r.json())["ok"]
                async with op.get(p.url + "/api/state") as r:
                    assert not [a for a in (await r.json())["alarms"] if a["asset"] == "pump-1" and a.get("shelved_until")]
                # logged out: the same cookie no longer works
                async with op.post(p.url + "/logout", headers={"X-CSRF-Token": csrf, "Origin": p.url}) as r:
                    assert r.status == 200
                async with op.get(p.url + "/api/state") as r:
                    assert r.status == 401


@pytest.mark.parametrize("gz", [True, False])
async def test_static_is_versioned_compressed_and_small(mosquitto: Broker, tmp_path: Path, gz: bool) -> None:
    async with page_gateway(mosquitto.port, tmp_path) as p, client() as c:
        await login(c, p.url, "vera")
        async with c.get(p.url + "/") as r:
            html = await r.text()
        assert r.headers["Cache-Control"] == "no-store"
        v = p.gw.web.static.version  # type: ignore[union-attr]
        total = len(html.encode())
        for name in ("app.js", "app.css", "uPlot.iife.min.js", "uPlot.min.css"):
            assert f"/static/{v}/{name}" in html or name == "uPlot.iife.min.js"  # that one loads with the first chart
            async with c.get(
                f"{p.url}/static/{v}/{name}", headers={"Accept-Encoding": "gzip" if gz else "identity"}, auto_decompress=False
            ) as r:
                body = await r.read()
                assert r.status == 200 and "immutable" in r.headers["Cache-Control"]
                assert (r.headers.get("Content-Encoding") == "gzip") == gz
                total += len(body)
        if gz:
            assert total < 300_000, total
        async with c.get(f"{p.url}/static/{v}/../auth.py") as r:
            assert r.status == 404


async def test_https_secure_cookie_and_anonymous_viewers(mosquitto: Broker, tmp_path: Path) -> None:
    import ssl

    from tests.peers import make_pki

    (tmp_path / "pki").mkdir()
    pki = make_pki(tmp_path / "pki")
    tls = (f"web.tls.cert_file={pki['server']}", f"web.tls.key_file={pki['server_key']}", "web.anonymous=viewer")
    async with page_gateway(mosquitto.port, tmp_path, *tls) as p:
        url = p.url.replace("http://", "https://")
        ctx = ssl.create_default_context(cafile=str(pki["ca"]))
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), connector=aiohttp.TCPConnector(ssl=ctx)) as c:
            async with c.get(url + "/api/state") as r:  # anonymous: looks without a login
                assert r.status == 200 and len((await r.json())["tiles"]) == 4
            async with c.get(url + "/api/me") as r:
                me = await r.json()
                assert me["user"] == "anonymous" and me["role"] == "viewer" and me["csrf"] == ""
            async with c.post(
                url + "/api/alarms/ack", json={"keys": ["pump-1/threshold/vibration"]}, headers={"Origin": url}
            ) as r:
                assert r.status == 403  # and never acts
            async with c.post(
                url + "/login",
                data={"username": "otto", "password": "oper-pass-456"},
                headers={"Origin": url},
                allow_redirects=False,
            ) as r:
                cookie = r.headers["Set-Cookie"]
                assert r.status == 303 and "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
