"""The SSE relay: vLLM's stream to the client event by event, with usage metering, output guards,
cancellation on client disconnect, the shutdown drain, and an error event when the upstream fails.

Metering: the gateway asks vLLM for `continuous_usage_stats`, so every chunk carries its choice's token
counts so far; a client that disconnects before the final usage chunk is still charged what was streamed
to it. (Counting content chunks instead would undercount under speculative decoding, where one chunk
carries several tokens, and knows nothing of the prompt.) What the client did not ask for is stripped.

Fidelity: vLLM puts a stream's `system_fingerprint` on its terminal chunks (those with a finish_reason)
only when usage was not asked for, and on the usage chunk otherwise. The gateway always asks, so when the
client did not, its terminal chunks wait for the usage chunk (the next event) and get its fingerprint:
the client sees what vLLM sends a client that did not ask for usage.
"""

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
# The default of ANGEL_MAX_EVENT_BYTES: an upstream "event" larger than this without a blank line ends the
# stream instead of buffering forever. Legitimate events can be large (echo with logprobs on a long prompt
# is one event of many MiB), so the bound only keeps a stream's memory finite.
MAX_EVENT_BYTES = 64 << 20
# What is read after `data: [DONE]` at most (normally nothing but the end of the chunked body).
END_OF_BODY_BYTES = 1 << 20
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
    """Whether an outgoing SSE piece carries generated text: a non-empty `content` (chat) or `text`
    (completions) field. Time to first token is measured to this, never to a role-only or empty event, a
    reasoning delta (its key ends in "_content") or an error."""
    for marker in (b'"content":"', b'"text":"'):
        i = piece.find(marker)
        while i >= 0:
            after = i + len(marker)
            if piece[after : after + 1] != b'"' and piece[i - 1 : i] in (b"{", b","):
                return True
            i = piece.find(marker, after)
    return False


def _finishes(choices: list) -> bool:
    first = choices[0]
    if len(choices) == 1 and isinstance(first, dict):  # vLLM sends one choice per chunk
        return first.get("finish_reason") is not None
    return any(isinstance(ch, dict) and ch.get("finish_reason") is not None for ch in choices)


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
        n: int = 1,
        client_wants_continuous_usage: bool = False,
        max_event_bytes: int = MAX_EVENT_BYTES,
    ) -> None:
        # Response's own attributes (super().__init__ is skipped: it would render a body).
        self.background = None
        self.status_code = 200
        self.upstream = upstream
        self.ctx = ctx
        self.chat = kind == "chat"
        self.client_wants_usage = client_wants_usage
        self.client_wants_continuous_usage = client_wants_continuous_usage
        self.n = max(n, 1)  # choices per prompt: a choice's index // n is its prompt's
        self.max_event_bytes = max_event_bytes
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
        # Terminal chunks (and their bytes) waiting for the usage chunk's system_fingerprint.
        self._held: list[tuple[dict, bytes]] = []
        self._completion: dict[int, int] = {}  # choice index -> its completion tokens so far
        self._prompt: dict[int, int] = {}  # prompt index -> its prompt tokens
        self._streamed = 0  # content pieces sent, for an upstream that sends no usage on its chunks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The pump runs in this task. The client's disconnect cancels it: through the request's watch when
        # the route started one (it has watched since the body was read), else through a watcher of its
        # own; the drain timer cancels it (through `self.streams`) when the shutdown grace period runs out.
        self._task = asyncio.current_task()
        self._stop_reason = None
        watch = self.ctx.watch
        own_watch = None
        if watch is not None:
            watch.on_gone = self._client_gone
            watch.start()
        else:
            own_watch = asyncio.ensure_future(self._watch(receive))
        self.streams.add(self)
        try:
            try:
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": SSE_HEADERS + self.extra_headers,
                    }
                )
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
                err = self._release_held(None) + sse_error_event(
                    "The gateway is shutting down; retry the request.", "server_shutting_down"
                )
                await send({"type": "http.response.body", "more_body": True, "body": err})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            if own_watch is not None:
                own_watch.cancel()
            if watch is not None:
                watch.close()
            if self.ctx.completion_tokens is None and self._streamed:
                self.ctx.completion_tokens = self._streamed  # an upstream without usage: at least this
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

    def _client_gone(self) -> None:
        self.stop("disconnect")

    async def _read_end_of_body(self, rest: AsyncIterator[bytes]) -> None:
        """Read what follows [DONE] (normally nothing but the end of the chunked body), briefly."""

        async def drain() -> None:
            size = 0
            async for raw in rest:
                size += len(raw)
                if size > END_OF_BODY_BYTES:
                    return

        try:
            await asyncio.wait_for(drain(), END_OF_BODY_WAIT)
        except (asyncio.TimeoutError, httpx.HTTPError):
            pass  # the connection is then closed instead of reused

    async def _pump(self, send: Send) -> None:
        # Most reads hold whole events and are split in place. Only an event cut across reads waits in
        # `pending` (a bytearray: grows in place, drops consumed events from its front cheaply); `scan` is
        # where the search for its end resumes, so a large event is searched once, not once per read.
        pending = bytearray()
        scan = 0
        ctx = self.ctx
        chunks = self.upstream.aiter_bytes()  # one iterator: the end of the body is read after [DONE]
        try:
            async for raw in chunks:
                t0 = _perf()
                if b"\r" in raw:
                    raw = raw.replace(b"\r\n", b"\n")
                if pending:
                    pending += raw
                data: bytes | bytearray = pending if pending else raw
                start = 0
                out: list[bytes] = []
                while not self.done:
                    i = data.find(b"\n\n", max(start, scan))
                    if i < 0:
                        break
                    event = data[start:i] if data is raw else bytes(memoryview(data)[start:i])
                    start, scan = i + 2, 0
                    piece = self._safe_event(event)
                    if piece:
                        out.append(piece)
                        if not self.sent_first and _has_content(piece):
                            # The first token goes out alone, without waiting for the rest of this read.
                            self.sent_first = True
                            ctx.ttft = _perf() - ctx.t0  # to the first non-empty content (contracts.md)
                            await send(
                                {"type": "http.response.body", "body": b"".join(out), "more_body": True}
                            )
                            out = []
                if data is pending:
                    del pending[:start]
                elif start < len(raw):
                    pending += raw[start:]
                scan = max(len(pending) - 1, 0)
                if not self.done and len(pending) > self.max_event_bytes:
                    out.append(
                        self._fail(
                            "The model server sent an event larger than the gateway relays.",
                            "upstream_malformed_response",
                            "malformed",
                        )
                    )
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
        self._error_bytes = self._release_held(None) + sse_error_event(message, code, err_type)
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
            tail = self._release_held(None) + self._finish_guards()
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
            return self._release_held(None) + sse_error_event(msg, "upstream_error")
        self.last_id = obj.get("id", self.last_id)
        choices = obj.get("choices")
        usage = obj.get("usage")
        changed = False
        if usage:
            if not choices:  # the final usage chunk: the whole request's counts
                self.ctx.prompt_tokens = usage.get("prompt_tokens")
                self.ctx.completion_tokens = usage.get("completion_tokens")
                if not self.client_wants_usage:  # not for the client, but its fingerprint is
                    return self._release_held(obj.get("system_fingerprint")) or None
            else:
                self._meter(choices, usage)
                if not self.client_wants_continuous_usage:
                    obj.pop("usage")
                    changed = True
        elif choices:
            self._count_streamed(choices)
        if self.guards is not None and choices:
            blocked = self.guards.apply_chunk(choices, self.chat)
            if blocked is not None:
                return self._fail(blocked, "content_policy_violation", "")
            changed = True
        piece = sse_event(obj) if changed else event + b"\n\n"
        held = self._release_held(None) if self._held else b""
        if not self.client_wants_usage and choices and _finishes(choices):
            self._held.append((obj, piece))  # until the usage chunk, the next event
            return held or None
        return held + piece

    def _meter(self, choices: list, usage: dict) -> None:
        """vLLM's continuous usage: a chunk carries its choice's completion tokens so far and its prompt's
        tokens (one choice per chunk; choice i belongs to prompt i // n)."""
        index = choices[0].get("index", 0) if isinstance(choices[0], dict) else 0
        completion, prompt = usage.get("completion_tokens") or 0, usage.get("prompt_tokens") or 0
        if index == 0 and len(self._completion) <= 1:  # one choice (the usual case): no sums
            self._completion[0], self._prompt[0] = completion, prompt
            self.ctx.completion_tokens, self.ctx.prompt_tokens = completion, prompt
            return
        self._completion[index] = completion
        self._prompt[index // self.n] = prompt
        self.ctx.completion_tokens = sum(self._completion.values())
        self.ctx.prompt_tokens = sum(self._prompt.values())

    def _count_streamed(self, choices: list) -> None:
        for ch in choices:
            if isinstance(ch, dict):
                delta = ch.get("delta")
                text = delta.get("content") if isinstance(delta, dict) else ch.get("text")
                if text:
                    self._streamed += 1

    def _release_held(self, fingerprint: object) -> bytes:
        """The terminal chunks waiting for the usage chunk, with its `system_fingerprint` when it has one."""
        if not self._held:
            return b""
        held, self._held = self._held, []
        if not isinstance(fingerprint, str):
            return b"".join(piece for _, piece in held)
        return b"".join(sse_event({**obj, "system_fingerprint": fingerprint}) for obj, _ in held)

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
