"""`POST /v1/responses`: OpenAI's Responses API, served by vLLM, through the same door as chat.

Flow: auth -> body -> validation -> model checks -> rate limit -> input rails (`instructions` and the
`input` items) -> upstream (JSON, or the Responses event stream through `ResponsesRelay`) -> output rails
-> client. Bookkeeping (metrics, metering from `usage.input_tokens` / `output_tokens`, audit) happens in
the middleware afterwards, as for chat.

As for chat, POST here is served by `serve_post` (server/routes/chat.py) through `handle`, and the FastAPI
route only describes the path: a body over `OFFLOAD_BYTES` is scanned and serialised in an offload worker,
and from the end of its body the request is cancelled when its client disconnects, the engine's with it.

The gateway keeps no conversation state and lets the engine keep none: `store` is always false upstream,
and `previous_response_id` / `background` are refused. vLLM's response store is one in-memory map for every
tenant (a response id would read another key's conversation, PHI included), and a stored conversation is
text the rails never see again. Clients send the whole conversation in `input`.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from server.auth import ApiKey
from server.bookkeeping import record_safety_events
from server.context import RequestCtx
from server.errors import GatewayError, bad_param
from server.keys import KeyRecord
from server.offload import OFFLOAD_BYTES, Prepared, prepare
from server.openai_shapes import canned_response
from server.routes.chat import DEFAULT_RESERVE_TOKENS, _admit, _check_model, _record_rails, read_body
from server.routes.schemas import RESPONSES_SCHEMA
from server.safety import InputCheck, ResponseGuard, SafetyEngine, UncheckableInput, check_responses
from server.state import GatewayState, State
from server.upstream.cancel import ClientWatch
from server.upstream.client import post_ok
from server.upstream.responses_relay import Pieces, ResponsesRelay, guard_response
from server.validation import CHARS_PER_TOKEN_ESTIMATE, parse_json

router = APIRouter()
PATH = "/v1/responses"
_perf = time.perf_counter
MAX_INPUT_ITEMS = 4096
# Fields that need state kept between requests (see the module docstring), and vLLM's harmony-only history
# (`previous_input_messages`, text the rails would not read): refused with the reason.
_STATEFUL = {
    "previous_response_id": "The gateway keeps no responses: send the conversation in 'input'.",
    "conversation": "The gateway keeps no conversations: send the conversation in 'input'.",
    "background": "Background responses need a response store, which this gateway does not keep.",
    "prompt": "Stored prompts are not available: send the instructions and input themselves.",
    "previous_input_messages": "'previous_input_messages' is not accepted: send the conversation in 'input'.",
}


# NEVER CALLED in the app: GatewayMiddleware serves POST here through `serve_post` and `handle` (see
# server/app.py HOT_ROUTES). The route puts the path in the OpenAPI schema and answers other methods with 405.
@router.post(PATH, openapi_extra=RESPONSES_SCHEMA)
async def create_response(request: Request, state: State, key: ApiKey) -> Response:
    return await handle(request, state, key)


async def handle(request: Request, state: GatewayState, key: KeyRecord) -> Response:
    ctx: RequestCtx = request.scope["angel"]
    raw = await read_body(request, state.settings.max_body_bytes, state.settings.body_timeout)
    # From here on the client's disconnect cancels whatever this request awaits (a worker, the engine).
    ctx.watch = ClientWatch(request.receive)
    body = parse_json(raw)
    validate_responses(body)
    await _check_model(state, key, ctx, body)  # 403 / 404
    model = body["model"]  # required here (validate_responses)
    cap_output_tokens(body, key.max_tokens)
    # Against a TPM limit: the output budget (or what vLLM would allow) and the body's size as the estimate
    # of the prompt (instructions, input items and tool definitions all go into it).
    prompt_estimate = -(-len(raw) // CHARS_PER_TOKEN_ESTIMATE)
    output = body.get("max_output_tokens") or state.catalog.max_model_len(model) or DEFAULT_RESERVE_TOKENS
    rl_headers = await _admit(state, key, ctx, output + prompt_estimate)
    stream = body.get("stream") is True

    body["store"] = False  # nothing of the conversation stays in the engine (see the module docstring)
    state.cache_salter.apply(body, key)  # the tenant's prefix cache only (server/tenancy.py)
    scan = _input_rails if state.safety is not None else None
    job = (None, body, "input", "responses", scan, key.safety_profile)
    large = len(raw) > OFFLOAD_BYTES
    prepared: Prepared = await state.offload.run(prepare, *job) if large else prepare(state.safety, *job)
    guards = None
    check = prepared.check
    if check is not None:
        assert state.safety is not None
        _record_rails(state.metrics, ctx, check)  # a refusal is raised here
        if check.canned is not None:
            return _canned(model, check.canned, stream, rl_headers)
        guards = ResponseGuard(state.safety, check.verdicts, 1)

    assert prepared.content is not None
    headers = state.upstream.headers(ctx.request_id)
    ctx.upstream_start = _perf()
    ctx.overhead = ctx.upstream_start - ctx.t0
    if stream:
        # Until the final event brings the engine's usage, a stream that ends early (a disconnect) is
        # charged the estimate and the pieces it streamed (server/upstream/responses_relay.py).
        ctx.prompt_tokens = prompt_estimate
        return await _stream(state, ctx, prepared.content, headers, guards, rl_headers)
    return await _json(state, ctx, prepared.content, headers, guards, rl_headers)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def validate_responses(body: dict[str, Any]) -> None:
    """What the gateway relies on (model, input, stream, token counts) and what it refuses; everything
    else passes through to vLLM, which answers its own 400s."""
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise bad_param("model", "'model' is required and must be a non-empty string.")
    for name, why in _STATEFUL.items():
        if body.get(name) not in (None, False):
            raise bad_param(name, why)
    inp = body.get("input")
    if not (isinstance(inp, str) or (isinstance(inp, list) and inp)):
        raise bad_param("input", "'input' must be a string or a non-empty array of input items.")
    if isinstance(inp, list):
        if len(inp) > MAX_INPUT_ITEMS:
            raise bad_param("input", f"'input' may hold at most {MAX_INPUT_ITEMS} items.")
        for i, item in enumerate(inp):
            if not isinstance(item, dict):
                raise bad_param(f"input[{i}]", f"input[{i}] must be an object.")
    if body.get("instructions") is not None and not isinstance(body["instructions"], str):
        raise bad_param("instructions", "'instructions' must be a string.")
    if body.get("stream") is not None and not isinstance(body["stream"], bool):
        raise bad_param("stream", "'stream' must be a boolean.")
    v = body.get("max_output_tokens")
    if v is not None and (not _is_int(v) or v < 1):
        raise bad_param("max_output_tokens", "'max_output_tokens' must be a positive integer.")
    t = body.get("temperature")
    if t is not None and (not isinstance(t, (int, float)) or isinstance(t, bool) or not 0 <= t <= 2):
        raise bad_param("temperature", "'temperature' must be a number between 0 and 2.")
    p = body.get("top_p")
    if p is not None and (not isinstance(p, (int, float)) or isinstance(p, bool) or not 0 < p <= 1):
        raise bad_param("top_p", "'top_p' must be a number in (0, 1].")
    if body.get("tools") is not None and not isinstance(body["tools"], list):
        raise bad_param("tools", "'tools' must be an array.")


def cap_output_tokens(body: dict[str, Any], cap: int | None) -> None:
    """A key's max_tokens cap: a larger `max_output_tokens` is refused, an absent one gets the cap."""
    if not cap:
        return
    v = body.get("max_output_tokens")
    if v is None:
        body["max_output_tokens"] = cap
    elif v > cap:
        raise bad_param("max_output_tokens", f"'max_output_tokens' exceeds this key's limit of {cap}.")


def _input_rails(engine: SafetyEngine, body: dict[str, Any], kind: str, profile: str | None) -> InputCheck:
    """The input rails over `instructions` and the `input` items. Plain computation: for a large body it
    runs in an offload worker (server/offload.py `prepare`), which also applies what the rails rewrote."""
    try:
        return check_responses(engine, body, profile)
    except UncheckableInput as exc:
        raise GatewayError(400, "invalid_request_error", str(exc), param=exc.param) from None


def _canned(model: str, text: str, stream: bool, headers: dict[str, str]) -> Response:
    """The safety layer's deterministic answer as a Responses object or event stream (no upstream call)."""
    body = canned_response(model, text, stream=stream)
    if not stream:
        return Response(body, media_type="application/json", headers=headers)
    return Response(body, media_type="text/event-stream", headers={**headers, "x-accel-buffering": "no"})


async def _json(
    state: GatewayState,
    ctx: RequestCtx,
    content: bytes,
    headers: dict[str, str],
    guards: ResponseGuard | None,
    rl_headers: dict[str, str],
) -> Response:
    r = await post_ok(state.upstream, state.metrics, PATH, content, headers, stream=False)
    t_back = _perf()
    try:
        obj = orjson.loads(r.content)
        usage = obj.get("usage") or {}
        ctx.prompt_tokens, ctx.completion_tokens = usage.get("input_tokens"), usage.get("output_tokens")
        out = r.content
        if guards is not None:
            try:
                blocked = guard_response(obj, Pieces(guards))
            finally:
                record_safety_events(state.metrics, ctx, guards.events())
            if blocked is not None:
                raise GatewayError(400, "content_policy_violation", blocked)
            out = orjson.dumps(obj)
    except (orjson.JSONDecodeError, AttributeError, TypeError, KeyError):
        state.metrics.upstream_errors.labels("malformed").inc()
        raise GatewayError(
            502, "upstream_malformed_response", "The model server sent a malformed answer."
        ) from None
    ctx.overhead += _perf() - t_back
    return Response(out, media_type="application/json", headers=rl_headers)


async def _stream(
    state: GatewayState,
    ctx: RequestCtx,
    content: bytes,
    headers: dict[str, str],
    guards: ResponseGuard | None,
    rl_headers: dict[str, str],
) -> Response:
    resp = await post_ok(state.upstream, state.metrics, PATH, content, headers, stream=True)
    return ResponsesRelay(
        resp,
        ctx,
        kind="responses",
        client_wants_usage=True,
        guards=guards,
        headers=rl_headers,
        streams=state.streams,
        metrics=state.metrics,
    )
