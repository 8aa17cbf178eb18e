"""What the gateway asks the engine on its own behalf: the model list (cached) and readiness (cached)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson

_perf = time.perf_counter


class ModelCatalog:
    """The upstream's model ids, cached for a few seconds (None when the upstream cannot be asked).

    Failures are remembered for a second so that an engine outage costs one probe, not one per request.
    """

    FAILURE_TTL = 1.0

    def __init__(
        self,
        client: httpx.AsyncClient,
        headers: Callable[[], dict[str, str]],
        ttl: float,
        timeout: float = 5.0,
    ) -> None:
        self._client = client
        self._headers = headers
        self._ttl = ttl
        self._timeout = timeout
        self._ids: set[str] | None = None
        self._raw: dict[str, Any] | None = None
        self._at = -1e9
        self._lock = asyncio.Lock()

    def _fresh(self) -> bool:
        age = _perf() - self._at
        return age < (self._ttl if self._raw is not None else self.FAILURE_TTL)

    async def listing(self) -> dict[str, Any] | None:
        if self._fresh():
            return self._raw
        async with self._lock:
            if not self._fresh():
                self._raw, self._ids = await self._fetch()
                self._at = _perf()
            return self._raw

    async def _fetch(self) -> tuple[dict[str, Any] | None, set[str] | None]:
        try:
            r = await self._client.get("/v1/models", headers=self._headers(), timeout=self._timeout)
            if r.status_code != 200:
                return None, None
            raw = orjson.loads(r.content)
            return raw, {m["id"] for m in raw.get("data", []) if isinstance(m, dict) and "id" in m}
        except (httpx.HTTPError, orjson.JSONDecodeError, AttributeError, TypeError, KeyError):
            return None, None

    async def ids(self) -> set[str] | None:
        return self._ids if await self.listing() is not None else None


class Readiness:
    """Upstream reachable and able to generate one token; cached so probes never pile onto the engine."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        headers: Callable[[], dict[str, str]],
        ttl: float,
        timeout: float,
    ) -> None:
        self._client, self._headers = client, headers
        self._ttl, self._timeout = ttl, timeout
        self._result: tuple[bool, str] = (False, "not checked yet")
        self._at = -1e9
        self._lock = asyncio.Lock()

    async def check(self) -> tuple[bool, str]:
        if _perf() - self._at < self._ttl:
            return self._result
        async with self._lock:
            if _perf() - self._at >= self._ttl:
                self._result = await self._probe()
                self._at = _perf()
        return self._result

    async def _probe(self) -> tuple[bool, str]:
        try:
            r = await self._client.get("/v1/models", headers=self._headers(), timeout=self._timeout)
            models = (
                [m["id"] for m in orjson.loads(r.content).get("data", [])] if r.status_code == 200 else []
            )
            if not models:
                return False, f"upstream /v1/models answered {r.status_code} with no model"
            body = {"model": models[0], "prompt": "ping", "max_tokens": 1, "temperature": 0}
            g = await self._client.post(
                "/v1/completions", content=orjson.dumps(body), headers=self._headers(), timeout=self._timeout
            )
            if g.status_code != 200:
                return False, f"upstream generation answered {g.status_code}"
            return True, "ok"
        except httpx.TimeoutException:
            return False, "upstream timed out"
        except (httpx.HTTPError, orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            return False, f"upstream unreachable ({type(exc).__name__})"
