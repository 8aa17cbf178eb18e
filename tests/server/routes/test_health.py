"""`/healthz`, `/readyz` and `/metrics` (server/routes/health.py)."""

from __future__ import annotations

import httpx

from tests.server.helpers import AUTH, assert_openai_error


async def test_healthz_never_calls_the_upstream_and_readyz_asks_for_a_token(make_gateway, upstream):
    gw = make_gateway(ready_cache_seconds=0)
    assert (await gw.get("/healthz")).json() == {"status": "ok"}
    assert upstream.requests == []  # liveness never calls the upstream
    r = await gw.get("/readyz")
    assert r.status_code == 200 and r.json()["status"] == "ready"
    assert upstream.requests[-1].url.path == "/v1/completions"  # it really asked for a token
    upstream.answer = lambda r: httpx.Response(500, json={})
    r = await gw.get("/readyz")
    assert r.status_code == 503 and r.json()["status"] == "not_ready"


METRICS_TOKEN = "metrics-" + "f3a9c1d7e5b2" * 3


async def test_metrics_token_required_when_set(make_gateway):
    from pydantic import SecretStr

    gw = make_gateway(metrics_token=SecretStr(METRICS_TOKEN))
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": METRICS_TOKEN}, AUTH):
        r = await gw.get("/metrics", headers=headers)  # an API key is not the metrics token either
        assert_openai_error(r, 401, "invalid_api_key")
        assert r.headers["www-authenticate"] == "Bearer" and "gateway_" not in r.text
    r = await gw.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert r.status_code == 200
    assert 'gateway_auth_failures_total{reason="metrics_token"} 4.0' in r.text
