"""Talking to vLLM: JSON calls, SSE pass-through, usage metering, cancellation and error translation."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
from starlette.responses import Response

from server.errors import GatewayError, error_payload, sse_error_event
from server.http1 import FastHTTP1Transport, UpstreamResponse

log = logging.getLogger("server.upstream")
_perf = time.perf_counter
# An upstream "event" larger than this without a blank line is not SSE: stop instead of buffering forever.
MAX_EVENT_BYTES = 1 << 20
# After `data: [DONE]` the engine's body ends with one more (empty) chunk. The relay waits this long for
# it so that the connection goes back to the pool: otherwise almost every stream left its connection
# unfinished, had to close it, and the next stream paid for a new TCP connection before its first token.
END_OF_BODY_WAIT = 0.5

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    # Tells nginx-style proxies in front of us not to buffer either.
    (b"x-accel-buffering", b"no"),
]


class UpstreamClient:
    """The engine's base URL with an httpx client, plus a short path for the two hot calls.

    Chat and completion requests go straight to the transport (`FastHTTP1Transport.post`): httpx's
    client layers (cookies, auth and redirect flows, event hooks) cost ~0.1 ms per request in profiles
    and do nothing for this hop, and its Request/Response objects ~10 µs each. Probes and model listings
    use the ordinary client.
    """

    def __init__(
        self,
        base_url: str,
        connect_timeout: float,
        read_timeout: float,
        max_connections: int,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if transport is None and base_url.startswith("http://"):
            transport = FastHTTP1Transport(max_keepalive=min(max_connections, 1024))
        self.base_url = base_url
        self.transport = transport  # None: https upstream, httpx's own transport via the client
        timeout = httpx.Timeout(connect=connect_timeout, read=read_timeout, write=30.0, pool=connect_timeout)
        self._timeout_ext = timeout.as_dict()
        self._urls: dict[str, httpx.URL] = {}  # parsed once per path: httpx's URL parser is slow
        self.client = httpx.AsyncClient(
            base_url=base_url,
            transport=transport,
            timeout=timeout,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=256),
            # No env proxies or .netrc: traffic goes straight to the engine.
            trust_env=False,
        )

    async def post(
        self, path: str, content: bytes, headers: dict[str, str], *, stream: bool
    ) -> httpx.Response | UpstreamResponse:
        """POST to the engine; with stream=False the body is read before returning."""
        if self.transport is None:
            req = self.client.build_request("POST", path, content=content, headers=headers)
            return await self.client.send(req, stream=stream)
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = httpx.URL(self.base_url + path)
        resp: httpx.Response | UpstreamResponse
        if isinstance(self.transport, FastHTTP1Transport):
            resp = await self.transport.post(url, headers, content, self._timeout_ext)
        else:  # a transport given by the caller (tests: httpx.MockTransport)
            req = httpx.Request(
                "POST", url, content=content, headers=headers, extensions={"timeout": self._timeout_ext}
            )
            resp = await self.transport.handle_async_request(req)
            resp.request = req
        if not stream:
            try:
                await resp.aread()
            finally:
                await resp.aclose()
        return resp

    async def aclose(self) -> None:
        await self.client.aclose()


def translate_error(exc: Exception, metrics: Any) -> GatewayError:
    """An httpx failure before the response -> 502 (down), 504 (timeout)."""
    if isinstance(exc, httpx.TimeoutException):
        metrics.upstream_errors.labels("timeout").inc()
        return GatewayError(504, "upstream_timeout", "The model server did not answer in time.")
    metrics.upstream_errors.labels("unavailable").inc()
    return GatewayError(502, "upstream_unavailable", "The model server is unreachable.")


def translate_response(
    status: int, content: bytes, metrics: Any, retry_after: str | None = None
) -> GatewayError:
    """A non-200 answer from vLLM -> the same OpenAI shape with string codes."""
    try:
        obj = orjson.loads(content)
    except orjson.JSONDecodeError:
        obj = {}
    err = obj.get("error") if isinstance(obj, dict) else None
    if not isinstance(err, dict):
        err = obj if isinstance(obj, dict) else {}
    message = (
        err.get("message") if isinstance(err.get("message"), str) else f"Model server returned HTTP {status}."
    )
    param = err.get("param") if isinstance(err.get("param"), str) else None
    if status in (429, 503):
        metrics.upstream_errors.labels("overloaded").inc()
        return GatewayError(
            503,
            "upstream_overloaded",
            "The model server is overloaded; retry shortly.",
            headers={"Retry-After": retry_after or "1"},
        )
    if status >= 500:
        metrics.upstream_errors.labels("server_error").inc()
        return GatewayError(502, "upstream_error", "The model server failed to answer.")
    if status in (401, 403):
        # The client's key was fine (we checked it); the gateway's own upstream credentials are wrong.
        metrics.upstream_errors.labels("auth").inc()
        return GatewayError(
            502, "upstream_auth_failed", "The gateway could not authenticate to the model server."
        )
    metrics.upstream_errors.labels("client_error").inc()
    if status == 404:
        code = "model_not_found" if "model" in message.lower() else "not_found"
    elif isinstance(err.get("code"), str) and err["code"]:
        code = err["code"]
    else:
        code = "invalid_request_error"
    return GatewayError(status, code, message, param=param)


def upstream_headers(request_id: str, api_key: str | None) -> dict[str, str]:
    h = {"content-type": "application/json", "x-request-id": request_id}
    if api_key:
        h["authorization"] = f"Bearer {api_key}"
    return h


def _has_content(piece: bytes) -> bool:
    """Whether an outgoing SSE piece carries generated text (a non-empty content/text field)."""
    for marker in (b'"content":"', b'"text":"'):
        i = piece.find(marker)
        if i >= 0 and piece[i + len(marker) : i + len(marker) + 1] != b'"':
            return True
    return b'"error"' in piece


class ModelCatalog:
    """The upstream's model ids, cached for a few seconds (None when the upstream cannot be asked).

    Failures are remembered for a second so that an engine outage costs one probe, not one per request.
    """

    FAILURE_TTL = 1.0

    def __init__(
        self,
        client: httpx.AsyncClient,
        headers: Callable[[], dict[str, str]],
        ttl: float,
        timeout: float = 5.0,
    ) -> None:
        self._client = client
        self._headers = headers
        self._ttl = ttl
        self._timeout = timeout
        self._ids: set[str] | None = None
        self._raw: dict[str, Any] | None = None
        self._at = -1e9
        self._lock = asyncio.Lock()

    def _fresh(self) -> bool:
        age = _perf() - self._at
        return age < (self._ttl if self._raw is not None else self.FAILURE_TTL)

    async def listing(self) -> dict[str, Any] | None:
        if self._fresh():
            return self._raw
        async with self._lock:
            if not self._fresh():
                self._raw, self._ids = await self._fetch()
                self._at = _perf()
            return self._raw

    async def _fetch(self) -> tuple[dict[str, Any] | None, set[str] | None]:
        try:
            r = await self._client.get("/v1/models", headers=self._headers(), timeout=self._timeout)
            if r.status_code != 200:
                return None, None
            raw = orjson.loads(r.content)
            return raw, {m["id"] for m in raw.get("data", []) if isinstance(m, dict) and "id" in m}
        except (httpx.HTTPError, orjson.JSONDecodeError, AttributeError, TypeError, KeyError):
            return None, None

    async def ids(self) -> set[str] | None:
        return self._ids if await self.listing() is not None else None


class Readiness:
    """Upstream reachable and able to generate one token; cached so probes never pile onto the engine."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        catalog: ModelCatalog,
        headers: Callable[[], dict[str, str]],
        ttl: float,
        timeout: float,
    ) -> None:
        self._client, self._catalog, self._headers = client, catalog, headers
        self._ttl, self._timeout = ttl, timeout
        self._result: tuple[bool, str] = (False, "not checked yet")
        self._at = -1e9
        self._lock = asyncio.Lock()

    async def check(self) -> tuple[bool, str]:
        if _perf() - self._at < self._ttl:
            return self._result
        async with self._lock:
            if _perf() - self._at >= self._ttl:
                self._result = await self._probe()
                self._at = _perf()
        return self._result

    async def _probe(self) -> tuple[bool, str]:
        try:
            r = await self._client.get("/v1/models", headers=self._headers(), timeout=self._timeout)
            models = (
                [m["id"] for m in orjson.loads(r.content).get("data", [])] if r.status_code == 200 else []
            )
            if not models:
                return False, f"upstream /v1/models answered {r.status_code} with no model"
            body = {"model": models[0], "prompt": "ping", "max_tokens": 1, "temperature": 0}
            g = await self._client.post(
                "/v1/completions", content=orjson.dumps(body), headers=self._headers(), timeout=self._timeout
            )
            if g.status_code != 200:
                return False, f"upstream generation answered {g.status_code}"
            return True, "ok"
        except httpx.TimeoutException:
            return False, "upstream timed out"
        except (httpx.HTTPError, orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            return False, f"upstream unreachable ({type(exc).__name__})"


class StreamRelay(Response):
    """An ASGI response that relays vLLM's SSE stream event by event.

    Each read from the upstream is processed and written to the client before the next read (no
    buffering). A watcher task waits for the client's disconnect (cancelling the pump and closing the
    upstream connection, which makes vLLM abort the request) and for the end of the shutdown grace period.
    """

    def __init__(
        self,
        upstream: httpx.Response,
        ctx: Any,
        *,
        kind: str,
        client_wants_usage: bool,
        guards: Any | None,
        headers: dict[str, str],
        streams: set[Any],
        on_safety_events: Callable[[list[tuple[str, str]]], None] | None = None,
        metrics: Any = None,
    ) -> None:
        self.background = None
        self.status_code = 200
        self.upstream = upstream
        self.ctx = ctx
        self.chat = kind == "chat"
        self.client_wants_usage = client_wants_usage
        self.guards = guards  # ResponseGuard or None
        self.extra_headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        self.streams = streams  # the app's open relays, for the end of a shutdown drain
        self._task: asyncio.Task | None = None
        self._stop_reason = None
        self.metrics = metrics
        self.on_safety_events = on_safety_events
        self.done = False
        self.sent_first = False
        self.last_id = "chatcmpl-angel"  # replaced by the upstream's id from the first event

    async def __call__(self, scope: Any, receive: Callable, send: Callable) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": SSE_HEADERS + self.extra_headers}
        )
        # The pump runs in this task; one small watcher task cancels it when the client disconnects, and
        # the drain timer cancels it (through `self.streams`) when the shutdown grace period runs out.
        self._task = asyncio.current_task()
        self._stop_reason: str | None = None
        watch = asyncio.ensure_future(self._watch(receive))
        self.streams.add(self)
        try:
            try:
                await self._pump(send)
            except asyncio.CancelledError:
                if self._stop_reason is None:
                    raise  # cancelled from outside (forced shutdown): let it propagate
                uncancel = getattr(self._task, "uncancel", None)
                if uncancel is not None:
                    uncancel()
                if self._stop_reason == "disconnect":
                    self.ctx.disconnected = True
                    if self.metrics is not None:
                        self.metrics.client_disconnects.inc()
                    return
                self.ctx.stream_error = "server_shutting_down"
                err = sse_error_event(
                    "The gateway is shutting down; retry the request.", "server_shutting_down"
                )
                await send({"type": "http.response.body", "more_body": True, "body": err})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            watch.cancel()
            self.streams.discard(self)
            # Closing the stream closes the upstream connection: vLLM sees the disconnect and aborts.
            try:
                await self.upstream.aclose()
            except asyncio.CancelledError:
                if self._stop_reason is None:  # a stop() that raced the end of the pump is not an error
                    raise
            if self.guards is not None and self.on_safety_events is not None:
                self.on_safety_events(self.guards.events())

    def stop(self, reason: str) -> None:
        """End the stream from outside: `disconnect` (client gone) or `drain` (grace period over)."""
        if self._stop_reason is None and self._task is not None and not self.done:
            self._stop_reason = reason
            self._task.cancel()

    async def _watch(self, receive: Callable) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.stop("disconnect")

    async def _read_end_of_body(self, rest: Any) -> None:
        """Read what follows [DONE] (normally nothing but the end of the chunked body), briefly."""

        async def drain() -> None:
            size = 0
            async for raw in rest:
                size += len(raw)
                if size > MAX_EVENT_BYTES:
                    return

        try:
            await asyncio.wait_for(drain(), END_OF_BODY_WAIT)
        except (asyncio.TimeoutError, httpx.HTTPError):
            pass  # the connection is then closed instead of reused

    async def _pump(self, send: Callable) -> None:
        buf = b""
        ctx = self.ctx
        chunks = self.upstream.aiter_bytes()  # one iterator: the end of the body is read after [DONE]
        try:
            async for raw in chunks:
                t0 = _perf()
                if b"\r" in raw:
                    raw = raw.replace(b"\r\n", b"\n")
                buf += raw
                if len(buf) > MAX_EVENT_BYTES:
                    self._fail(
                        "The model server sent a malformed event.", "upstream_malformed_response", "malformed"
                    )
                    await send({"type": "http.response.body", "body": self._error_bytes, "more_body": True})
                    break
                out: list[bytes] = []
                while not self.done:
                    i = buf.find(b"\n\n")
                    if i < 0:
                        break
                    event, buf = buf[:i], buf[i + 2 :]
                    piece = self._safe_event(event)
                    if piece:
                        out.append(piece)
                        if not self.sent_first and _has_content(piece):
                            # The first token goes out alone, without waiting for the rest of this read.
                            self.sent_first = True
                            ctx.ttft = _perf() - ctx.t0
                            await send(
                                {"type": "http.response.body", "body": b"".join(out), "more_body": True}
                            )
                            out = []
                if out:
                    await send({"type": "http.response.body", "body": b"".join(out), "more_body": True})
                ctx.overhead += _perf() - t0
                if self.done:
                    break
            if not self.done:
                self._fail(
                    "The model server ended the stream early.", "upstream_disconnected", "disconnected"
                )
                await send({"type": "http.response.body", "body": self._error_bytes, "more_body": True})
        except httpx.TimeoutException:
            await send(
                {
                    "type": "http.response.body",
                    "more_body": True,
                    "body": self._fail("The model server stopped responding.", "upstream_timeout", "timeout"),
                }
            )
        except httpx.HTTPError:
            await send(
                {
                    "type": "http.response.body",
                    "more_body": True,
                    "body": self._fail(
                        "The model server failed mid-stream.", "upstream_disconnected", "disconnected"
                    ),
                }
            )
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        if self.done and not self.ctx.stream_error:
            # The client has its whole answer; here a stop() is a no-op and outside cancellation
            # still reaches the upstream's close in __call__.
            await self._read_end_of_body(chunks)

    def _fail(self, message: str, code: str, kind: str) -> bytes:
        self.done = True
        self.ctx.stream_error = code
        if self.metrics is not None and kind:
            self.metrics.upstream_errors.labels(kind).inc()
        # A safety block is the request's fault (400-like); everything else is the server side's.
        err_type = "invalid_request_error" if code == "content_policy_violation" else "server_error"
        self._error_bytes = sse_error_event(message, code, err_type)
        return self._error_bytes

    def _safe_event(self, event: bytes) -> bytes | None:
        try:
            return self._event(event)
        except (TypeError, AttributeError, KeyError, ValueError, IndexError):
            # JSON of the wrong shape (choices not a list, text not a string, ...): end like malformed SSE.
            return self._fail(
                "The model server sent a malformed event.", "upstream_malformed_response", "malformed"
            )

    def _event(self, event: bytes) -> bytes | None:
        """One SSE event in, the bytes to send out (None to drop it)."""
        if not event.startswith(b"data:"):
            # Comments/keep-alives or multi-line events: vLLM sends neither; pass through untouched.
            return event + b"\n\n" if event.strip() else None
        data = event[5:].strip()
        if data == b"[DONE]":
            self.done = True
            tail = self._finish_guards()
            return tail + b"data: [DONE]\n\n" if not self.ctx.stream_error else tail
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            return self._fail(
                "The model server sent a malformed event.", "upstream_malformed_response", "malformed"
            )
        if not isinstance(obj, dict):
            return self._fail(
                "The model server sent a malformed event.", "upstream_malformed_response", "malformed"
            )
        if "error" in obj or obj.get("object") == "error":
            err = obj.get("error") if isinstance(obj.get("error"), dict) else obj
            msg = err.get("message") if isinstance(err.get("message"), str) else "The model server failed."
            self.done = True
            self.ctx.stream_error = "upstream_error"
            if self.metrics is not None:
                self.metrics.upstream_errors.labels("stream_error").inc()
            return (
                b"data: " + orjson.dumps(error_payload(msg, "server_error", None, "upstream_error")) + b"\n\n"
            )
        self.last_id = obj.get("id", self.last_id)
        usage = obj.get("usage")
        changed = False
        if usage:
            self.ctx.prompt_tokens = usage.get("prompt_tokens")
            self.ctx.completion_tokens = usage.get("completion_tokens")
            if not self.client_wants_usage:
                if not obj.get("choices"):
                    return None  # the usage-only chunk the client did not ask for
                obj.pop("usage")
                changed = True
        if self.guards is not None and obj.get("choices"):
            blocked = self.guards.apply_chunk(obj["choices"], self.chat)
            if blocked is not None:
                return self._fail(blocked, "content_policy_violation", "")
            changed = True
        if not changed:
            return event + b"\n\n"
        return b"data: " + orjson.dumps(obj) + b"\n\n"

    def _finish_guards(self) -> bytes:
        """Text still held back by the output guard when the upstream ends without a finish chunk."""
        if self.guards is None:
            return b""
        tail, blocked = self.guards.finish_all()
        if blocked is not None:
            return self._fail(blocked, "content_policy_violation", "")
        if not tail:
            return b""
        out = b""
        for index, text in tail:
            chunk: dict[str, Any] = {
                "id": self.last_id,
                "object": "chat.completion.chunk" if self.chat else "text_completion",
                "created": int(time.time()),
                "model": self.ctx.model,
            }
            chunk["choices"] = (
                [{"index": index, "delta": {"content": text}, "finish_reason": None}]
                if self.chat
                else [{"index": index, "text": text, "finish_reason": None}]
            )
            out += b"data: " + orjson.dumps(chunk) + b"\n\n"
        return out
