"""The gateway's shared state, built once per app, and the dependency that hands it to the routes.

    async def readyz(state: State) -> Response: ...

The hot path (POST chat/completions and completions, `server.routes.chat.serve_post`) skips FastAPI's
dependency injection; GatewayMiddleware passes it the same object.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
from typing import TYPE_CHECKING, Annotated

import httpx
from fastapi import Depends
from starlette.requests import Request

from server.audit import AuditLog
from server.db import Database
from server.keys import KeyResolver, KeyStore
from server.metrics import Metrics
from server.offload import Offload
from server.ratelimit import RateLimiter, make_rate_limiter
from server.safety import SafetyEngine, load_engine
from server.settings import Settings
from server.tenancy import CacheSalter
from server.upstream.client import UpstreamClient
from server.upstream.probes import ModelCatalog, Readiness

if TYPE_CHECKING:
    from server.upstream.relay import StreamRelay


class FromSettings(enum.Enum):
    """The default `safety_engine`: the one ANGEL_SAFETY_ENABLED / ANGEL_SAFETY_POLICY name."""

    TOKEN = "from settings"


FROM_SETTINGS = FromSettings.TOKEN


class GatewayState:
    """Everything the routes share: settings, metrics, the upstream client and probes, the key
    resolver, the rate limiter, the tenants' cache salts, the audit log, the safety engine and the open
    streams."""

    def __init__(
        self,
        settings: Settings,
        transport: httpx.AsyncBaseTransport | None,
        safety_engine: SafetyEngine | None | FromSettings = FROM_SETTINGS,
    ) -> None:
        self.settings = settings
        self.metrics = Metrics()
        upstream_key = settings.upstream_api_key
        self.upstream = UpstreamClient(
            settings.upstream_url,
            settings.upstream_connect_timeout,
            settings.upstream_read_timeout,
            settings.upstream_max_connections,
            transport,
            api_key=upstream_key.get_secret_value() if upstream_key else None,
        )
        token = settings.metrics_token
        # Kept only as a digest (the routes compare digests in constant time).
        self.metrics_token_digest: bytes | None = (
            hashlib.sha256(token.get_secret_value().encode()).digest() if token else None
        )
        self.db = Database(settings.database_url)
        self.resolver = KeyResolver(
            KeyStore(self.db),
            settings.dev_keys(),
            settings.key_cache_seconds,
            (settings.default_rpm or None, settings.default_tpm or None, settings.default_max_tokens or None),
        )
        self.limiter: RateLimiter = make_rate_limiter(settings.redis_url)
        self.cache_salter = CacheSalter.from_settings(settings)  # per-tenant prefix caches
        # The audit writer gets a connection of its own: a batch waiting on a locked database (SQLite's
        # busy timeout) must not hold the key store's connection lock, or every key lookup stalls behind it.
        self.audit_db: Database | None = Database(settings.database_url) if settings.audit_enabled else None
        self.audit = AuditLog(self.audit_db)
        self.safety: SafetyEngine | None = (
            load_engine(settings.safety_enabled, settings.safety_policy)
            if isinstance(safety_engine, FromSettings)
            else safety_engine
        )
        # Large bodies are parsed and scanned in worker processes that build the engine from the same
        # settings; an engine handed in directly cannot be rebuilt there, so its scans use threads.
        from_settings = isinstance(safety_engine, FromSettings)
        source = (settings.safety_enabled, settings.safety_policy) if from_settings else None
        self.offload = Offload(settings.scan_workers, self.safety, source)
        client, headers = self.upstream.client, self.upstream.headers
        self.catalog = ModelCatalog(client, headers, settings.models_cache_seconds, settings.ready_timeout)
        self.readiness = Readiness(client, headers, settings.ready_cache_seconds, settings.ready_timeout)
        self.draining = False
        self.streams: set[StreamRelay] = set()  # open SSE relays, ended at the close of a shutdown drain

    def begin_drain(self, grace_seconds: float) -> None:
        """SIGTERM: report not-ready, and end streams still open shortly before the grace period ends."""
        self.draining = True
        loop = asyncio.get_running_loop()
        loop.call_later(max(grace_seconds - 1.0, 0.0), self._end_streams)

    def _end_streams(self) -> None:
        for relay in list(self.streams):
            relay.stop("drain")

    async def aclose(self) -> None:
        self.offload.close()
        await self.upstream.aclose()
        await self.limiter.close()
        self.audit.close()
        self.db.close()
        if self.audit_db is not None:
            self.audit_db.close()


def gateway_state(request: Request) -> GatewayState:
    """The app's GatewayState (a FastAPI dependency: routes take `state: State`)."""
    state: GatewayState = request.app.state.gateway
    return state


State = Annotated[GatewayState, Depends(gateway_state)]
