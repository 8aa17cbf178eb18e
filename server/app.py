"""The app factory: `create_app(settings=None, transport=None) -> FastAPI`, and the middleware around
every request."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server import bookkeeping
from server.context import RequestCtx, pick_request_id
from server.errors import GatewayError, error_response
from server.routes import chat, health, models, responses
from server.safety import SafetyEngine
from server.settings import Settings
from server.state import FROM_SETTINGS, FromSettings, GatewayState

log = logging.getLogger("server.request")
# What GatewayMiddleware serves through `serve_post` (server/routes/chat.py), past FastAPI's router.
HOT_ROUTES: dict[str, chat.Handler] = {
    chat.PATHS[chat.CHAT]: chat.handle_chat,
    chat.PATHS[chat.COMPLETION]: chat.handle_completion,
    responses.PATH: responses.handle,
}


class GatewayMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware): request id, headers on every response, in-flight gauge,
    a last-resort OpenAI-shaped 500, and the after-response bookkeeping.

    It also dispatches the hot routes (POST chat/completions, completions and responses) to
    `server.routes.chat.serve_post` itself; every other request goes through FastAPI as usual.
    """

    def __init__(self, app: ASGIApp, state: GatewayState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_id = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                raw_id = value
                break
        ctx = RequestCtx(pick_request_id(raw_id))
        scope["angel"] = ctx
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                ctx.status = message["status"]
                headers = list(message.get("headers") or ())
                headers.append((b"x-request-id", ctx.request_id.encode()))
                headers.append((b"x-angel-safety", ctx.safety.encode()))
                message = {**message, "headers": headers}
            await send(message)

        state = self.state
        inflight = state.metrics.inflight
        inflight.inc()
        handle = HOT_ROUTES.get(scope["path"]) if scope["method"] == "POST" else None
        try:
            if handle is None:
                await self.app(scope, receive, send_wrapper)
            else:
                await chat.serve_post(state, scope, receive, send_wrapper, handle)
        except Exception:
            log.exception("unhandled error", extra={"request_id": ctx.request_id})
            ctx.status = 500
            if not started:
                err = GatewayError(500, "internal_error", "The gateway failed to handle the request.")
                await error_response(err)(scope, receive, send_wrapper)
        finally:
            inflight.dec()
            await bookkeeping.finish(state, ctx, scope.get("path", ""))


async def _gateway_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return error_response(exc)


async def _http_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    # OpenAI answers an unknown path or method with code null and type invalid_request_error.
    what = f"({request.method} {request.url.path})"
    code, message = {
        404: (None, f"Invalid URL {what}."),
        405: (None, f"Invalid method for URL {what}."),
    }.get(exc.status_code, ("invalid_request_error", str(exc.detail)))
    err_type = "invalid_request_error" if code is None else None
    err = GatewayError(exc.status_code, code, message, headers=dict(exc.headers or {}), err_type=err_type)
    return error_response(err)


def create_app(
    settings: Settings | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    *,
    safety_engine: SafetyEngine | None | FromSettings = FROM_SETTINGS,
) -> FastAPI:
    """Build the gateway. `transport` replaces the upstream connection (tests use httpx.MockTransport);
    `safety_engine` overrides the engine loaded from settings (None switches safety off)."""
    settings = settings or Settings()
    state = GatewayState(settings, transport, safety_engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await state.aclose()

    app = FastAPI(
        title="AntAngelMed gateway", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None
    )
    app.state.gateway = state
    # No 307 from `/v1/models/` to `/v1/models`: that redirect has no OpenAI-shaped body, and its Location
    # is built from the client's Host header (a POST body with PHI would follow it to any host named there).
    app.router.redirect_slashes = False
    app.include_router(chat.router)
    app.include_router(responses.router)
    app.include_router(models.router)
    app.include_router(health.router)
    app.add_exception_handler(GatewayError, _gateway_error_handler)
    app.add_exception_handler(StarletteHTTPException, _http_error_handler)
    app.add_middleware(GatewayMiddleware, state=state)
    return app
