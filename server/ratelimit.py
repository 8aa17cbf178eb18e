"""Per-key requests-per-minute and tokens-per-minute limits, in memory or shared through Redis.

Exact sliding windows: the limiter remembers when each admitted request (and each finished request's
token count) happened and counts only what falls in the last 60 seconds. So an RPM of 60 means at most
60 requests in any 60-second span. Fixed one-minute windows (this module's first design) let a key spend
its budget at 11:59:59 and again at 12:00:00; the usual two-window estimate still let a hammering client
reach 1.75x (simulated). The cost is one entry per request per key for a minute: an RPM of 1,000 is
1,000 small entries.

Admission checks both limits and records the request in one atomic step (a Lua script on Redis, so
replicas cannot race past the limit; Redis's own clock, so replicas' clocks do not matter). Tokens are
known only after the answer, so they are recorded when a request finishes; a key over its token budget
is refused until enough of that usage is more than a minute old. A refusal's Retry-After is the time
until exactly that happens.

Failure policy: if Redis cannot be reached, requests are admitted (fail open) unless
`ANGEL_RATELIMIT_FAIL_OPEN=false`, in which case they get 503 `rate_limiter_unavailable`. Failing open
is the default because keys are still authenticated and the engine queues on its own; each failure is
counted in `gateway_ratelimit_backend_errors_total`.
"""

from __future__ import annotations

import math
import secrets
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

WINDOW_SECONDS = 60.0

# KEYS: request log (zset: score = time), token log (zset: member "<id>:<tokens>"), token sum.
# ARGV: window seconds, rpm, tpm, a unique member for this request.
# Returns {admitted, requests in window, tokens in window, milliseconds until reset or retry}.
_ADMIT_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local w = tonumber(ARGV[1])
local rpm = tonumber(ARGV[2])
local tpm = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - w)
local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - w)
if #old > 0 then
  local gone = 0
  for _, m in ipairs(old) do gone = gone + tonumber(string.match(m, ':(%d+)$')) end
  redis.call('DECRBY', KEYS[3], gone)
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - w)
end
local count = redis.call('ZCARD', KEYS[1])
local sum = tonumber(redis.call('GET', KEYS[3]) or '0')
if rpm > 0 and count >= rpm then
  local e = redis.call('ZRANGE', KEYS[1], count - rpm, count - rpm, 'WITHSCORES')
  return {0, count, sum, math.ceil((tonumber(e[2]) + w - now) * 1000)}
end
if tpm > 0 and sum >= tpm then
  local left = sum
  local es = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
  for i = 1, #es, 2 do
    left = left - tonumber(string.match(es[i], ':(%d+)$'))
    if left < tpm then return {0, count, sum, math.ceil((tonumber(es[i + 1]) + w - now) * 1000)} end
  end
  return {0, count, sum, math.ceil(w * 1000)}
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
local ttl = math.ceil(w * 1000) + 1000
redis.call('PEXPIRE', KEYS[1], ttl)
local reset = w
if sum > 0 then
  local newest = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
  if #newest == 2 then reset = math.max(reset, tonumber(newest[2]) + w - now) end
end
return {1, count + 1, sum, math.ceil(reset * 1000)}
"""

# KEYS: token log, token sum. ARGV: window seconds, member "<id>:<tokens>", tokens.
_ADD_TOKENS_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
redis.call('ZADD', KEYS[1], now, ARGV[2])
redis.call('INCRBY', KEYS[2], tonumber(ARGV[3]))
local ttl = math.ceil(tonumber(ARGV[1]) * 1000) + 1000
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
return 1
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


@dataclass(slots=True)
class _KeyLog:
    requests: deque[float] = field(default_factory=deque)  # admission times, oldest first
    tokens: deque[tuple[float, int]] = field(default_factory=deque)  # (finish time, tokens), oldest first
    token_sum: int = 0

    def expire(self, horizon: float) -> None:
        while self.requests and self.requests[0] <= horizon:
            self.requests.popleft()
        while self.tokens and self.tokens[0][0] <= horizon:
            self.token_sum -= self.tokens.popleft()[1]


class MemoryRateLimiter:
    """Single-process limiter (the default without ANGEL_REDIS_URL)."""

    def __init__(self, window: float = WINDOW_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self._window = window
        self._clock = clock
        self._logs: defaultdict[str, _KeyLog] = defaultdict(_KeyLog)
        self._next_sweep = 0.0

    async def admit(self, key_id: str, rpm: int, tpm: int) -> Decision:
        now = self._clock()
        self._sweep(now)
        log = self._logs[key_id]
        w = self._window
        log.expire(now - w)
        count = len(log.requests)
        if rpm and count >= rpm:
            return Decision(False, rpm, tpm, count, log.token_sum, log.requests[count - rpm] + w - now)
        if tpm and log.token_sum >= tpm:
            left = log.token_sum
            for at, n in log.tokens:
                left -= n
                if left < tpm:
                    return Decision(False, rpm, tpm, count, log.token_sum, at + w - now)
        log.requests.append(now)
        reset = max(w, log.tokens[-1][0] + w - now) if log.tokens else w
        return Decision(True, rpm, tpm, count + 1, log.token_sum, reset)

    async def add_tokens(self, key_id: str, tokens: int) -> None:
        log = self._logs[key_id]
        log.tokens.append((self._clock(), tokens))
        log.token_sum += tokens

    def _sweep(self, now: float) -> None:
        """Forget keys with nothing in the window (bounded memory with many idle keys)."""
        if now < self._next_sweep:
            return
        self._next_sweep = now + self._window
        for key_id in list(self._logs):
            log = self._logs[key_id]
            log.expire(now - self._window)
            if not log.requests and not log.tokens:
                del self._logs[key_id]

    async def close(self) -> None:
        return None


class RedisRateLimiter:
    """Limiter shared by every replica through one Redis (atomic Lua scripts, Redis's clock)."""

    def __init__(self, url: str, prefix: str = "angel:rl", window: float = WINDOW_SECONDS) -> None:
        import redis.asyncio as aioredis

        # Short timeouts: a slow Redis must not stall requests (see the module's failure policy).
        self._redis = aioredis.Redis.from_url(
            url, socket_timeout=0.25, socket_connect_timeout=0.25, health_check_interval=10
        )
        self._admit = self._redis.register_script(_ADMIT_LUA)
        self._add = self._redis.register_script(_ADD_TOKENS_LUA)
        self._prefix = prefix
        self._window = window

    def _keys(self, key_id: str) -> list[str]:
        # {key_id} is a hash tag: one key's three entries share a Redis Cluster slot, as scripts require.
        base = f"{self._prefix}:{{{key_id}}}"
        return [f"{base}:r", f"{base}:t", f"{base}:tsum"]

    async def admit(self, key_id: str, rpm: int, tpm: int) -> Decision:
        member = secrets.token_hex(8)
        try:
            ok, count, used, ms = await self._admit(
                keys=self._keys(key_id), args=[self._window, rpm, tpm, member]
            )
        except Exception as exc:  # connection refused, timeout, Redis restarting
            raise RateLimiterUnavailable(str(exc)) from exc
        return Decision(bool(ok), rpm, tpm, int(count), int(used), int(ms) / 1000)

    async def add_tokens(self, key_id: str, tokens: int) -> None:
        keys = self._keys(key_id)
        try:
            await self._add(
                keys=[keys[1], keys[2]],
                args=[self._window, f"{secrets.token_hex(8)}:{int(tokens)}", int(tokens)],
            )
        except Exception as exc:
            raise RateLimiterUnavailable(str(exc)) from exc

    async def close(self) -> None:
        await self._redis.aclose()


RateLimiter = MemoryRateLimiter | RedisRateLimiter


def make_rate_limiter(redis_url: str | None) -> RateLimiter:
    return RedisRateLimiter(redis_url) if redis_url else MemoryRateLimiter()
