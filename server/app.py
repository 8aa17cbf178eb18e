"""The app factory: `create_app(settings=None, transport=None) -> FastAPI`."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from server.audit import AuditLog
from server.context import RequestCtx, pick_request_id
from server.db import Database
from server.errors import GatewayError
from server.keys import KeyResolver, KeyStore
from server.metrics import Metrics
from server.ratelimit import RateLimiter, RateLimiterUnavailable, make_rate_limiter
from server.safety import load_engine
from server.settings import Settings
from server.upstream import ModelCatalog, Readiness, UpstreamClient

log = logging.getLogger("server.request")
_UNSET: Any = object()


class GatewayState:
    """Everything the routes share, built once per app."""

    def __init__(
        self, settings: Settings, transport: httpx.AsyncBaseTransport | None, safety_engine: Any
    ) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.upstream = UpstreamClient(
            settings.upstream_url,
            settings.upstream_connect_timeout,
            settings.upstream_read_timeout,
            settings.upstream_max_connections,
            transport,
        )
        self.client = self.upstream.client
        key = settings.upstream_api_key
        self.upstream_key = key.get_secret_value() if key else None
        token = settings.metrics_token
        # Kept only as a digest (the routes compare digests in constant time).
        self.metrics_token_digest = (
            hashlib.sha256(token.get_secret_value().encode()).digest() if token else None
        )
        self.db: Database | None = Database(settings.database_url)
        store = KeyStore(self.db)
        d = settings
        self.resolver = KeyResolver(
            store,
            settings.dev_keys(),
            settings.key_cache_seconds,
            (d.default_rpm or None, d.default_tpm or None, d.default_max_tokens or None),
        )
        self.limiter: RateLimiter = make_rate_limiter(settings.redis_url)
        # The audit writer gets a connection of its own: a batch waiting on a locked database (SQLite's
        # busy timeout) must not hold the key store's connection lock, or every key lookup stalls behind it.
        self.audit_db: Database | None = Database(settings.database_url) if settings.audit_enabled else None
        self.audit = AuditLog(self.audit_db)
        self.safety = (
            load_engine(settings.safety_enabled, settings.safety_policy)
            if safety_engine is _UNSET
            else safety_engine
        )
        self.catalog = ModelCatalog(
            self.client, self.upstream_headers, settings.models_cache_seconds, settings.ready_timeout
        )
        self.readiness = Readiness(
            self.client,
            self.catalog,
            self.upstream_headers,
            settings.ready_cache_seconds,
            settings.ready_timeout,
        )
        self.draining = False
        self.streams: set[Any] = set()  # open SSE relays (StreamRelay)

    def upstream_headers(self, request_id: str | None = None) -> dict[str, str]:
        h = {"content-type": "application/json"}
        if request_id:
            h["x-request-id"] = request_id
        if self.upstream_key:
            h["authorization"] = f"Bearer {self.upstream_key}"
        return h

    def begin_drain(self, grace_seconds: float) -> None:
        """SIGTERM: report not-ready, and end streams still open shortly before the grace period ends."""
        self.draining = True
        loop = asyncio.get_running_loop()
        loop.call_later(max(grace_seconds - 1.0, 0.0), self._end_streams)

    def _end_streams(self) -> None:
        for relay in list(self.streams):
            relay.stop("drain")

    def record_safety_events(self, ctx: RequestCtx, events: list[tuple[str, str]]) -> None:
        for category, action in events:
            self.metrics.safety_events.labels(category, action).inc()
            ctx.safety_events.append((category, action))

    async def finish(self, ctx: RequestCtx, path: str) -> None:
        """After the response: metrics, token metering, audit row and the JSON log line."""
        m = self.metrics
        now = time.perf_counter()
        duration = now - ctx.t0
        route = ctx.route or _route_label(path)
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
        if total and ctx.ratelimit_key:
            try:
                await self.limiter.add_tokens(ctx.ratelimit_key, total)
            except RateLimiterUnavailable:
                m.ratelimit_backend_errors.inc()
        key_name = ctx.key.name if ctx.key is not None else None
        self.audit.request(
            ctx.request_id,
            key_name,
            route,
            ctx.model,
            ctx.status,
            ctx.prompt_tokens,
            ctx.completion_tokens,
            duration * 1000,
            ctx.safety,
        )
        for category, action in ctx.safety_events:
            self.audit.safety_event(ctx.request_id, key_name, category, action)
        log.info(
            "request",
            extra={
                "request_id": ctx.request_id,
                "key": key_name,
                "route": route,
                "model": ctx.model,
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

    async def aclose(self) -> None:
        await self.upstream.aclose()
        await self.limiter.close()
        self.audit.close()
        if self.db is not None:
            self.db.close()
        if self.audit_db is not None:
            self.audit_db.close()


_KNOWN = {"/healthz", "/readyz", "/metrics", "/v1/models", "/v1/chat/completions", "/v1/completions"}


def _route_label(path: str) -> str:
    # Unknown paths share one label so scanners cannot blow up metric cardinality.
    return path if path in _KNOWN else "other"


class GatewayMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware): request id, headers on every response, in-flight gauge,
    a last-resort OpenAI-shaped 500, and the after-response bookkeeping.

    It also dispatches the two hot routes (POST chat/completions and completions) to their handler
    itself. FastAPI's router, dependency injection and exception middleware do nothing for them that the
    handler does not, yet cost ~0.3 ms per request before the route runs (the TTFT timeline in
    benchmarks/README.md); every other path goes through FastAPI as usual.
    """

    def __init__(self, app: Any, state: GatewayState) -> None:
        from server.routes import chat

        self.app = app
        self.state = state
        self._chat = chat
        self._hot = {path: kind for kind, path in chat.PATHS.items()}

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
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

        async def send_wrapper(message: dict) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                ctx.status = message["status"]
                headers = list(message.get("headers") or ())
                headers.append((b"x-request-id", ctx.request_id.encode()))
                headers.append((b"x-angel-safety", ctx.safety.encode()))
                message = {**message, "headers": headers}
            await send(message)

        inflight = self.state.metrics.inflight
        inflight.inc()
        kind = self._hot.get(scope["path"]) if scope["method"] == "POST" else None
        try:
            if kind is None:
                await self.app(scope, receive, send_wrapper)
            else:
                await self._serve_hot(scope, receive, send_wrapper, kind)
        except Exception:
            log.exception("unhandled error", extra={"request_id": ctx.request_id})
            ctx.status = 500
            if not started:
                err = GatewayError(500, "internal_error", "The gateway failed to handle the request.")
                await error_response(err)(scope, receive, send_wrapper)
        finally:
            inflight.dec()
            await self.state.finish(ctx, scope.get("path", ""))

    async def _serve_hot(self, scope: dict, receive: Any, send: Any, kind: str) -> None:
        request = Request(scope, receive)
        try:
            response = await self._chat.handle(request, kind)
        except GatewayError as err:
            response = error_response(err)
        await response(scope, receive, send)


def error_response(err: GatewayError) -> Response:
    return Response(err.body(), status_code=err.status, media_type="application/json", headers=err.headers)


async def _gateway_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return error_response(exc)


async def _http_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "invalid_request_error")
    message = {404: f"Unknown path {request.url.path!r}.", 405: "Method not allowed."}.get(
        exc.status_code, str(exc.detail)
    )
    return error_response(GatewayError(exc.status_code, code, message, headers=dict(exc.headers or {})))


def create_app(
    settings: Settings | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    *,
    safety_engine: Any = _UNSET,
) -> FastAPI:
    """Build the gateway. `transport` replaces the upstream connection (tests use httpx.MockTransport);
    `safety_engine` overrides the engine loaded from settings (None switches safety off)."""
    from server.routes import chat, health, models

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
    app.include_router(models.router)
    app.include_router(health.router)
    app.add_exception_handler(GatewayError, _gateway_error_handler)
    app.add_exception_handler(StarletteHTTPException, _http_error_handler)
    app.add_middleware(GatewayMiddleware, state=state)
    return app
