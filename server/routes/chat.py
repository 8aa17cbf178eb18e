"""`POST /v1/chat/completions` and `POST /v1/completions`.

Flow: auth -> body -> validation -> model checks -> rate limit -> input rails -> upstream (JSON or SSE
relay) -> output rails -> client. Bookkeeping happens in the middleware afterwards (`server.bookkeeping`).

POST on these two paths is served by `serve_post` below, which GatewayMiddleware (server/app.py) calls
directly: FastAPI's router, dependency injection and exception middleware do nothing for these requests
that `serve_post` does not, yet cost ~0.3 ms per request before the route runs (the TTFT timeline in
benchmarks/README.md). The two FastAPI routes never run in the app; they describe these paths in the
OpenAPI schema and answer other methods with 405.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from server.auth import ApiKey, authenticate
from server.bookkeeping import record_safety_events
from server.context import RequestCtx
from server.errors import GatewayError, error_response
from server.keys import KeyRecord
from server.metrics import Metrics
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
from server.upstream.client import translate_error, translate_response
from server.upstream.relay import StreamRelay
from server.validation import apply_max_tokens_cap, validate_chat, validate_completion

router = APIRouter()
_perf = time.perf_counter
CHAT, COMPLETION = "chat", "completion"
PATHS = {CHAT: "/v1/chat/completions", COMPLETION: "/v1/completions"}
HOT_PATHS = {path: kind for kind, path in PATHS.items()}  # what GatewayMiddleware sends to serve_post
_MAX_DUMP_DEPTH = 254  # orjson.dumps' nesting limit


async def serve_post(state: GatewayState, scope: Scope, receive: Receive, send: Send, kind: str) -> None:
    """The hot path: every POST on `PATHS[kind]`, called by GatewayMiddleware. Auth, then the route,
    without FastAPI's router and dependency injection; a `GatewayError` becomes its OpenAI-shaped answer."""
    request = Request(scope, receive)
    try:
        response = await _handle(request, state, await authenticate(request, state), kind)
    except GatewayError as err:
        response = error_response(err)
    await response(scope, receive, send)


# NEVER CALLED in the app: GatewayMiddleware (server/app.py) serves every POST on these two paths through
# `serve_post` above. These routes put the paths in the OpenAPI schema and make FastAPI answer other
# methods with 405. (No docstrings: FastAPI would publish them as the OpenAPI descriptions.)
@router.post(PATHS[CHAT], openapi_extra=CHAT_SCHEMA)
async def chat_completions(request: Request, state: State, key: ApiKey) -> Response:
    return await _handle(request, state, key, CHAT)


@router.post(PATHS[COMPLETION], openapi_extra=COMPLETION_SCHEMA)
async def completions(request: Request, state: State, key: ApiKey) -> Response:
    return await _handle(request, state, key, COMPLETION)


def _too_large(limit: int) -> GatewayError:
    return GatewayError(413, "request_too_large", f"Request body exceeds {limit} bytes.")


async def _read_body(request: Request, limit: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _expire_body(task: asyncio.Task, expired: list[bool]) -> None:
    expired.append(True)
    task.cancel()


async def read_json(request: Request, limit: int, deadline: float) -> dict[str, Any]:
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
        raw = await _read_body(request, limit)
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
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise GatewayError(400, "invalid_request_error", "Request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise GatewayError(400, "invalid_request_error", "Request body must be a JSON object.")
    # orjson reads up to 1024 levels but writes at most 254, and the body is re-serialised for the
    # upstream: refuse what cannot be forwarded. Only bodies with that many brackets can be that deep,
    # so the trial serialisation is skipped for ordinary requests.
    if raw.count(b"[") + raw.count(b"{") > _MAX_DUMP_DEPTH:
        try:
            orjson.dumps(body)
        except TypeError:
            raise GatewayError(400, "invalid_request_error", "Request body is nested too deeply.") from None
    return body


async def _handle(request: Request, state: GatewayState, key: KeyRecord, kind: str) -> Response:
    ctx: RequestCtx = request.scope["angel"]
    body = await read_json(request, state.settings.max_body_bytes, state.settings.body_timeout)
    (validate_chat if kind == CHAT else validate_completion)(body)
    model = body["model"]
    ctx.model = model[:128]  # for the audit row and log line; bounded
    if not key.allows(model):
        raise GatewayError(
            403, "model_not_allowed", f"This API key may not use model {model!r}.", param="model"
        )
    ids = await state.catalog.ids()
    if ids is not None and model not in ids:
        raise GatewayError(404, "model_not_found", f"The model {model!r} does not exist.", param="model")
    ctx.model_known = ids is not None
    apply_max_tokens_cap(body, key.max_tokens)
    rl_headers = await _admit(state, key, ctx)
    stream = body.get("stream") is True
    client_usage = stream and bool((body.get("stream_options") or {}).get("include_usage"))

    guards = None
    if state.safety is not None:
        check = _input_rails(state.safety, state.metrics, ctx, key, body, kind)
        if check.canned is not None:
            choices = len(check.verdicts) * (body.get("n") or 1)
            return _canned(kind == CHAT, model, check.canned, choices, stream, client_usage, rl_headers)
        guards = ResponseGuard(state.safety, check.verdicts, body.get("n") or 1)

    if stream:
        # Always meter tokens: ask for the usage chunk and strip it later if the client did not.
        body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
    content = orjson.dumps(body)
    headers = state.upstream.headers(ctx.request_id)
    path = PATHS[kind]
    ctx.upstream_start = _perf()
    ctx.overhead = ctx.upstream_start - ctx.t0
    if stream:
        return await _stream(state, ctx, path, content, headers, kind, client_usage, guards, rl_headers)
    return await _json(state, ctx, path, content, headers, guards, rl_headers)


async def _admit(state: GatewayState, key: KeyRecord, ctx: RequestCtx) -> dict[str, str]:
    if not key.rpm and not key.tpm:
        return {}
    ctx.ratelimit_key = key.id
    try:
        d = await state.limiter.admit(key.id, key.rpm or 0, key.tpm or 0)
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
    return headers


def _input_rails(
    engine: SafetyEngine, metrics: Metrics, ctx: RequestCtx, key: KeyRecord, body: dict[str, Any], kind: str
) -> InputCheck:
    profile = key.safety_profile
    try:
        if kind == CHAT:
            check = check_chat(engine, body["messages"], profile)
        else:
            check = check_completion(engine, body["prompt"], profile)
    except UncheckableInput as exc:
        raise GatewayError(400, "invalid_request_error", str(exc), param=exc.param) from None
    record_safety_events(metrics, ctx, check.events)
    ctx.safety = check.header_value
    blocked = check.blocked
    if blocked is not None:
        raise GatewayError(400, "content_policy_violation", blocked)
    if check.canned is None:
        check.apply_to(body)
    return check


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
    try:
        r = await state.upstream.post(path, content, headers, stream=False)
    except httpx.HTTPError as exc:
        raise translate_error(exc, state.metrics) from None
    t_back = _perf()
    if r.status_code != 200:
        raise translate_response(r.status_code, r.content, state.metrics, r.headers.get("retry-after"))
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
    try:
        for ch in obj["choices"]:
            msg = ch.get("message")
            text = msg.get("content") if isinstance(msg, dict) else ch.get("text")
            if not isinstance(text, str):
                continue
            released, blocked = guards.apply_text(ch.get("index", 0), text)
            if blocked is not None:
                raise GatewayError(400, "content_policy_violation", blocked)
            if isinstance(msg, dict):
                msg["content"] = released
            else:
                ch["text"] = released
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
    client_usage: bool,
    guards: ResponseGuard | None,
    rl_headers: dict[str, str],
) -> Response:
    try:
        resp = await state.upstream.post(path, content, headers, stream=True)
    except httpx.HTTPError as exc:
        raise translate_error(exc, state.metrics) from None
    if resp.status_code != 200:
        try:
            body = await resp.aread()
        except httpx.HTTPError:
            body = b""
        finally:
            await resp.aclose()
        raise translate_response(resp.status_code, body, state.metrics, resp.headers.get("retry-after"))
    return StreamRelay(
        resp,
        ctx,
        kind=kind,
        client_wants_usage=client_usage,
        guards=guards,
        headers=rl_headers,
        streams=state.streams,
        metrics=state.metrics,
    )
