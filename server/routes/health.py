"""Probes and metrics: `/healthz` (liveness, no upstream call), `/readyz` (engine can generate),
`/metrics` (Prometheus text format)."""

from __future__ import annotations

import orjson
from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response

router = APIRouter()


def _json(obj: dict, status: int = 200) -> Response:
    return Response(orjson.dumps(obj), status_code=status, media_type="application/json")


@router.get("/healthz")
async def healthz() -> Response:
    return _json({"status": "ok"})


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    state = request.app.state.gateway
    if state.draining:
        return _json({"status": "draining"}, 503)
    ok, detail = await state.readiness.check()
    return _json({"status": "ready" if ok else "not_ready", "detail": detail}, 200 if ok else 503)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    return Response(request.app.state.gateway.metrics.render(), media_type=CONTENT_TYPE_LATEST)
