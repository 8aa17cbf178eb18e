"""The readiness probe (server/upstream/probes.py): one cached token request, a hung engine reported."""

from __future__ import annotations

import httpx

from tests.server.helpers import raising


async def test_readiness_is_cached(make_gateway, upstream):
    gw = make_gateway(ready_cache_seconds=30)
    for _ in range(5):
        assert (await gw.get("/readyz")).status_code == 200
    assert len(upstream.requests) == 1


async def test_readiness_reports_a_hung_engine_as_timed_out(make_gateway, upstream):
    gw = make_gateway(ready_cache_seconds=0, ready_timeout=0.2)
    upstream.answer = raising(httpx.ReadTimeout("hung"))
    r = await gw.get("/readyz")
    assert r.status_code == 503 and "timed out" in r.json()["detail"]
