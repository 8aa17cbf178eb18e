"""The SSE relay: vLLM's stream to the client event by event, with usage metering, output guards,
cancellation on client disconnect, the shutdown drain, and an error event when the upstream fails."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from server.bookkeeping import record_safety_events
from server.context import RequestCtx
from server.metrics import Metrics
from server.openai_shapes import SSE_DONE, held_back_chunk, sse_error_event, sse_event
from server.safety import ResponseGuard
from server.upstream.http1 import UpstreamResponse

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


def _has_content(piece: bytes) -> bool:
    """Whether an outgoing SSE piece carries generated text (a non-empty content/text field)."""
    for marker in (b'"content":"', b'"text":"'):
        i = piece.find(marker)
        if i >= 0 and piece[i + len(marker) : i + len(marker) + 1] != b'"':
            return True
    return b'"error"' in piece


class StreamRelay(Response):
    """An ASGI response that relays vLLM's SSE stream event by event.

    Each read from the upstream is processed and written to the client before the next read (no
    buffering). A watcher task waits for the client's disconnect (cancelling the pump and closing the
    upstream connection, which makes vLLM abort the request) and for the end of the shutdown grace period.
    """

    def __init__(
        self,
        upstream: httpx.Response | UpstreamResponse,
        ctx: RequestCtx,
        *,
        kind: str,
        client_wants_usage: bool,
        guards: ResponseGuard | None,
        headers: dict[str, str],
        streams: set[StreamRelay],
        metrics: Metrics,
    ) -> None:
        # Response's own attributes (super().__init__ is skipped: it would render a body).
        self.background = None
        self.status_code = 200
        self.upstream = upstream
        self.ctx = ctx
        self.chat = kind == "chat"
        self.client_wants_usage = client_wants_usage
        self.guards = guards
        self.extra_headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        self.streams = streams  # the app's open relays, for the end of a shutdown drain
        self._task: asyncio.Task | None = None
        self._stop_reason: str | None = None
        self.metrics = metrics
        self.done = False
        self.sent_first = False
        self._error_bytes = b""  # the error event that ended the stream, once one did
        self.last_id = "chatcmpl-angel"  # replaced by the upstream's id from the first event

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": SSE_HEADERS + self.extra_headers}
        )
        # The pump runs in this task; one small watcher task cancels it when the client disconnects, and
        # the drain timer cancels it (through `self.streams`) when the shutdown grace period runs out.
        self._task = asyncio.current_task()
        self._stop_reason = None
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
            if self.guards is not None:
                record_safety_events(self.metrics, self.ctx, self.guards.events())

    def stop(self, reason: str) -> None:
        """End the stream from outside: `disconnect` (client gone) or `drain` (grace period over)."""
        if self._stop_reason is None and self._task is not None and not self.done:
            self._stop_reason = reason
            self._task.cancel()

    async def _watch(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.stop("disconnect")

    async def _read_end_of_body(self, rest: AsyncIterator[bytes]) -> None:
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

    async def _pump(self, send: Send) -> None:
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
        if kind:
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
            return tail + SSE_DONE if not self.ctx.stream_error else tail
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
            self.metrics.upstream_errors.labels("stream_error").inc()
            return sse_error_event(msg, "upstream_error")
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
        return sse_event(obj)

    def _finish_guards(self) -> bytes:
        """Text still held back by the output guard when the upstream ends without a finish chunk."""
        if self.guards is None:
            return b""
        tail, blocked = self.guards.finish_all()
        if blocked is not None:
            return self._fail(blocked, "content_policy_violation", "")
        if not tail:
            return b""
        return b"".join(
            held_back_chunk(self.last_id, self.chat, self.ctx.model, index, text) for index, text in tail
        )
