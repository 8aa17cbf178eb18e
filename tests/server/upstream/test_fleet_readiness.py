"""`/readyz` behind vLLM's router (server/upstream/fleet.py): not ready as soon as the router has no healthy
engine, the engine count in the detail otherwise, and a plain engine (no `/readiness`) probed as before."""

from __future__ import annotations

import httpx
import pytest

from tests.server.helpers import Upstream


def router_says(status: int, healthy: int, total: int) -> httpx.Response:
    ready = "ready" if status == 200 else "not ready"
    return httpx.Response(status, json={"status": ready, "healthy_workers": healthy, "total_workers": total})


async def test_router_with_healthy_engines_is_ready_and_says_how_many(make_gateway, upstream: Upstream):
    gw = make_gateway(ready_cache_seconds=0)
    upstream.readiness = lambda: router_says(200, 2, 3)
    r = await gw.get("/readyz")
    assert r.status_code == 200 and r.json() == {
        "status": "ready",
        "detail": "ok (router: 2 of 3 engines healthy)",
    }
    # Still a real generation through the router: a router whose engines cannot generate is not ready.
    assert upstream.requests[-1].url.path == "/v1/completions"
    upstream.answer = lambda r: httpx.Response(503, json={"error": "no worker"})
    assert (await gw.get("/readyz")).status_code == 503


@pytest.mark.parametrize("answer", [router_says(503, 0, 2), router_says(200, 0, 2)])
async def test_router_without_a_healthy_engine_is_not_ready_without_generating(
    make_gateway, upstream: Upstream, answer: httpx.Response
):
    gw = make_gateway(ready_cache_seconds=0)
    upstream.readiness = lambda: answer
    r = await gw.get("/readyz")
    assert r.status_code == 503
    assert r.json() == {"status": "not_ready", "detail": "router has no healthy engine (0 of 2)"}
    assert upstream.requests == []  # no token asked of a fleet known to be down


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(404, json={"detail": "Not Found"}),  # a plain vLLM engine
        httpx.Response(200, json={"status": "ok"}),  # something else that has the path
        httpx.Response(200, json={"healthy_workers": True, "total_workers": 2}),
        httpx.Response(200, content=b"<html>"),
        httpx.Response(503, json=[1, 2]),
    ],
)
async def test_an_upstream_that_is_no_router_is_probed_as_one_engine(
    make_gateway, upstream: Upstream, answer: httpx.Response
):
    gw = make_gateway(ready_cache_seconds=0)
    upstream.readiness = lambda: answer
    r = await gw.get("/readyz")
    assert r.status_code == 200 and r.json() == {"status": "ready", "detail": "ok"}
    assert upstream.requests[-1].url.path == "/v1/completions"
