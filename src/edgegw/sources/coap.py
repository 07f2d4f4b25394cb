"""CoAP source (aiocoap, UDP): observe a device's resource, poll it, or serve an endpoint that
constrained devices POST/PUT their readings to.

A message is decoded by its Content-Format option (SenML JSON 110, SenML CBOR 112, JSON 50 with
the field mapping, text/plain 0 as a number); `format` says what to assume when the option is
absent. In server mode bad input is answered 4.xx (4.00 malformed, 4.13 too large, 4.15
unsupported format) so the device learns of it; in client modes it is counted and dropped.

Observation follows RFC 7641: a notification stream that falls silent for longer than the last
Max-Age (or `observe_timeout_s`) is re-registered; while registering fails, the resource is
polled every `poll_s` and observing is tried again every `reobserve_s`.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import aiocoap
import structlog
from aiocoap import error as coap_error
from aiocoap import resource
from aiocoap.numbers.codes import Code

from edgegw.backoff import Backoff
from edgegw.config import CoapSource, GatewayConfig
from edgegw.intake import Intake
from edgegw.runtime import Link, LinkStats, supervise
from edgegw.sources.payloads import JsonDecoder, NumberDecoder, SenmlDecoder

log = structlog.get_logger("edgegw.sources.coap")

# Content-Format numbers (RFC 7252 12.3, RFC 8428 12.3) -> our decoders
CF_TEXT, CF_JSON, CF_SENML_JSON, CF_SENML_CBOR = 0, 50, 110, 112
_FORMAT_OF_CF = {CF_TEXT: "number", CF_JSON: "json", CF_SENML_JSON: "senml", CF_SENML_CBOR: "senml-cbor"}
_TRANSPORTS = ["udp6"]  # plain CoAP over UDP; no TCP/TLS/WebSocket listeners, no OSCORE


class Outcome:
    """Why a payload was or was not taken; server mode turns it into a response code."""

    OK = "ok"
    MALFORMED = "malformed"
    UNSUPPORTED = "unsupported_format"
    TOO_LARGE = "oversized"


class PayloadDecoder:
    """One CoAP payload -> values, chosen by Content-Format; reports an `Outcome`, never raises."""

    def __init__(self, spec: CoapSource, intake: Intake) -> None:
        self.intake = intake
        self.default = spec.format
        self.signal = spec.signal
        self.max_payload = spec.max_payload_bytes
        self._json = JsonDecoder(spec.fields, spec.timestamp, intake)
        self._senml = SenmlDecoder(spec.fields, intake)
        self._number = NumberDecoder(intake)

    def decode(self, payload: bytes, cf: int | None, asset: str, signal: str | None, now: float) -> str:
        intake = self.intake
        intake.message(len(payload))
        if len(payload) > self.max_payload:
            intake.reject("oversized", asset=asset, bytes=len(payload))
            return Outcome.TOO_LARGE
        fmt: str
        if cf is None:
            fmt = self.default
            if fmt == "senml" and payload[:1] and 0x80 <= payload[0] <= 0x9F:
                fmt = "senml-cbor"  # a CBOR array: SenML CBOR sent without its Content-Format
        else:
            fmt = _FORMAT_OF_CF.get(cf, "")
        if fmt == "senml" or fmt == "senml-cbor":
            ok = self._senml.decode(payload, asset, now, "cbor" if fmt == "senml-cbor" else "json")
            return Outcome.OK if ok else Outcome.MALFORMED
        if fmt == "json":
            return Outcome.OK if self._json.decode(payload, asset, now, whole=True) else Outcome.MALFORMED
        if fmt == "number" and (signal or self.signal):
            ok = self._number.decode(payload, asset, signal or self.signal or "", now)
            return Outcome.OK if ok else Outcome.MALFORMED
        intake.reject("unsupported_format", asset=asset, content_format=cf)
        return Outcome.UNSUPPORTED


def _cf(msg: aiocoap.Message) -> int | None:
    cf = msg.opt.content_format
    return None if cf is None else int(cf)


# ---------------------------------------------------------------- server mode


class PathTemplate:
    """`pumps/{asset}` or `pumps/{asset}/{signal}` -> a matcher over Uri-Path segments."""

    def __init__(self, template: str) -> None:
        self.parts = tuple(template.strip("/").split("/"))

    def match(self, path: tuple[str, ...]) -> tuple[str, str | None] | None:
        if len(path) != len(self.parts):
            return None
        asset, signal = "", None
        for want, got in zip(self.parts, path, strict=True):
            if want == "{asset}":
                asset = got
            elif want == "{signal}":
                signal = got
            elif want != got:
                return None
        return (asset, signal) if asset and signal != "" else None


_RESPONSE = {
    Outcome.OK: Code.CHANGED,
    Outcome.MALFORMED: Code.BAD_REQUEST,
    Outcome.UNSUPPORTED: Code.UNSUPPORTED_CONTENT_FORMAT,
    Outcome.TOO_LARGE: Code.REQUEST_ENTITY_TOO_LARGE,
}


class ReadingsResource(resource.Resource):
    """The whole server site: every POST/PUT whose path fits the template is a batch of readings."""

    def __init__(self, template: PathTemplate, decoder: PayloadDecoder, intake: Intake, assets: frozenset[str]) -> None:
        super().__init__()
        self.assets = assets
        self.template = template
        self.decoder = decoder
        self.intake = intake

    async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
        return self.take(request)

    async def render_put(self, request: aiocoap.Message) -> aiocoap.Message:
        return self.take(request)

    def take(self, request: aiocoap.Message) -> aiocoap.Message:
        m = self.template.match(tuple(request.opt.uri_path))
        if m is None:
            self.intake.reject("unknown_path", path="/".join(request.opt.uri_path)[:120])
            return aiocoap.Message(code=Code.NOT_FOUND, payload=b"no such readings path")
        asset, signal = m
        if asset not in self.assets:  # tell the device now, rather than count its every post as unknown
            self.intake.reject("unknown_asset", asset=asset[:60])
            return aiocoap.Message(code=Code.NOT_FOUND, payload=b"unknown asset")
        try:
            outcome = self.decoder.decode(request.payload, _cf(request), asset, signal, time.time())
        except Exception:  # a decoder bug answers 5.00 and is loud in the log; the server keeps running
            self.intake.reject("decoder_error", asset=asset)
            log.exception("decoder failed", asset=asset)
            return aiocoap.Message(code=Code.INTERNAL_SERVER_ERROR)
        return aiocoap.Message(code=_RESPONSE[outcome], payload=b"" if outcome == Outcome.OK else outcome.encode())


# ---------------------------------------------------------------- the source


class CoapStats(LinkStats):
    notifications: int
    registrations: int
    polls: int


class CoapTelemetrySource:
    """One CoAP source: a server endpoint, or one remote resource observed or polled."""

    def __init__(self, spec: CoapSource, cfg: GatewayConfig, intake: Intake, name: str) -> None:
        self.name = name
        self.spec = spec
        self.intake = intake
        self.connected = False  # serving, observing, or the last poll answered
        where = f"{spec.bind}:{spec.port}" if spec.mode == "server" else str(spec.uri)
        self.link = Link(name, where)
        self.backoff = Backoff(initial=1.0, cap=30.0)
        self.decoder = PayloadDecoder(spec, intake)
        self.asset = spec.asset or (spec.uri or "").rstrip("/").rpartition("/")[2]
        self.notifications = 0  # observe notifications and poll responses taken
        self.registrations = 0  # successful observe registrations
        self.polls = 0
        self.assets = frozenset(a.id for a in cfg.assets) if spec.mode == "server" else frozenset([self.asset])

    def stats(self) -> CoapStats:
        st = CoapStats(**self.link.stats(), notifications=self.notifications, registrations=self.registrations, polls=self.polls)
        st["connected"] = self.connected  # serving, observing, or the last poll answered
        return st

    async def run(self) -> None:
        await supervise(self.link, self._session, self.backoff, expected=(OSError,))

    async def _session(self, link: Link) -> None:
        """A server endpoint or a client context; a failure (a port taken, a library surprise) ends it."""
        before = self.notifications + self.intake.messages_in
        try:
            if self.spec.mode == "server":
                await self._serve(link)
            else:
                await self._client(link)
        finally:
            self.connected = False
            if self.notifications + self.intake.messages_in != before:
                link.progress()

    # -- server

    async def _serve(self, link: Link) -> None:
        spec = self.spec
        site = ReadingsResource(PathTemplate(spec.path), self.decoder, self.intake, self.assets)
        ctx = await aiocoap.Context.create_server_context(site, bind=(spec.bind, spec.port), transports=_TRANSPORTS)
        self.connected = True
        link.up(source=self.name, path=spec.path)
        log.info("coap server listening", source=self.name, bind=f"{spec.bind}:{spec.port}", path=spec.path)
        try:
            await asyncio.Future()  # serve until cancelled
        finally:
            await _shutdown(ctx)

    # -- client: observe with polling fallback, or plain polling

    def _take(self, msg: aiocoap.Message) -> None:
        if not msg.code.is_successful():
            self.intake.reject("coap_error_response", asset=self.asset, code=str(msg.code))
            return
        self.notifications += 1
        try:
            self.decoder.decode(msg.payload, _cf(msg), self.asset, None, time.time())
        except Exception:  # a decoder bug must not end the observation; it is loud in the log
            self.intake.reject("decoder_error", asset=self.asset)
            log.exception("decoder failed", source=self.name)

    async def _client(self, link: Link) -> None:
        ctx = await aiocoap.Context.create_client_context(transports=_TRANSPORTS)
        link.up(source=self.name, uri=self.spec.uri, mode=self.spec.mode)
        try:
            if self.spec.mode == "poll":
                await self._poll(ctx, math.inf)
            else:
                backoff = Backoff(initial=self.spec.poll_s, cap=self.spec.reobserve_s)
                while True:
                    result = await self._observe(ctx)
                    if result == "stopped":
                        backoff.reset()  # notifications flowed, then stopped: register again right away
                    elif result == "not_observable":
                        await self._poll(ctx, self.spec.reobserve_s)
                    else:  # unreachable, or silent from the start: poll meanwhile, then try again
                        await self._poll(ctx, backoff.next())
        finally:
            self.connected = False
            await _shutdown(ctx)

    async def _get(self, ctx: aiocoap.Context, observe: bool) -> tuple[Any, aiocoap.Message | None]:
        req = aiocoap.Message(code=Code.GET, uri=self.spec.uri, observe=0 if observe else None)
        pr = ctx.request(req)
        try:
            async with asyncio.timeout(self.spec.request_timeout_s):
                first = await pr.response
        except (TimeoutError, coap_error.Error) as e:
            if observe:
                _cancel(pr.observation)
            self.intake.reject("coap_request_failed", asset=self.asset, error=type(e).__name__)
            self.connected = False
            return pr, None
        return pr, first

    async def _observe(self, ctx: aiocoap.Context) -> str:
        """Register and take notifications until they stop: 'stopped' when any came after the
        first, 'failed' when none did or registering failed, 'not_observable'."""
        pr, first = await self._get(ctx, observe=True)
        if first is None:
            return "failed"
        self._take(first)
        if first.opt.observe is None or not first.code.is_successful():
            log.info(
                "resource not observable, polling",
                source=self.name,
                uri=self.spec.uri,
                code=str(first.code),
                next_try_s=self.spec.reobserve_s,
            )
            return "not_observable"
        self.connected = True
        self.registrations += 1
        log.info("observing", source=self.name, uri=self.spec.uri)
        last, flowed = first, False
        notifications = pr.observation.__aiter__()
        try:
            while True:
                max_age = last.opt.max_age if last.opt.max_age is not None else 60
                silence = self.spec.observe_timeout_s or max_age + 5.0
                try:
                    async with asyncio.timeout(silence):
                        last = await notifications.__anext__()
                except TimeoutError:
                    log.warning("notifications stopped, re-registering", source=self.name, silent_s=silence)
                    return "stopped" if flowed else "failed"
                except StopAsyncIteration:
                    log.info("observation ended by the server", source=self.name)
                    return "stopped" if flowed else "failed"
                except coap_error.Error as e:
                    log.warning("observation failed", source=self.name, error=str(e) or type(e).__name__)
                    return "stopped" if flowed else "failed"
                flowed = True
                self._take(last)
        finally:
            self.connected = False
            _cancel(pr.observation)

    async def _poll(self, ctx: aiocoap.Context, duration: float) -> None:
        """GET every poll_s for `duration` seconds."""
        end = time.monotonic() + duration
        while time.monotonic() < end:
            started = time.monotonic()
            _, resp = await self._get(ctx, observe=False)
            if resp is not None:
                self.polls += 1
                self.connected = resp.code.is_successful()
                self._take(resp)
            await asyncio.sleep(min(self.spec.poll_s - (time.monotonic() - started), end - time.monotonic()))


def _cancel(observation: Any) -> None:
    """Stop an observation unless aiocoap already has (it does on errors; twice is an error)."""
    if not observation.cancelled:
        observation.cancel()


async def _shutdown(ctx: aiocoap.Context) -> None:
    """Close a context; bounded, because it runs while the source is being cancelled."""
    try:
        async with asyncio.timeout(5.0):
            await ctx.shutdown()
    except (TimeoutError, OSError, coap_error.Error) as e:
        log.warning("coap context did not shut down cleanly", error=str(e) or type(e).__name__)


def build(spec: CoapSource, cfg: GatewayConfig, intake: Intake, name: str) -> CoapTelemetrySource:
    return CoapTelemetrySource(spec, cfg, intake, name)
