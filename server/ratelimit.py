"""Per-key requests-per-minute and tokens-per-minute limits, in memory or shared through Redis.

Fixed one-minute windows. Admission checks both counters and counts the request in one atomic step
(a Lua script on Redis, so replicas cannot race past the limit). Tokens are known only after the
answer, so they are added when a request finishes; a key over its token budget is refused until the
window rolls over (the same behaviour OpenAI documents for TPM).

Failure policy: if Redis cannot be reached, requests are admitted (fail open) unless
`ANGEL_RATELIMIT_FAIL_OPEN=false`, in which case they get 503 `rate_limiter_unavailable`. Failing open
is the default because keys are still authenticated and the engine queues on its own; each failure is
counted in `gateway_ratelimit_backend_errors_total`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

WINDOW_SECONDS = 60

_ADMIT_LUA = """
local req = tonumber(redis.call('GET', KEYS[1]) or '0')
local tok = tonumber(redis.call('GET', KEYS[2]) or '0')
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
if rpm > 0 and req >= rpm then return {0, req, tok} end
if tpm > 0 and tok >= tpm then return {0, req, tok} end
req = redis.call('INCR', KEYS[1])
if req == 1 then redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3])) end
return {1, req, tok}
"""

_ADD_TOKENS_LUA = """
local v = redis.call('INCRBY', KEYS[1], tonumber(ARGV[1]))
if v == tonumber(ARGV[1]) then redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2])) end
return v
"""


@dataclass(slots=True)
class Decision:
    allowed: bool
    rpm: int
    tpm: int
    requests_used: int
    tokens_used: int
    reset_s: float

    def headers(self) -> dict[str, str]:
        """OpenAI's x-ratelimit-* headers (only for the limits this key has)."""
        h: dict[str, str] = {}
        reset = f"{max(self.reset_s, 0.001):.3f}s"
        if self.rpm:
            h["x-ratelimit-limit-requests"] = str(self.rpm)
            h["x-ratelimit-remaining-requests"] = str(max(self.rpm - self.requests_used, 0))
            h["x-ratelimit-reset-requests"] = reset
        if self.tpm:
            h["x-ratelimit-limit-tokens"] = str(self.tpm)
            h["x-ratelimit-remaining-tokens"] = str(max(self.tpm - self.tokens_used, 0))
            h["x-ratelimit-reset-tokens"] = reset
        return h

    @property
    def limited_by(self) -> str:
        return "requests" if self.rpm and self.requests_used >= self.rpm else "tokens"

    @property
    def retry_after(self) -> int:
        return max(1, math.ceil(self.reset_s))


class RateLimiterUnavailable(Exception):
    pass


def _window(now: float) -> tuple[int, float]:
    w = int(now // WINDOW_SECONDS)
    return w, (w + 1) * WINDOW_SECONDS - now


class MemoryRateLimiter:
    """Single-process limiter (the default without ANGEL_REDIS_URL)."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, int], list[int]] = {}

    async def admit(self, key_id: str, rpm: int, tpm: int) -> Decision:
        w, reset = _window(time.time())
        c = self._counts.get((key_id, w))
        if c is None:
            self._gc(w)
            c = self._counts[(key_id, w)] = [0, 0]
        if (rpm and c[0] >= rpm) or (tpm and c[1] >= tpm):
            return Decision(False, rpm, tpm, c[0], c[1], reset)
        c[0] += 1
        return Decision(True, rpm, tpm, c[0], c[1], reset)

    async def add_tokens(self, key_id: str, tokens: int) -> None:
        w, _ = _window(time.time())
        self._counts.setdefault((key_id, w), [0, 0])[1] += tokens

    def _gc(self, current: int) -> None:
        for k in [k for k in self._counts if k[1] < current]:
            del self._counts[k]

    async def close(self) -> None:
        return None


class RedisRateLimiter:
    """Limiter shared by every replica through one Redis (atomic Lua scripts)."""

    def __init__(self, url: str, prefix: str = "angel:rl") -> None:
        import redis.asyncio as aioredis

        # Short timeouts: a slow Redis must not stall requests (see the module's failure policy).
        self._redis = aioredis.Redis.from_url(
            url, socket_timeout=0.25, socket_connect_timeout=0.25, health_check_interval=10
        )
        self._admit = self._redis.register_script(_ADMIT_LUA)
        self._add = self._redis.register_script(_ADD_TOKENS_LUA)
        self._prefix = prefix

    def _keys(self, key_id: str, w: int) -> list[str]:
        return [f"{self._prefix}:{key_id}:{w}:r", f"{self._prefix}:{key_id}:{w}:t"]

    async def admit(self, key_id: str, rpm: int, tpm: int) -> Decision:
        w, reset = _window(time.time())
        try:
            ok, req, tok = await self._admit(keys=self._keys(key_id, w), args=[rpm, tpm, WINDOW_SECONDS * 2])
        except Exception as exc:  # connection refused, timeout, Redis restarting
            raise RateLimiterUnavailable(str(exc)) from exc
        return Decision(bool(ok), rpm, tpm, int(req), int(tok), reset)

    async def add_tokens(self, key_id: str, tokens: int) -> None:
        w, _ = _window(time.time())
        try:
            await self._add(keys=[self._keys(key_id, w)[1]], args=[tokens, WINDOW_SECONDS * 2])
        except Exception as exc:
            raise RateLimiterUnavailable(str(exc)) from exc

    async def close(self) -> None:
        await self._redis.aclose()


RateLimiter = MemoryRateLimiter | RedisRateLimiter


def make_rate_limiter(redis_url: str | None) -> RateLimiter:
    return RedisRateLimiter(redis_url) if redis_url else MemoryRateLimiter()
