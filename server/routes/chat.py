"""`POST /v1/chat/completions` and `POST /v1/completions`.

Flow: auth -> body -> validation -> model checks -> context length -> rate limit (a token reservation) ->
input rails -> upstream (JSON or SSE relay) -> output rails -> client. Bookkeeping happens in the
middleware afterwards (`server.bookkeeping`), which settles the reservation.

POST on these two paths (and on `/v1/responses`, server/routes/responses.py) is served by `serve_post`
below, which GatewayMiddleware (server/app.py) calls directly: FastAPI's router, dependency injection and
exception middleware do nothing for these requests that `serve_post` does not, yet cost ~0.3 ms per
request before the route runs (the TTFT timeline in benchmarks/README.md). The FastAPI routes never run in
the app; they describe these paths in the OpenAPI schema and answer other methods with 405.

The event loop never waits on a large body: one over `OFFLOAD_BYTES` is parsed, validated, scanned and
serialised in a worker (server/offload.py). From the end of its body a request is cancelled when its
client disconnects (server/upstream/cancel.py), the engine's request with it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import APIRouter
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from server.auth import ApiKey, authenticate
from server.bookkeeping import record_safety_events
from server.context import RequestCtx
from server.errors import GatewayError, error_response
from server.keys import KeyRecord
from server.metrics import Metrics
from server.offload import OFFLOAD_BYTES, Prepared, inspect_body, prepare
from server.openai_shapes import canned_answer
from server.ratelimit import RateLimiterUnavailable
from server.routes.schemas import CHAT_SCHEMA, COMPLETION_SCHEMA
from server.safety import (
    InputCheck,
    ResponseGuard,
    SafetyEngine,
    UncheckableInput,
    check_chat,
    check_completion,
)
from server.state import GatewayState, State
from server.upstream.cancel import CLIENT_CLOSED, ClientGone, ClientWatch
from server.upstream.client import post_ok
from server.upstream.relay import StreamRelay
from server.validation import TEXT_FIELD, Inspected, apply_max_tokens_cap, inspect, parse_json

router = APIRouter()
_perf = time.perf_counter
CHAT, COMPLETION = "chat", "completion"
PATHS = {CHAT: "/v1/chat/completions", COMPLETION: "/v1/completions"}
# A route's whole work after authentication: what `serve_post` runs for a hot path.
Handler = Callable[[Request, GatewayState, KeyRecord], Awaitable[Response]]
# The field OpenAI names in a context-length error.
_PROMPT_PARAM = {PATHS[CHAT]: "messages", PATHS[COMPLETION]: "prompt"}
# Tokens reserved per choice against a TPM limit when a request names no max_tokens, its key has no cap
# and the engine's context length is unknown (vLLM would generate up to the context length).
DEFAULT_RESERVE_TOKENS = 4096


async def serve_post(
    state: GatewayState, scope: Scope, receive: Receive, send: Send, handle: Handler
) -> None:
    """The hot path: every POST on a hot route, called by GatewayMiddleware. Auth, then `handle`,
    without FastAPI's router and dependency injection; a `GatewayError` becomes its OpenAI-shaped answer,
    and a client that left gets nothing (its request is booked as 499)."""
    request = Request(scope, receive)
    ctx: RequestCtx = scope["angel"]
    response: Response | None
    try:
        response = await handle(request, state, await authenticate(request, state))
    except asyncio.CancelledError:
        if ctx.watch is None or not ctx.watch.gone_after_cancel():
            raise  # cancelled from outside (forced shutdown)
        response = None
    except ClientGone:
        response = None
    except GatewayError as err:
        response = error_response(err)
    watch = ctx.watch
    try:
        if response is None:
            _client_left(state, ctx)
            return
        if watch is not None and not isinstance(response, StreamRelay):
            # The answer is ready: a disconnect while it is written cancels nothing, and once it is written
            # the server reports the finished response as a disconnect too. (A relay takes the watch over.)
            watch.close()
        try:
            await response(scope, receive, send)
        except asyncio.CancelledError:
            if watch is None or not watch.gone_after_cancel():
                raise
            _client_left(state, ctx)  # gone before the relay took the watch over
    finally:
        if watch is not None:
            watch.close()


def _client_left(state: GatewayState, ctx: RequestCtx) -> None:
    ctx.disconnected = True
    state.metrics.client_disconnects.inc()
    if not ctx.status:
        ctx.status = CLIENT_CLOSED


async def handle_chat(request: Request, state: GatewayState, key: KeyRecord) -> Response:
    return await _handle(request, state, key, CHAT)


async def handle_completion(request: Request, state: GatewayState, key: KeyRecord) -> Response:
    return await _handle(request, state, key, COMPLETION)


# NEVER CALLED in the app: GatewayMiddleware (server/app.py) serves every POST on these two paths through
# `serve_post` above. These routes put the paths in the OpenAPI schema and make FastAPI answer other
# methods with 405. (No docstrings: FastAPI would publish them as the OpenAPI descriptions.)
@router.post(PATHS[CHAT], openapi_extra=CHAT_SCHEMA)
async def chat_completions(request: Request, state: State, key: ApiKey) -> Response:
    return await handle_chat(request, state, key)


@router.post(PATHS[COMPLETION], openapi_extra=COMPLETION_SCHEMA)
async def completions(request: Request, state: State, key: ApiKey) -> Response:
    return await handle_completion(request, state, key)


def _too_large(limit: int) -> GatewayError:
    return GatewayError(413, "request_too_large", f"Request body exceeds {limit} bytes.")


async def _read_body(request: Request, limit: int) -> bytes:
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
    except ClientDisconnect:
        raise ClientGone() from None
    return b"".join(chunks)


def _expire_body(task: asyncio.Task, expired: list[bool]) -> None:
    expired.append(True)
    task.cancel()


async def read_body(request: Request, limit: int, deadline: float) -> bytes:
    """The request body: 413 past `limit` bytes, 408 when it takes longer than `deadline` seconds,
    ClientGone when the client disconnects while sending it."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    # A body trickled byte by byte would otherwise hold this request (and its socket) forever. The
    # deadline cancels this task from a timer: asyncio.wait_for would start a task per request (an
    # extra event-loop step before the route goes on), and asyncio.timeout needs Python 3.11.
    task = asyncio.current_task()
    assert task is not None
    expired: list[bool] = []
    timer = asyncio.get_running_loop().call_later(deadline, _expire_body, task, expired)
    try:
        return await _read_body(request, limit)
    except asyncio.CancelledError:
        if not expired:
            raise
        uncancel = getattr(task, "uncancel", None)  # Python >= 3.11 counts cancellations
        if uncancel is not None:
            uncancel()
        raise GatewayError(
            408,
            "request_timeout",
            "The request body did not arrive in time.",
            headers={"connection": "close"},
        ) from None
    finally:
        timer.cancel()


async def read_json(request: Request, limit: int, deadline: float) -> dict[str, Any]:
    """The request body as a JSON object (`read_body`, then `server.validation.parse_json`)."""
    return parse_json(await read_body(request, limit, deadline))


async def _handle(request: Request, state: GatewayState, key: KeyRecord, kind: str) -> Response:
    ctx: RequestCtx = request.scope["angel"]
    settings = state.settings
    raw = await read_body(request, settings.max_body_bytes, settings.body_timeout)
    # From here on the client's disconnect cancels whatever this request awaits (a worker, the engine).
    ctx.watch = ClientWatch(request.receive)
    strict = state.safety is not None
    large = len(raw) > OFFLOAD_BYTES
    parsed = await state.offload.run(inspect_body, raw, kind, strict) if large else inspect(raw, kind, strict)
    body = parsed.body
    model = await _check_model(state, key, ctx, body)
    limit = state.catalog.max_model_len(model) if model else None
    _refuse_overlong(parsed, limit, kind, body)
    apply_max_tokens_cap(body, key.max_tokens)
    rl_headers = await _admit(state, key, ctx, _reservation(body, parsed, limit))
    stream = body.get("stream") is True
    options = body.get("stream_options") or {}
    client_usage = stream and bool(options.get("include_usage"))
    if stream:
        # Meter tokens as they stream: usage on every chunk (and the usual final usage chunk); what the
        # client did not ask for is stripped by the relay.
        body["stream_options"] = {**options, "include_usage": True, "continuous_usage_stats": True}

    scan = _input_rails if state.safety is not None else None
    state.cache_salter.apply(body, key)  # the tenant's prefix cache only (server/tenancy.py)
    job = (raw if large else None, body, TEXT_FIELD[kind], kind, scan, key.safety_profile)
    prepared: Prepared = await state.offload.run(prepare, *job) if large else prepare(state.safety, *job)
    guards = None
    check = prepared.check
    if check is not None:
        assert state.safety is not None
        _record_rails(state.metrics, ctx, check)
        if check.canned is not None:
            choices = len(check.verdicts) * (body.get("n") or 1)
            return _canned(kind == CHAT, model or "", check.canned, choices, stream, client_usage, rl_headers)
        guards = ResponseGuard(state.safety, check.verdicts, body.get("n") or 1)

    assert prepared.content is not None
    headers = state.upstream.headers(ctx.request_id)
    path = PATHS[kind]
    ctx.upstream_start = _perf()
    ctx.overhead = ctx.upstream_start - ctx.t0
    if stream:
        wants = (client_usage, client_usage and bool(options.get("continuous_usage_stats")))
        n = body.get("n") or 1
        return await _stream(state, ctx, path, prepared.content, headers, kind, wants, guards, rl_headers, n)
    return await _json(state, ctx, path, prepared.content, headers, guards, rl_headers)


async def _check_model(
    state: GatewayState, key: KeyRecord, ctx: RequestCtx, body: dict[str, Any]
) -> str | None:
    """The model the request is for: the key may use it and the upstream serves it (403, 404 otherwise).
    Without `model` (accepted only with safety off, as vLLM does) it is vLLM's default model."""
    model = body.get("model")
    ids = await state.catalog.ids()
    if not model:
        model = state.catalog.default_model() if ids is not None else None
        if model is not None:
            body["model"] = model
    ctx.model = model[:128] if model else None  # bounded; logged only if served (ctx.model_at_rest)
    ctx.model_known = ids is not None and model in ids
    if not key.allows(model or ""):
        raise GatewayError(
            403, "model_not_allowed", f"This API key may not use model {model!r}.", param="model"
        )
    if ids is not None and model not in ids:
        raise GatewayError(404, "model_not_found", f"The model {model!r} does not exist.", param="model")
    return model


def _refuse_overlong(parsed: Inspected, limit: int | None, kind: str, body: dict[str, Any]) -> None:
    """400 `context_length_exceeded` for a prompt certainly longer than the model reads (no worker, no
    engine call): its token count is at least its characters / MAX_CHARS_PER_TOKEN (server/validation.py)."""
    if limit is None or body.get("truncate_prompt_tokens") is not None:
        return  # unknown context length, or vLLM is asked to truncate rather than refuse
    longest = max(parsed.min_tokens, default=0)
    if longest >= limit:  # vLLM also needs room for one generated token
        what = "messages" if kind == CHAT else "prompt"
        raise GatewayError(
            400,
            "context_length_exceeded",
            f"This model's maximum context length is {limit} tokens. However, your {what} resulted in "
            f"at least {longest} tokens. Please reduce the length of the {what}.",
            param=what,
        )


def _reservation(body: dict[str, Any], parsed: Inspected, limit: int | None) -> int:
    """Tokens to reserve against a TPM limit: every choice's output budget and the prompt's estimate."""
    per_choice = (
        body.get("max_completion_tokens") or body.get("max_tokens") or limit or DEFAULT_RESERVE_TOKENS
    )
    return per_choice * (body.get("n") or 1) * len(parsed.min_tokens) + parsed.est_tokens


async def _admit(state: GatewayState, key: KeyRecord, ctx: RequestCtx, reserve: int = 0) -> dict[str, str]:
    if not key.rpm and not key.tpm:
        return {}
    ctx.ratelimit_key = key.id
    try:
        d = await state.limiter.admit(key.id, key.rpm or 0, key.tpm or 0, reserve)
    except RateLimiterUnavailable:
        state.metrics.ratelimit_backend_errors.inc()
        if state.settings.ratelimit_fail_open:
            return {}
        raise GatewayError(
            503,
            "rate_limiter_unavailable",
            "Rate limits cannot be checked right now.",
            headers={"Retry-After": "1"},
        ) from None
    headers = d.headers()
    if not d.allowed:
        state.metrics.ratelimit_rejections.labels(d.limited_by).inc()
        ctx.ratelimit_key = None  # a refused request adds no tokens
        raise GatewayError(
            429,
            "rate_limit_exceeded",
            f"Rate limit reached for {d.limited_by} per minute.",
            headers={**headers, "Retry-After": str(d.retry_after)},
        )
    ctx.reservation = d.reservation  # settled when the request ends (server.bookkeeping)
    return headers


def _input_rails(engine: SafetyEngine, body: dict[str, Any], kind: str, profile: str | None) -> InputCheck:
    """The input rails over a chat or completion body. Plain computation: for a large body it runs in an
    offload worker (server/offload.py `prepare`), which also applies what the rails rewrote."""
    try:
        if kind == CHAT:
            # the caller's own continuation (vLLM's continue_final_message) and the tool definitions the
            # template writes into the prompt are read too
            prefill = body.get("continue_final_message") is True
            return check_chat(engine, body["messages"], profile, prefill, body.get("tools"))
        return check_completion(engine, body["prompt"], profile)
    except UncheckableInput as exc:
        raise GatewayError(400, "invalid_request_error", str(exc), param=exc.param) from None


def _record_rails(metrics: Metrics, ctx: RequestCtx, check: InputCheck) -> None:
    """The rails' decision on this side: events counted, the x-angel-safety header, a refusal raised."""
    record_safety_events(metrics, ctx, check.events)
    ctx.safety = check.header_value
    if check.blocked is not None:
        raise GatewayError(400, "content_policy_violation", check.blocked)


def _canned(
    chat: bool,
    model: str,
    text: str,
    choices: int,
    stream: bool,
    client_usage: bool,
    headers: dict[str, str],
) -> Response:
    """The safety layer's deterministic answer, shaped like the engine's (no upstream call)."""
    body = canned_answer(chat, model, text, choices, stream=stream, client_usage=client_usage)
    if not stream:
        return Response(body, media_type="application/json", headers=headers)
    return Response(body, media_type="text/event-stream", headers={**headers, "x-accel-buffering": "no"})


async def _json(
    state: GatewayState,
    ctx: RequestCtx,
    path: str,
    content: bytes,
    headers: dict[str, str],
    guards: ResponseGuard | None,
    rl_headers: dict[str, str],
) -> Response:
    param = _PROMPT_PARAM.get(path)
    r = await post_ok(state.upstream, state.metrics, path, content, headers, stream=False, prompt_param=param)
    t_back = _perf()
    try:
        obj = orjson.loads(r.content)
        usage = obj.get("usage") or {}
        ctx.prompt_tokens, ctx.completion_tokens = usage.get("prompt_tokens"), usage.get("completion_tokens")
        out = r.content
        if guards is not None:
            out = _guard_json(state.metrics, ctx, obj, guards)
    except (orjson.JSONDecodeError, AttributeError, TypeError, KeyError):
        state.metrics.upstream_errors.labels("malformed").inc()
        raise GatewayError(
            502, "upstream_malformed_response", "The model server sent a malformed answer."
        ) from None
    ctx.overhead += _perf() - t_back
    return Response(out, media_type="application/json", headers=rl_headers)


def _guard_json(metrics: Metrics, ctx: RequestCtx, obj: dict[str, Any], guards: ResponseGuard) -> bytes:
    """A whole answer through the output guards: every field the client receives (content with its
    logprobs, reasoning, tool-call arguments; completions text with its logprobs)."""
    chat = obj.get("object") != "text_completion"
    try:
        for ch in obj["choices"]:
            blocked = guards.apply_choice(ch, chat)
            if blocked is not None:
                raise GatewayError(400, "content_policy_violation", blocked)
    finally:
        record_safety_events(metrics, ctx, guards.events())
    return orjson.dumps(obj)


async def _stream(
    state: GatewayState,
    ctx: RequestCtx,
    path: str,
    content: bytes,
    headers: dict[str, str],
    kind: str,
    client_usage: tuple[bool, bool],
    guards: ResponseGuard | None,
    rl_headers: dict[str, str],
    n: int = 1,
) -> Response:
    """`client_usage`: whether the client asked for the usage chunk, and for usage on every chunk."""
    param = _PROMPT_PARAM.get(path)
    resp = await post_ok(
        state.upstream, state.metrics, path, content, headers, stream=True, prompt_param=param
    )
    return StreamRelay(
        resp,
        ctx,
        kind=kind,
        client_wants_usage=client_usage[0],
        client_wants_continuous_usage=client_usage[1],
        guards=guards,
        headers=rl_headers,
        streams=state.streams,
        metrics=state.metrics,
        n=n,
        max_event_bytes=state.settings.max_event_bytes,
    )
