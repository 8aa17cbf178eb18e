"""After the response: metrics, token metering, the audit rows and the JSON log line.

GatewayMiddleware calls `finish` once per request, whatever answered it; the routes and the stream relay
call `record_safety_events` as the rails report.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from server.context import RequestCtx
from server.metrics import Metrics
from server.ratelimit import RateLimiterUnavailable

if TYPE_CHECKING:
    from server.state import GatewayState

log = logging.getLogger("server.request")

_KNOWN = {
    "/healthz",
    "/readyz",
    "/metrics",
    "/v1/models",
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/responses",
}


def route_label(path: str) -> str:
    # Unknown paths share one label so scanners cannot blow up metric cardinality.
    return path if path in _KNOWN else "other"


def record_safety_events(metrics: Metrics, ctx: RequestCtx, events: list[tuple[str, str]]) -> None:
    """Count the rails' (category, action) events now; `finish` writes them to the audit log."""
    for category, action in events:
        metrics.safety_events.labels(category, action).inc()
        ctx.safety_events.append((category, action))


async def finish(state: GatewayState, ctx: RequestCtx, path: str) -> None:
    """After the response: metrics, token metering, audit rows and the JSON log line."""
    m = state.metrics
    now = time.perf_counter()
    duration = now - ctx.t0
    route = ctx.route or route_label(path)
    model = ctx.model if ctx.model and ctx.model_known else ""
    m.requests.labels(route, str(ctx.status), model).inc()
    if ctx.route is None:
        return  # health/metrics probes and unknown paths: counted, not audited or logged
    m.duration.labels(route, model).observe(duration)
    if ctx.upstream_start is None:  # answered entirely by the gateway (errors, safety answers)
        ctx.overhead = duration
    m.overhead.labels(route).observe(ctx.overhead)
    if ctx.ttft is not None:
        m.ttft.labels(model).observe(ctx.ttft)
    if ctx.prompt_tokens:
        m.tokens.labels(model, "prompt").inc(ctx.prompt_tokens)
    if ctx.completion_tokens:
        m.tokens.labels(model, "completion").inc(ctx.completion_tokens)
    total = (ctx.prompt_tokens or 0) + (ctx.completion_tokens or 0)
    if ctx.ratelimit_key and (total or ctx.reservation is not None):
        # However the request ended (a refusal, a disconnect mid-stream): its reservation is replaced by
        # what it used, the tokens streamed before a disconnect included.
        try:
            await state.limiter.settle(ctx.ratelimit_key, ctx.reservation, total)
        except RateLimiterUnavailable:
            m.ratelimit_backend_errors.inc()
    key_name = ctx.key.name if ctx.key is not None else None
    audit = state.audit
    model_at_rest = ctx.model_at_rest  # never a model name the upstream does not serve
    audit.request(
        ctx.request_id,
        key_name,
        route,
        model_at_rest,
        ctx.status,
        ctx.prompt_tokens,
        ctx.completion_tokens,
        duration * 1000,
        ctx.safety,
    )
    for category, action in ctx.safety_events:
        audit.safety_event(ctx.request_id, key_name, category, action)
    log.info(
        "request",
        extra={
            "request_id": ctx.request_id,
            "key": key_name,
            "route": route,
            "model": model_at_rest,
            "status": ctx.status,
            "duration_ms": round(duration * 1000, 3),
            "ttft_ms": round(ctx.ttft * 1000, 3) if ctx.ttft is not None else None,
            "overhead_ms": round(ctx.overhead * 1000, 3),
            "prompt_tokens": ctx.prompt_tokens,
            "completion_tokens": ctx.completion_tokens,
            "safety": ctx.safety or None,
            "stream_error": ctx.stream_error,
            "client_disconnected": ctx.disconnected or None,
        },
    )
