"""`GET /v1/models`: the upstream's models, filtered to what the caller's key may use."""

from __future__ import annotations

import orjson
from fastapi import APIRouter
from starlette.responses import Response

from server.auth import ApiKey
from server.errors import GatewayError
from server.openai_shapes import model_list
from server.state import State

router = APIRouter()


@router.get("/v1/models")
async def list_models(state: State, key: ApiKey) -> Response:
    listing = await state.catalog.listing()
    if listing is None:
        state.metrics.upstream_errors.labels("unavailable").inc()
        raise GatewayError(502, "upstream_unavailable", "The model server is unreachable.")
    data = [m for m in listing.get("data", []) if isinstance(m, dict) and key.allows(m.get("id", ""))]
    return Response(orjson.dumps(model_list(data)), media_type="application/json")
