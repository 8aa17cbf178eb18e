"""The chat and completion routes' own refusals (server/routes/chat.py), in process over a MockTransport
upstream: model checks, the request body (JSON, named parameters, size), a key's max_tokens cap, and the
rate limits' 429 and 503."""

from __future__ import annotations

import re

import pytest

from tests.server.helpers import AUTH, MODEL, assert_openai_error, chat_body, db_key


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
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}]}, "model"),
        ("/v1/chat/completions", {"model": MODEL}, "messages"),
        ("/v1/chat/completions", {"model": MODEL, "messages": []}, "messages"),
        ("/v1/chat/completions", {"model": MODEL, "messages": ["hi"]}, "messages[0]"),
        (
            "/v1/chat/completions",
            {"model": MODEL, "messages": [{"role": "user", "content": "a"}, {"role": "x"}]},
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
