"""The page's routes: login, the HTML shell, static files, JSON and the live event stream.

Every `/api/` route needs a session (or `anonymous: viewer`): 401 without one. A state-changing
request is a POST that must carry the session's CSRF token (`X-CSRF-Token`) and an Origin (or
Referer) of this very host: 403 otherwise; acting on alarms takes the operator role: 403 for a
viewer. Text from payloads and config reaches the page as JSON and is put in the DOM as text.
"""

from __future__ import annotations

import asyncio
import html
import math
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson
import structlog
from aiohttp import web
from pydantic import ValidationError

from edgegw import __version__
from edgegw.alarms.commands import AlarmCommand, max_shelve_s
from edgegw.web.auth import COOKIE, User, check_password

if TYPE_CHECKING:
    from edgegw.web.server import WebServer

log = structlog.get_logger("edgegw.web")
ANONYMOUS = User("anonymous", "viewer", "")
SERVER: web.AppKey[WebServer] = web.AppKey("server")
COMMANDS = ("ack", "shelve", "unshelve")
MAX_BODY = 64 * 1024
KEEPALIVE_S = 15.0
RANGES = {"1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(data), status=status, content_type="application/json", headers={"Cache-Control": "no-store"}
    )


def _error(status: int, reason: str) -> web.Response:
    return _json({"ok": False, "reason": reason}, status)


@web.middleware
async def _headers(request: web.Request, handler: Any) -> web.StreamResponse:
    resp: web.StreamResponse = await handler(request)
    resp.headers.setdefault("Content-Security-Policy", CSP)
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    resp.headers.setdefault("X-Frame-Options", "DENY")
    resp.headers.setdefault("Referrer-Policy", "same-origin")
    return resp


def who(request: web.Request) -> User | None:
    s = request.app[SERVER]
    token = request.cookies.get(COOKIE, "")
    user = s.sessions.check(token, s.users) if token else None
    if user is None and s.web.anonymous == "viewer":
        return ANONYMOUS
    return user


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin") or request.headers.get("Referer") or ""
    return bool(origin) and origin != "null" and urlsplit(origin).netloc == request.host


def _need(request: web.Request, role: str = "viewer", post: bool = False) -> User | web.Response:
    """The user, or the response that refuses them."""
    user = who(request)
    if user is None:
        return _error(401, "log in first")
    if post:
        if not _same_origin(request):
            return _error(403, "cross-origin request refused")
        s = request.app[SERVER]
        if user is ANONYMOUS or not s.sessions.csrf_ok(request.cookies.get(COOKIE, ""), request.headers.get("X-CSRF-Token", "")):
            return _error(403, "missing or wrong CSRF token: reload the page")
    if not user.may(role):
        return _error(403, f"{user.role}s may not do this (needs {role})")
    return user


# -- pages


def _page(title: str, body: str, static_version: str, status: int = 200) -> web.Response:
    text = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        f'<link rel="stylesheet" href="/static/{static_version}/uPlot.min.css">'
        f'<link rel="stylesheet" href="/static/{static_version}/app.css">'
        f"</head>{body}</html>"
    )
    return web.Response(text=text, content_type="text/html", status=status, headers={"Cache-Control": "no-store"})


def login_page(request: web.Request, message: str = "", status: int = 200) -> web.Response:
    s = request.app[SERVER]
    msg = f'<p class="login-error" role="alert">{html.escape(message)}</p>' if message else ""
    body = (
        '<body class="login"><main><form method="post" action="/login" class="login-form">'
        f"<h1>edgegw · {html.escape(s.cfg.gateway.id)}</h1>{msg}"
        '<label>User <input name="username" autocomplete="username" required autofocus></label>'
        '<label>Password <input name="password" type="password" autocomplete="current-password" required></label>'
        '<button type="submit">Log in</button></form></main></body>'
    )
    return _page(f"edgegw {s.cfg.gateway.id}: log in", body, s.static.version, status)


async def index(request: web.Request) -> web.Response:
    s = request.app[SERVER]
    user = who(request)
    if user is None:
        return login_page(request)
    v = s.static.version
    body = (
        f'<body><script src="/static/{v}/app.js" defer></script>'
        '<header class="bar"><a href="#/" class="brand" id="gw"></a><nav>'
        '<a href="#/">Overview</a><a href="#/alarms">Alarms <span id="nalarms" class="count"></span></a>'
        '<a href="#/gateway">Gateway</a></nav><span id="who"></span>'
        '<span id="conn" class="conn" title="live updates">●</span></header>'
        '<main id="main"><p class="muted">Loading…</p></main></body>'
    )
    return _page(f"edgegw {s.cfg.gateway.id}", body, v)


async def login(request: web.Request) -> web.Response:
    s = request.app[SERVER]
    if not _same_origin(request):
        return login_page(request, "This login came from another site and was refused.", 403)
    form = await request.post()
    name = str(form.get("username", ""))[:64]
    password = str(form.get("password", ""))[:1024]
    peer = request.remote or "?"
    wait = s.pacer.wait_s(f"ip:{peer}", f"user:{name}")
    if wait > 0:
        resp = login_page(request, f"Too many failed logins: try again in {math.ceil(wait)} s.", 429)
        resp.headers["Retry-After"] = str(math.ceil(wait))
        return resp
    user = s.users.get(name)
    ok = await asyncio.to_thread(check_password, user.hash if user else _DUMMY, password)
    if user is None or not ok:
        s.pacer.failed(f"ip:{peer}", f"user:{name}")
        log.warning("page login failed", user=name, peer=peer)
        return login_page(request, "Wrong user name or password.", 401)
    log.info("page login", user=user.name, role=user.role, peer=peer)
    resp = web.HTTPSeeOther("/")
    resp.set_cookie(
        COOKIE,
        s.sessions.issue(user),
        max_age=int(s.sessions.lifetime_s),
        httponly=True,
        samesite="Strict",
        secure=s.web.tls is not None,
        path="/",
    )
    raise resp


async def logout(request: web.Request) -> web.Response:
    got = _need(request, post=True)
    if isinstance(got, web.Response):
        return got
    s = request.app[SERVER]
    s.sessions.revoke(request.cookies.get(COOKIE, ""))
    resp = _json({"ok": True})
    resp.del_cookie(COOKIE, path="/")
    return resp


async def static(request: web.Request) -> web.Response:
    s = request.app[SERVER]
    return s.static.response(request, request.match_info["name"])


# -- JSON


async def me(request: web.Request) -> web.Response:
    got = _need(request)
    if isinstance(got, web.Response):
        return got
    s = request.app[SERVER]
    token = request.cookies.get(COOKIE, "")
    return _json(
        {
            "user": got.name,
            "role": got.role,
            "csrf": s.sessions.csrf(token) if token and got is not ANONYMOUS else "",
            "gateway": s.cfg.gateway.id,
            "site": s.cfg.gateway.site,
            "version": __version__,
        }
    )


async def state(request: web.Request) -> web.Response:
    got = _need(request)
    if isinstance(got, web.Response):
        return got
    return _json(request.app[SERVER].live.snapshot())


async def events(request: web.Request) -> web.StreamResponse:
    got = _need(request)
    if isinstance(got, web.Response):
        return got
    s = request.app[SERVER]
    resp = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
    await resp.prepare(request)
    live = s.live
    client = live.connect()
    try:
        await resp.write(b"retry: 2000\n\n" + live.snapshot_event())
        while not s.stopping.is_set():
            try:
                await asyncio.wait_for(client.wake.wait(), KEEPALIVE_S)
            except TimeoutError:
                await resp.write(b": keepalive\n\n")
                continue
            if s.stopping.is_set():
                break
            out = live.take(client)
            if out:
                await resp.write(out)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        live.disconnect(client)
    return resp


async def gateway_info(request: web.Request) -> web.Response:
    got = _need(request)
    if isinstance(got, web.Response):
        return got
    s = request.app[SERVER]
    info = dict(s.port.info())
    info.update(version=__version__, page_clients=len(s.live.clients), page_uptime_s=round(time.time() - s.started, 1))
    if s.history is not None:
        info["history_mb"] = await asyncio.to_thread(s.history.size_mb)
    return _json(info)


def _span(request: web.Request) -> tuple[float, float]:
    """(start, end) from `range` (1h 24h 7d 30d) and `end` (epoch s, default now)."""
    span = RANGES.get(request.query.get("range", "1h"), 3600)
    try:
        end = float(request.query.get("end") or time.time())
    except ValueError:
        end = time.time()
    if not math.isfinite(end):
        end = time.time()
    return end - span, end


async def trend(request: web.Request) -> web.Response:
    got = _need(request)
    if isinstance(got, web.Response):
        return got
    s = request.app[SERVER]
    asset = request.query.get("asset", "")
    if asset not in s.live.tiles:
        return _error(404, "no such asset")
    start, end = _span(request)
    try:
        points = max(10, min(2000, int(request.query.get("points", "1000"))))
    except ValueError:
        points = 1000
    history = s.history
    if history is None:
        return _error(503, "no history on this gateway (it needs a state directory)")
    try:
        data = await asyncio.to_thread(history.trend, asset, start, end, points)
    except Exception as e:  # a bad query must not cost the page; the log has the trace
        log.exception("trend query failed", asset=asset)
        return _error(500, f"history query failed: {type(e).__name__}")
    return _json({"asset": asset, "start": start, "end": end, **data})


async def alarm_history(request: web.Request) -> web.Response:
    got = _need(request)
    if isinstance(got, web.Response):
        return got
    s = request.app[SERVER]
    start, end = _span(request)
    history = s.history
    if history is None:
        return _error(503, "no history on this gateway (it needs a state directory)")
    asset = request.query.get("asset") or None
    kind = request.query.get("kind") or None
    try:
        rows = await asyncio.to_thread(history.journal, start, end, asset, kind)
    except Exception as e:  # as in trend
        log.exception("alarm history query failed")
        return _error(500, f"history query failed: {type(e).__name__}")
    return _json({"start": start, "end": end, "rows": rows})


async def alarm_command(request: web.Request) -> web.Response:
    command = request.match_info["command"]
    if command not in COMMANDS:
        return _error(404, f"unknown command {command!r}")
    got = _need(request, "operator", post=True)
    if isinstance(got, web.Response):
        return got
    s = request.app[SERVER]
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return _error(400, "expected a JSON body")
    if not isinstance(body, dict):
        return _error(400, "expected a JSON object")
    keys = body.get("keys")
    note = body.get("note", "")
    duration = body.get("duration_s")
    if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys) or len(keys) > 500:
        return _error(400, "keys: a list of 1-500 alarm keys asset/kind/source")
    if not isinstance(note, str) or len(note) > 1000:
        return _error(400, "note: text of at most 1000 characters")
    if command == "shelve":
        if not isinstance(duration, int | float) or not math.isfinite(duration) or duration <= 0:
            return _error(400, "duration_s: a number of seconds > 0")
        if not note.strip():
            return _error(400, "note: a shelve needs a reason")
        if duration > max_shelve_s(s.cfg):
            return _error(400, f"duration_s: the longest shelf allowed is {max_shelve_s(s.cfg):g} s")
    else:
        duration = None
    results = []
    for key in keys:
        parts = key.split("/", 2)
        if len(parts) != 3 or not all(parts):
            results.append({"key": key, "ok": False, "reason": "not asset/kind/source"})
            continue
        try:
            cmd = AlarmCommand(asset=parts[0], kind=parts[1], source=parts[2], by=got.name, note=note, duration_s=duration)
        except ValidationError as e:
            results.append({"key": key, "ok": False, "reason": "; ".join(str(err["msg"]) for err in e.errors())})
            continue
        ok, reason = s.port.command(command, cmd) if s.port.command else (False, "this gateway takes no alarm commands")
        results.append({"key": key, "ok": ok, "reason": reason})
        log.info("page alarm command", command=command, key=key, by=got.name, ok=ok, reason=reason)
    return _json({"ok": all(r["ok"] for r in results), "results": results})


_DUMMY = (
    "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"  # an unknown user costs a check too
)


def build_app(server: WebServer) -> web.Application:
    app = web.Application(middlewares=[_headers], client_max_size=MAX_BODY)
    app[SERVER] = server
    app.router.add_get("/", index)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/static/{version}/{name}", static)
    app.router.add_get("/api/me", me)
    app.router.add_get("/api/state", state)
    app.router.add_get("/api/events", events)
    app.router.add_get("/api/gateway", gateway_info)
    app.router.add_get("/api/trend", trend)
    app.router.add_get("/api/alarms/history", alarm_history)
    app.router.add_post("/api/alarms/{command}", alarm_command)
    return app
