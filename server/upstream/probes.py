"""What the gateway asks the engine on its own behalf: the model list (cached) and readiness (cached)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson

from server.upstream.fleet import router_readiness

_perf = time.perf_counter


class ModelCatalog:
    """The upstream's model ids, cached for a few seconds (None when the upstream cannot be asked), with
    each model's `max_model_len` (vLLM's model cards carry it) and the default model (vLLM lists it first:
    the one it serves a request without `model`).

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
        self._max_len: dict[str, int] = {}
        self._default: str | None = None
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
                self._raw = await self._fetch()
                self._read(self._raw)
                self._at = _perf()
            return self._raw

    async def _fetch(self) -> dict[str, Any] | None:
        try:
            r = await self._client.get("/v1/models", headers=self._headers(), timeout=self._timeout)
            if r.status_code != 200:
                return None
            raw = orjson.loads(r.content)
            return raw if isinstance(raw, dict) and isinstance(raw.get("data", []), list) else None
        except (httpx.HTTPError, orjson.JSONDecodeError):
            return None

    def _read(self, raw: dict[str, Any] | None) -> None:
        cards = [
            m for m in (raw or {}).get("data", []) if isinstance(m, dict) and isinstance(m.get("id"), str)
        ]
        self._ids = {m["id"] for m in cards} if raw is not None else None
        self._default = cards[0]["id"] if cards else None
        self._max_len = {
            m["id"]: m["max_model_len"]
            for m in cards
            if isinstance(m.get("max_model_len"), int) and m["max_model_len"] > 0
        }

    async def ids(self) -> set[str] | None:
        return self._ids if await self.listing() is not None else None

    def max_model_len(self, model: str) -> int | None:
        """The model's context length, as of the last listing (call `ids()` first); None if unknown."""
        return self._max_len.get(model)

    def default_model(self) -> str | None:
        """The model vLLM serves a request without `model`, as of the last listing."""
        return self._default


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
        # Behind vLLM's router, "no healthy engine" is known without a generation (and said plainly).
        fleet = await router_readiness(self._client, self._headers, self._timeout)
        if fleet is not None and not fleet[0]:
            return fleet
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
            return True, "ok" if fleet is None else f"ok ({fleet[1]})"
        except httpx.TimeoutException:
            return False, "upstream timed out"
        except (httpx.HTTPError, orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            return False, f"upstream unreachable ({type(exc).__name__})"
