"""The chat and completion routes' own refusals (server/routes/chat.py), in process over a MockTransport
upstream: model checks, the request body (JSON, named parameters, size), what is accepted as vLLM accepts
it with safety off, prompts certainly longer than the model reads, a key's max_tokens cap, and the rate
limits' 429 and 503 (with token reservations for concurrent requests)."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from server.context import UNSERVED_MODEL
from server.validation import MAX_CHARS_PER_TOKEN
from tests.server.helpers import (
    AUTH,
    MODEL,
    assert_openai_error,
    chat_body,
    completion_json,
    db_key,
    state_of,
)


async def test_model_outside_the_keys_list_is_403(make_gateway, tmp_path, upstream):
    key = db_key(tmp_path, name="narrow", allowed_models=["other-model"])
    r = await make_gateway().post(
        "/v1/chat/completions", json=chat_body(), headers={"Authorization": f"Bearer {key}"}
    )
    err = assert_openai_error(r, 403, "model_not_allowed", "model")
    assert err["type"] == "permission_error"
    assert upstream.requests == []


async def test_model_the_upstream_does_not_serve_is_404(gw, upstream):
    r = await gw.post("/v1/chat/completions", json=chat_body(model="nope"), headers=AUTH)
    assert_openai_error(r, 404, "model_not_found", "model")
    assert upstream.requests == []


async def test_invalid_json_body_is_400(gw):
    r = await gw.post("/v1/chat/completions", content=b"{not json", headers=AUTH)
    assert_openai_error(r, 400, "invalid_request_error")


async def test_json_body_that_is_not_an_object_is_400(gw):
    r = await gw.post("/v1/chat/completions", content=b"[1,2]", headers=AUTH)
    assert_openai_error(r, 400, "invalid_request_error")


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/chat/completions", {"model": MODEL}, "messages"),
        ("/v1/chat/completions", {"model": MODEL, "messages": []}, "messages"),
        ("/v1/chat/completions", {"model": MODEL, "messages": ["hi"]}, "messages[0]"),
        (
            "/v1/chat/completions",
            {"model": MODEL, "messages": [{"role": "user", "content": "a"}, {"content": "x"}]},
            "messages[1].role",
        ),
        (
            "/v1/chat/completions",
            {"model": MODEL, "messages": [{"role": "user", "content": 5}]},
            "messages[0].content",
        ),
        (
            "/v1/chat/completions",
            {"model": MODEL, "messages": [{"role": ["user"], "content": "x"}]},
            "messages[0].role",
        ),
        ("/v1/chat/completions", {"model": ["m"], "messages": [{"role": "user", "content": "x"}]}, "model"),
        ("/v1/chat/completions", chat_body(temperature=5), "temperature"),
        ("/v1/chat/completions", chat_body(temperature="hot"), "temperature"),
        ("/v1/chat/completions", chat_body(top_p=0), "top_p"),
        ("/v1/chat/completions", chat_body(max_tokens=0), "max_tokens"),
        ("/v1/chat/completions", chat_body(max_tokens=True), "max_tokens"),
        ("/v1/chat/completions", chat_body(max_completion_tokens=-3), "max_completion_tokens"),
        ("/v1/chat/completions", chat_body(n=0), "n"),
        ("/v1/chat/completions", chat_body(stream="yes"), "stream"),
        ("/v1/chat/completions", chat_body(stream=True, stream_options=[]), "stream_options"),
        (
            "/v1/chat/completions",
            chat_body(stream=True, stream_options={"include_usage": "y"}),
            "stream_options.include_usage",
        ),
        ("/v1/completions", {"model": MODEL, "prompt": 5}, "prompt"),
        ("/v1/completions", {"model": MODEL, "prompt": []}, "prompt"),
        ("/v1/completions", {"model": MODEL}, "prompt"),
    ],
)
async def test_bad_params_are_named_in_the_400(gw, upstream, path, body, param):
    r = await gw.post(path, json=body, headers=AUTH)
    assert_openai_error(r, 400, "invalid_request_error", param)
    assert upstream.requests == []


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "", "messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": MODEL, "messages": [{"role": "user", "content": "a"}, {"role": "x"}]}, "messages[1].role"),
    ],
)
async def test_with_safety_on_model_is_required_and_roles_must_be_known(
    make_gateway, upstream, real_engine, body, param
):
    gw = make_gateway(safety_engine=real_engine)
    r = await gw.post("/v1/chat/completions", json=body, headers=AUTH)
    assert_openai_error(r, 400, "invalid_request_error", param)
    assert upstream.requests == []


async def test_with_safety_off_roles_and_a_missing_model_pass_as_vllm_takes_them(gw, upstream):
    # vLLM accepts any role (its chat template decides) and serves its default model without `model`.
    msgs = [{"role": "operator", "content": "be brief"}, {"role": "user", "content": "hi"}]
    r = await gw.post("/v1/chat/completions", json={"messages": msgs}, headers=AUTH)
    assert r.status_code == 200, r.text
    sent = upstream.last_json()
    assert sent["messages"] == msgs
    assert sent["model"] == MODEL  # the upstream's first model card: vLLM's default
    r = await gw.post("/v1/completions", json={"model": "", "prompt": "x"}, headers=AUTH)
    assert r.status_code == 200 and upstream.last_json()["model"] == MODEL


async def test_unserved_model_is_never_logged_or_stored(gw, upstream, tmp_path, caplog):
    phi = "Jane Roe 1961-04-02"
    caplog.set_level("INFO", logger="server.request")
    r = await gw.post("/v1/chat/completions", json=chat_body(model=phi), headers=AUTH)
    assert_openai_error(r, 404, "model_not_found", "model")
    assert (await gw.post("/v1/chat/completions", json=chat_body(), headers=AUTH)).status_code == 200
    lines = [rec for rec in caplog.records if rec.name == "server.request"]
    assert [getattr(rec, "model", None) for rec in lines] == [UNSERVED_MODEL, MODEL]
    state = state_of(gw)
    state.audit.close()  # flush the batch writer
    from server.db import Database

    rows = Database(f"sqlite:///{tmp_path}/gw.db").fetchall("SELECT model FROM audit_log ORDER BY ts")
    assert [row[0] for row in rows] == [UNSERVED_MODEL, MODEL]
    assert phi not in caplog.text


def models_with_context(max_model_len: int) -> httpx.Response:
    card = {"id": MODEL, "object": "model", "max_model_len": max_model_len}
    return httpx.Response(200, json={"object": "list", "data": [card]})


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        (
            "/v1/chat/completions",
            chat_body(messages=[{"role": "user", "content": "x" * 100 * 128}]),
            "messages",
        ),
        (
            "/v1/chat/completions",
            chat_body(messages=[{"role": "user", "content": [{"type": "text", "text": "y" * 100 * 128}]}]),
            "messages",
        ),
        ("/v1/completions", {"model": MODEL, "prompt": "z" * 100 * 128}, "prompt"),
        ("/v1/completions", {"model": MODEL, "prompt": ["short", "z" * 100 * 128]}, "prompt"),
        ("/v1/completions", {"model": MODEL, "prompt": list(range(100))}, "prompt"),
    ],
)
async def test_prompt_certainly_longer_than_the_model_reads_is_refused_early(gw, upstream, path, body, param):
    upstream.models = lambda: models_with_context(100)
    r = await gw.post(path, json=body, headers=AUTH)
    err = assert_openai_error(r, 400, "context_length_exceeded", param)
    assert "maximum context length is 100 tokens" in err["message"]
    assert upstream.requests == []  # neither scanned nor sent


async def test_prompt_that_may_fit_or_asks_for_truncation_goes_upstream(gw, upstream):
    upstream.models = lambda: models_with_context(100)
    may_fit = "x" * (99 * MAX_CHARS_PER_TOKEN)  # at least 99 tokens: the engine decides
    r = await gw.post(
        "/v1/chat/completions", json=chat_body(messages=[{"role": "user", "content": may_fit}]), headers=AUTH
    )
    assert r.status_code == 200
    body = chat_body(messages=[{"role": "user", "content": "x" * 100 * 128}], truncate_prompt_tokens=50)
    assert (await gw.post("/v1/chat/completions", json=body, headers=AUTH)).status_code == 200
    assert len(upstream.requests) == 2


async def test_key_max_tokens_refuses_larger_requests_and_fills_absent_ones(make_gateway, tmp_path, upstream):
    key = db_key(tmp_path, name="capped", max_tokens=50)
    gw, h = make_gateway(), {"Authorization": f"Bearer {key}"}
    r = await gw.post("/v1/chat/completions", json=chat_body(max_tokens=51), headers=h)
    assert_openai_error(r, 400, "invalid_request_error", "max_tokens")
    assert (await gw.post("/v1/chat/completions", json=chat_body(), headers=h)).status_code == 200
    assert upstream.last_json()["max_tokens"] == 50
    assert (await gw.post("/v1/chat/completions", json=chat_body(max_tokens=7), headers=h)).status_code == 200
    assert upstream.last_json()["max_tokens"] == 7


async def test_body_declared_over_the_limit_is_413(make_gateway, upstream):
    gw = make_gateway(max_body_bytes=2048)
    big = chat_body(messages=[{"role": "user", "content": "x" * 5000}])
    r = await gw.post("/v1/chat/completions", json=big, headers=AUTH)
    assert_openai_error(r, 413, "request_too_large")
    assert upstream.requests == []


async def test_chunked_body_over_the_limit_is_413_while_reading(make_gateway, upstream):
    gw = make_gateway(max_body_bytes=2048)

    async def body():  # no content-length: the limit applies while reading
        for _ in range(10):
            yield b" " * 1000

    r = await gw.post("/v1/chat/completions", content=body(), headers=AUTH)
    assert_openai_error(r, 413, "request_too_large")
    assert upstream.requests == []


async def test_requests_over_the_rpm_get_429_with_ratelimit_headers(make_gateway, upstream):
    gw = make_gateway(default_rpm=2)
    ok = await gw.post("/v1/chat/completions", json=chat_body(), headers=AUTH)
    assert ok.status_code == 200
    assert ok.headers["x-ratelimit-limit-requests"] == "2"
    assert ok.headers["x-ratelimit-remaining-requests"] == "1"
    assert (await gw.post("/v1/chat/completions", json=chat_body(), headers=AUTH)).status_code == 200
    r = await gw.post("/v1/chat/completions", json=chat_body(), headers=AUTH)
    err = assert_openai_error(r, 429, "rate_limit_exceeded")
    assert err["type"] == "rate_limit_error"
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert r.headers["x-ratelimit-limit-requests"] == "2"
    assert r.headers["x-ratelimit-remaining-requests"] == "0"
    assert r.headers["x-ratelimit-reset-requests"].endswith("s")
    assert len(upstream.requests) == 2
    metrics = (await gw.get("/metrics")).text
    assert 'gateway_ratelimit_rejections_total{limit="requests"} 1.0' in metrics


async def test_concurrent_requests_overspend_the_tpm_by_at_most_one_request(make_gateway, upstream):
    # Each request reserves its max_tokens (40) and its prompt's estimate (2) against a TPM of 100: the
    # third admission takes the window to 126, so the fourth and fifth are refused while those three run.
    gw = make_gateway(default_tpm=100)
    release = asyncio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        await release.wait()
        return httpx.Response(200, json=completion_json())  # 8 tokens used

    upstream.answer = slow
    calls = [gw.post("/v1/chat/completions", json=chat_body(max_tokens=40), headers=AUTH) for _ in range(5)]
    tasks = [asyncio.ensure_future(c) for c in calls]
    await asyncio.sleep(0.2)
    release.set()
    statuses = sorted(r.status_code for r in await asyncio.gather(*tasks))
    assert statuses == [200, 200, 200, 429, 429]
    # Settled at 8 tokens each: 24 in the window, so the key is admitted again at once.
    r = await gw.post("/v1/chat/completions", json=chat_body(max_tokens=40), headers=AUTH)
    assert r.status_code == 200
    assert r.headers["x-ratelimit-remaining-tokens"] == str(100 - 24 - 42)


async def test_a_refused_request_gives_its_reservation_back(make_gateway, upstream):
    gw = make_gateway(default_tpm=100)
    upstream.answer = lambda r: httpx.Response(400, json={"error": {"message": "bad", "code": 400}})
    for _ in range(5):  # each reserves 42, is refused upstream and settles at 0 tokens
        r = await gw.post("/v1/chat/completions", json=chat_body(max_tokens=40), headers=AUTH)
        assert r.status_code == 400
    upstream.answer = lambda r: httpx.Response(200, json=completion_json())
    assert (await gw.post("/v1/chat/completions", json=chat_body(), headers=AUTH)).status_code == 200


async def test_tokens_over_the_tpm_get_429(make_gateway, upstream):
    gw = make_gateway(default_tpm=10)  # each mocked answer uses 8 tokens
    for _ in range(2):
        assert (await gw.post("/v1/chat/completions", json=chat_body(), headers=AUTH)).status_code == 200
    r = await gw.post("/v1/chat/completions", json=chat_body(), headers=AUTH)
    assert_openai_error(r, 429, "rate_limit_exceeded")
    assert r.headers["x-ratelimit-limit-tokens"] == "10"
    assert r.headers["x-ratelimit-remaining-tokens"] == "0"
    assert "retry-after" in r.headers


@pytest.mark.parametrize(("fail_open", "status"), [(True, 200), (False, 503)])
async def test_redis_down_admits_when_fail_open_else_503(make_gateway, fail_open, status):
    # A real Redis client pointed at a port where nothing listens.
    from tests.support.procs import free_port

    gw = make_gateway(
        default_rpm=5, redis_url=f"redis://127.0.0.1:{free_port()}/0", ratelimit_fail_open=fail_open
    )
    r = await gw.post("/v1/chat/completions", json=chat_body(), headers=AUTH)
    assert r.status_code == status
    if status == 503:
        assert_openai_error(r, 503, "rate_limiter_unavailable")
    m = re.search(
        r"^gateway_ratelimit_backend_errors_total (\S+)$", (await gw.get("/metrics")).text, re.MULTILINE
    )
    assert m and float(m.group(1)) >= 1
