"""Per-key requests-per-minute and tokens-per-minute limits, in memory or shared through Redis.

Exact sliding windows: the limiter remembers when each admitted request (and each finished request's
token count) happened and counts only what falls in the last 60 seconds. So an RPM of 60 means at most
60 requests in any 60-second span. Fixed one-minute windows (this module's first design) let a key spend
its budget at 11:59:59 and again at 12:00:00; the usual two-window estimate still let a hammering client
reach 1.75x (simulated). The cost is one entry per request per key for a minute: an RPM of 1,000 is
1,000 small entries.

Admission checks both limits and records the request in one atomic step (a Lua script on Redis, so
replicas cannot race past the limit; Redis's own clock, so replicas' clocks do not matter). Tokens are
known only after the answer, so admission also reserves the tokens the request may use (its max_tokens,
or the key's cap, times its choices, plus an estimate of its prompt) and `settle` replaces the reservation
by the real count when the request ends, however it ends (a client that disconnects is charged what was
streamed to it). A key is admitted while its tokens in the window, reservations included, are under its
TPM: concurrent requests can overspend the limit by at most the one request admitted last (without
reservations every concurrent stream was admitted against the same unspent budget). A key over its token
budget is refused until enough of that usage is more than a minute old, or a running request settles for
less than it reserved; Retry-After is the time until the first happens (an upper bound while requests are
in flight). A reservation older than the window leaves it like any usage; its request is then charged
at settle time.

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
REDIS_POOL_SIZE = 16  # per gateway process; one admission holds a connection for well under 1 ms

# KEYS: request log (zset: score = time), token log (zset: member "<id>:<tokens>"), token sum.
# ARGV: window seconds, rpm, tpm, a unique member for this request, tokens to reserve.
# Admitted with a TPM and a reservation: "<member>:<reserve>" joins the token log (settled later).
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
local reserve = tonumber(ARGV[5])
if tpm > 0 and reserve > 0 then
  redis.call('ZADD', KEYS[2], now, ARGV[4] .. ':' .. reserve)
  redis.call('INCRBY', KEYS[3], reserve)
  redis.call('PEXPIRE', KEYS[2], ttl)
  redis.call('PEXPIRE', KEYS[3], ttl)
  sum = sum + reserve
end
local reset = w
if sum > 0 then
  local newest = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
  if #newest == 2 then reset = math.max(reset, tonumber(newest[2]) + w - now) end
end
return {1, count + 1, sum, math.ceil(reset * 1000)}
"""

# KEYS: token log, token sum. ARGV: window seconds, the reservation's member ("" for none), its tokens,
# a new member "<id>:<tokens>", tokens. The reservation leaves the window (unless it already did: the
# admission script removed it and its tokens then) and the real count enters it, in one atomic step.
_SETTLE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
if ARGV[2] ~= '' and redis.call('ZREM', KEYS[1], ARGV[2]) == 1 then
  redis.call('DECRBY', KEYS[2], tonumber(ARGV[3]))
end
local n = tonumber(ARGV[5])
if n > 0 then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('INCRBY', KEYS[2], n)
  local ttl = math.ceil(tonumber(ARGV[1]) * 1000) + 1000
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
end
return 1
"""


@dataclass(slots=True)
class Decision:
    allowed: bool
    rpm: int
    tpm: int
    requests_used: int
    tokens_used: int  # in the window, this request's reservation included when admitted
    reset_s: float
    reservation: object | None = None  # what `settle` takes back when the request ends

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
class _Tokens:
    """Tokens in a key's window: a request's usage (from when it ended) or reservation (from admission)."""

    at: float
    n: int


@dataclass(slots=True)
class _KeyLog:
    requests: deque[float] = field(default_factory=deque)  # admission times, oldest first
    tokens: deque[_Tokens] = field(default_factory=deque)  # oldest first
    token_sum: int = 0

    def expire(self, horizon: float) -> None:
        while self.requests and self.requests[0] <= horizon:
            self.requests.popleft()
        while self.tokens and self.tokens[0].at <= horizon:
            gone = self.tokens.popleft()
            self.token_sum -= gone.n
            gone.n = 0  # a reservation that left the window: its settle takes nothing back

    def add(self, at: float, n: int) -> _Tokens:
        entry = _Tokens(at, n)
        self.tokens.append(entry)
        self.token_sum += n
        return entry


class MemoryRateLimiter:
    """Single-process limiter (the default without ANGEL_REDIS_URL)."""

    def __init__(self, window: float = WINDOW_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self._window = window
        self._clock = clock
        self._logs: defaultdict[str, _KeyLog] = defaultdict(_KeyLog)
        self._next_sweep = 0.0

    async def admit(self, key_id: str, rpm: int, tpm: int, reserve: int = 0) -> Decision:
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
            for entry in log.tokens:
                left -= entry.n
                if left < tpm:
                    return Decision(False, rpm, tpm, count, log.token_sum, entry.at + w - now)
        log.requests.append(now)
        reset = max(w, log.tokens[-1].at + w - now) if log.tokens else w
        held = log.add(now, reserve) if tpm and reserve > 0 else None
        return Decision(True, rpm, tpm, count + 1, log.token_sum, reset, held)

    async def settle(self, key_id: str, reservation: object | None, tokens: int) -> None:
        """Replace a request's reservation (from `admit`) by the tokens it really used."""
        log = self._logs[key_id]
        if isinstance(reservation, _Tokens):
            log.token_sum -= reservation.n
            reservation.n = 0
        if tokens > 0:
            log.add(self._clock(), tokens)

    async def add_tokens(self, key_id: str, tokens: int) -> None:
        await self.settle(key_id, None, tokens)

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

    def __init__(
        self, url: str, prefix: str = "angel:rl", window: float = WINDOW_SECONDS, timeout: float = 0.25
    ) -> None:
        import redis.asyncio as aioredis

        # Short timeouts: a slow Redis must not stall requests (see the module's failure policy).
        # A bounded pool: a burst of requests waits briefly for one of a few open connections
        # instead of opening one each (a connection storm is what makes connects time out, and
        # many replicas times many connections would crowd Redis's maxclients).
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=REDIS_POOL_SIZE,
            timeout=timeout,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            health_check_interval=10,
        )
        self._redis = aioredis.Redis.from_pool(pool)  # owns the pool: aclose() closes it
        self._admit = self._redis.register_script(_ADMIT_LUA)
        self._settle = self._redis.register_script(_SETTLE_LUA)
        self._prefix = prefix
        self._window = window

    def _keys(self, key_id: str) -> list[str]:
        # {key_id} is a hash tag: one key's three entries share a Redis Cluster slot, as scripts require.
        base = f"{self._prefix}:{{{key_id}}}"
        return [f"{base}:r", f"{base}:t", f"{base}:tsum"]

    async def admit(self, key_id: str, rpm: int, tpm: int, reserve: int = 0) -> Decision:
        member = secrets.token_hex(8)
        reserve = int(reserve) if tpm else 0
        try:
            ok, count, used, ms = await self._admit(
                keys=self._keys(key_id), args=[self._window, rpm, tpm, member, reserve]
            )
        except Exception as exc:  # connection refused, timeout, Redis restarting
            raise RateLimiterUnavailable(str(exc)) from exc
        held = (f"{member}:{reserve}", reserve) if ok and reserve > 0 else None
        return Decision(bool(ok), rpm, tpm, int(count), int(used), int(ms) / 1000, held)

    async def settle(self, key_id: str, reservation: object | None, tokens: int) -> None:
        """Replace a request's reservation (from `admit`) by the tokens it really used, atomically."""
        keys = self._keys(key_id)
        member, reserved = reservation if isinstance(reservation, tuple) else ("", 0)
        tokens = int(tokens)
        try:
            await self._settle(
                keys=[keys[1], keys[2]],
                args=[self._window, member, reserved, f"{secrets.token_hex(8)}:{tokens}", tokens],
            )
        except Exception as exc:
            raise RateLimiterUnavailable(str(exc)) from exc

    async def add_tokens(self, key_id: str, tokens: int) -> None:
        await self.settle(key_id, None, tokens)

    async def close(self) -> None:
        await self._redis.aclose()


RateLimiter = MemoryRateLimiter | RedisRateLimiter


def make_rate_limiter(redis_url: str | None) -> RateLimiter:
    return RedisRateLimiter(redis_url) if redis_url else MemoryRateLimiter()
