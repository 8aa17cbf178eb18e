"""Bearer-key authentication for every /v1 route."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import Request

from server.errors import GatewayError
from server.keys import KeyRecord, KeyStoreUnavailable

MAX_AUTH_HEADER = 512


def unauthorized(request: Request, reason: str, message: str) -> GatewayError:
    request.app.state.gateway.metrics.auth_failures.labels(reason).inc()
    return GatewayError(401, "invalid_api_key", message, headers={"WWW-Authenticate": "Bearer"})


async def authenticate(request: Request) -> KeyRecord:
    state = request.app.state.gateway
    ctx = request.scope["angel"]
    ctx.route = request.scope["path"]  # from here on the request is audited, failed auth included
    header = request.headers.get("authorization")
    if not header:
        raise unauthorized(request, "missing", "Missing API key: send 'Authorization: Bearer <key>'.")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(header) > MAX_AUTH_HEADER or " " in token:
        raise unauthorized(request, "malformed", "Malformed Authorization header: expected 'Bearer <key>'.")
    try:
        rec = await state.resolver.resolve(token)
    except KeyStoreUnavailable:
        state.metrics.auth_failures.labels("store_unavailable").inc()
        raise GatewayError(
            503,
            "key_store_unavailable",
            "API keys cannot be checked right now; retry shortly.",
            headers={"Retry-After": "2"},
        ) from None
    if rec is None:
        raise unauthorized(request, "unknown", "Incorrect API key provided.")
    if rec.revoked_at is not None:
        raise unauthorized(request, "revoked", "This API key has been revoked.")
    if rec.expired():
        raise unauthorized(request, "expired", "This API key has expired.")
    ctx.key = rec
    return rec


ApiKey = Annotated[KeyRecord, Depends(authenticate)]
