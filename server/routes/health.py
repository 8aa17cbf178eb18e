"""Probes and metrics: `/healthz` (liveness, no upstream call), `/readyz` (engine can generate),
`/metrics` (Prometheus text format)."""

from __future__ import annotations

import hashlib
import hmac

import orjson
from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response

from server.auth import unauthorized
from server.state import State

router = APIRouter()


def _json(obj: dict[str, str], status: int = 200) -> Response:
    return Response(orjson.dumps(obj), status_code=status, media_type="application/json")


@router.get("/healthz")
async def healthz() -> Response:
    return _json({"status": "ok"})


@router.get("/readyz")
async def readyz(state: State) -> Response:
    if state.draining:
        return _json({"status": "draining"}, 503)
    ok, detail = await state.readiness.check()
    return _json({"status": "ready" if ok else "not_ready", "detail": detail}, 200 if ok else 503)


@router.get("/metrics")
async def metrics(request: Request, state: State) -> Response:
    if state.metrics_token_digest is not None:
        scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
        # Digests of equal length, compared in constant time: neither the token nor its length leaks.
        given = hashlib.sha256(token.strip().encode()).digest()
        if scheme.lower() != "bearer" or not hmac.compare_digest(given, state.metrics_token_digest):
            raise unauthorized(state.metrics, "metrics_token", "GET /metrics needs the metrics token.")
    return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
