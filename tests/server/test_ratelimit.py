"""The rate limiter's sliding-window semantics: in memory (with a controlled clock) and in a real
redis-server (two limiter instances standing for two gateway replicas)."""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import Iterator

import pytest

from server.ratelimit import MemoryRateLimiter, RedisRateLimiter
from tests.support.procs import Proc, start_redis


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def max_in_any_window(times: list[float], window: float) -> int:
    return max((bisect.bisect_left(times, t + window) - i for i, t in enumerate(times)), default=0)


# --- in memory -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rpm", [1, 10, 60])
@pytest.mark.parametrize("step", [0.05, 0.7, 3.1])
async def test_never_more_than_rpm_in_any_60_seconds(rpm: int, step: float) -> None:
    clock = Clock(12345.6)
    lim = MemoryRateLimiter(clock=clock)
    admitted = []
    for _ in range(int(600 / step)):  # a client hammering for ten minutes
        if (await lim.admit("k", rpm, 0)).allowed:
            admitted.append(clock.t)
        clock.t += step
    assert max_in_any_window(admitted, 60.0) <= rpm
    # ...and the limit is usable: over ten minutes the client got (nearly) its full share.
    assert len(admitted) >= min(600 / step, 10 * rpm) * 0.9


async def test_no_double_budget_at_a_minute_boundary() -> None:
    clock = Clock(59.9)
    lim = MemoryRateLimiter(clock=clock)
    for _ in range(10):
        assert (await lim.admit("k", 10, 0)).allowed
    clock.t = 60.1  # a fixed one-minute window would start afresh here
    d = await lim.admit("k", 10, 0)
    assert not d.allowed and d.limited_by == "requests"
    assert d.reset_s == pytest.approx(59.8) and d.retry_after == 60
    assert d.headers()["x-ratelimit-remaining-requests"] == "0"


async def test_retry_after_is_exact() -> None:
    clock = Clock()
    lim = MemoryRateLimiter(clock=clock)
    for i in range(3):
        assert (await lim.admit("k", 3, 0)).allowed
        clock.t += 10 + i  # admitted at 1000, 1010, 1021
    d = await lim.admit("k", 3, 0)  # at 1033
    assert not d.allowed and d.reset_s == pytest.approx(27.0)  # the request from 1000 leaves at 1060
    clock.t += d.reset_s - 0.01
    assert not (await lim.admit("k", 3, 0)).allowed
    clock.t += 0.02
    ok = await lim.admit("k", 3, 0)
    assert ok.allowed and ok.headers()["x-ratelimit-remaining-requests"] == "0"


async def test_tokens_slide_out_of_the_window() -> None:
    clock = Clock()
    lim = MemoryRateLimiter(clock=clock)
    assert (await lim.admit("k", 0, 10)).allowed
    await lim.add_tokens("k", 6)  # finished at 1000
    clock.t += 10
    assert (await lim.admit("k", 0, 10)).allowed
    await lim.add_tokens("k", 6)  # finished at 1010: 12 tokens in the window
    clock.t += 1
    d = await lim.admit("k", 0, 10)
    assert not d.allowed and d.limited_by == "tokens"
    assert d.reset_s == pytest.approx(49.0)  # once the 6 from 1000 leave, 6 < 10
    assert d.headers()["x-ratelimit-remaining-tokens"] == "0"
    clock.t += 49.01
    ok = await lim.admit("k", 0, 10)
    assert ok.allowed and ok.headers()["x-ratelimit-remaining-tokens"] == "4"


async def test_keys_are_independent_and_idle_keys_are_forgotten() -> None:
    clock = Clock()
    lim = MemoryRateLimiter(clock=clock)
    for i in range(1000):
        assert (await lim.admit(f"key-{i}", 1, 0)).allowed
    assert not (await lim.admit("key-7", 1, 0)).allowed
    clock.t += 121  # two windows later the next admission sweeps what is no longer counted
    assert (await lim.admit("key-7", 1, 0)).allowed
    assert set(lim._logs) == {"key-7"}


# --- in a real redis-server -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    p = start_redis(tmp_path_factory.mktemp("redis-rl"))
    yield p
    p.stop()


async def test_redis_replicas_share_an_exact_limit(redis: Proc) -> None:
    # Exactness, not latency, is under test: timeouts that a starved CI machine cannot trip.
    a = RedisRateLimiter(redis.url, prefix="t1", window=2.0, timeout=5.0)
    b = RedisRateLimiter(redis.url, prefix="t1", window=2.0, timeout=5.0)
    try:
        # 40 concurrent admissions split across two "replicas": exactly the limit gets through.
        results = await asyncio.gather(*[(a if i % 2 else b).admit("k", 7, 0) for i in range(40)])
        assert sum(d.allowed for d in results) == 7
        refused = [d for d in results if not d.allowed]
        assert all(d.headers()["x-ratelimit-remaining-requests"] == "0" for d in refused)
        wait = max(d.reset_s for d in refused)
        assert 0 < wait <= 2.0
        await asyncio.sleep(wait + 0.05)
        assert (await a.admit("k", 7, 0)).allowed  # the window slid: room again, when Retry-After said
    finally:
        await a.close()
        await b.close()


async def test_redis_no_double_budget_and_exact_retry(redis: Proc) -> None:
    lim = RedisRateLimiter(redis.url, prefix="t2", window=2.0)
    try:
        first = time.monotonic()
        assert (await lim.admit("k", 2, 0)).allowed
        await asyncio.sleep(1.2)
        assert (await lim.admit("k", 2, 0)).allowed
        d = await lim.admit("k", 2, 0)
        assert not d.allowed
        # The first request leaves the window 2 s after it was admitted: that is the wait.
        assert d.reset_s == pytest.approx(2.0 - (time.monotonic() - first), abs=0.15)
        await asyncio.sleep(max(d.reset_s - 0.2, 0))
        assert not (await lim.admit("k", 2, 0)).allowed
        await asyncio.sleep(0.3)
        assert (await lim.admit("k", 2, 0)).allowed
    finally:
        await lim.close()


async def test_redis_tokens_slide_out(redis: Proc) -> None:
    lim = RedisRateLimiter(redis.url, prefix="t3", window=1.5)
    try:
        assert (await lim.admit("k", 0, 10)).allowed
        await lim.add_tokens("k", 7)
        await lim.add_tokens("k", 5)
        d = await lim.admit("k", 0, 10)
        assert not d.allowed and d.limited_by == "tokens" and d.tokens_used == 12
        assert 1.0 < d.reset_s <= 1.5
        await asyncio.sleep(d.reset_s + 0.05)
        ok = await lim.admit("k", 0, 10)
        assert ok.allowed and ok.tokens_used == 0
    finally:
        await lim.close()


# --- token reservations: admitted requests hold their budget until they settle ---------------------------


async def test_memory_reservation_holds_until_settled_for_the_real_count() -> None:
    clock = Clock()
    lim = MemoryRateLimiter(clock=clock)
    first = await lim.admit("k", 0, 100, reserve=60)
    assert (
        first.allowed and first.tokens_used == 60 and first.headers()["x-ratelimit-remaining-tokens"] == "40"
    )
    second = await lim.admit("k", 0, 100, reserve=60)  # 60 < 100: admitted, the window now holds 120
    assert second.allowed and second.tokens_used == 120
    refused = await lim.admit("k", 0, 100, reserve=60)
    assert not refused.allowed and refused.limited_by == "tokens"
    await lim.settle("k", first.reservation, 10)  # it used 10 of its 60
    await lim.settle("k", second.reservation, 0)  # refused upstream: nothing used
    ok = await lim.admit("k", 0, 100, reserve=60)
    assert ok.allowed and ok.tokens_used == 70


async def test_memory_reservation_older_than_the_window_is_not_taken_back_twice() -> None:
    clock = Clock()
    lim = MemoryRateLimiter(clock=clock)
    d = await lim.admit("k", 0, 100, reserve=80)
    clock.t += 61  # a two-minute stream: its reservation left the window
    assert (await lim.admit("k", 0, 100)).tokens_used == 0
    await lim.settle("k", d.reservation, 30)  # charged when it ends
    assert (await lim.admit("k", 0, 100)).tokens_used == 30


@pytest.mark.parametrize("reserve", [40, 150])
async def test_memory_concurrent_admissions_overspend_by_at_most_one_request(reserve: int) -> None:
    lim = MemoryRateLimiter(clock=Clock())
    admitted = [
        d for d in await asyncio.gather(*[lim.admit("k", 0, 100, reserve) for _ in range(20)]) if d.allowed
    ]
    # Admitted while under the limit: the last one admitted takes the window past it, by one reservation.
    assert len(admitted) == -(-100 // reserve)
    assert len(admitted) * reserve < 100 + reserve


async def test_redis_reservations_bound_concurrent_replicas_and_settle_atomically(redis: Proc) -> None:
    a = RedisRateLimiter(redis.url, prefix="t4", window=5.0, timeout=5.0)
    b = RedisRateLimiter(redis.url, prefix="t4", window=5.0, timeout=5.0)
    try:
        # 40 concurrent admissions from two replicas, each reserving 30 of a TPM of 100: exactly 4 get in.
        results = await asyncio.gather(*[(a if i % 2 else b).admit("k", 0, 100, 30) for i in range(40)])
        admitted = [d for d in results if d.allowed]
        assert len(admitted) == 4
        assert max(d.tokens_used for d in admitted) == 120
        # They settle (concurrently, on both replicas) for what they used: 4 x 5 tokens.
        await asyncio.gather(
            *[(a if i % 2 else b).settle("k", d.reservation, 5) for i, d in enumerate(admitted)]
        )
        d = await a.admit("k", 0, 100, 0)
        assert d.allowed and d.tokens_used == 20
        # A reservation that already left the window is not taken back again.
        late = await b.admit("k", 0, 100, 50)
        assert late.allowed
        await b.settle("k", late.reservation, 0)
        await b.settle("k", late.reservation, 0)  # a second settle of the same reservation takes nothing
        assert (await a.admit("k", 0, 100, 0)).tokens_used == 20
    finally:
        await a.close()
        await b.close()


async def test_redis_reservation_expires_with_the_window(redis: Proc) -> None:
    lim = RedisRateLimiter(redis.url, prefix="t5", window=1.0)
    try:
        d = await lim.admit("k", 0, 100, 90)
        assert d.allowed and d.tokens_used == 90
        await asyncio.sleep(1.1)
        assert (await lim.admit("k", 0, 100, 0)).tokens_used == 0  # expired with the window
        await lim.settle("k", d.reservation, 7)  # charged at the end, once
        assert (await lim.admit("k", 0, 100, 0)).tokens_used == 7
    finally:
        await lim.close()
