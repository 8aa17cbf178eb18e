"""Bearer-key authentication for every /v1 route."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import Request

from server.context import RequestCtx
from server.errors import GatewayError
from server.keys import KeyRecord, KeyStoreUnavailable
from server.metrics import Metrics
from server.state import State

MAX_AUTH_HEADER = 512


def unauthorized(metrics: Metrics, reason: str, message: str) -> GatewayError:
    metrics.auth_failures.labels(reason).inc()
    return GatewayError(401, "invalid_api_key", message, headers={"WWW-Authenticate": "Bearer"})


async def authenticate(request: Request, state: State) -> KeyRecord:
    """The request's key record, or a 401/503 `GatewayError` (a dependency; the hot path calls it too)."""
    ctx: RequestCtx = request.scope["angel"]
    ctx.route = request.scope["path"]  # from here on the request is audited, failed auth included
    metrics = state.metrics
    header = request.headers.get("authorization")
    if not header:
        raise unauthorized(metrics, "missing", "Missing API key: send 'Authorization: Bearer <key>'.")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(header) > MAX_AUTH_HEADER or " " in token:
        raise unauthorized(metrics, "malformed", "Malformed Authorization header: expected 'Bearer <key>'.")
    try:
        rec = await state.resolver.resolve(token)
    except KeyStoreUnavailable:
        metrics.auth_failures.labels("store_unavailable").inc()
        raise GatewayError(
            503,
            "key_store_unavailable",
            "API keys cannot be checked right now; retry shortly.",
            headers={"Retry-After": "2"},
        ) from None
    if rec is None:
        raise unauthorized(metrics, "unknown", "Incorrect API key provided.")
    if rec.revoked_at is not None:
        raise unauthorized(metrics, "revoked", "This API key has been revoked.")
    if rec.expired():
        raise unauthorized(metrics, "expired", "This API key has expired.")
    ctx.key = rec
    return rec


ApiKey = Annotated[KeyRecord, Depends(authenticate)]
