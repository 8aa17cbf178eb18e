"""Every error branch of the gateway, in process, with the upstream replaced by httpx.MockTransport."""

from __future__ import annotations

import re
import time

import httpx
import orjson
import pytest

from server.db import Database
from server.keys import KeyStore
from tests.gateway.conftest import AUTH, MODEL, chat_body, completion_json, state_of
from tests.support.procs import TEST_KEY


def assert_openai_error(r: httpx.Response, status: int, code: str, param: str | None = None) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["code"] == code and isinstance(err["message"], str) and err["message"]
    assert err["param"] == param
    # Every response carries a request id and the (here empty) safety header.
    assert len(r.headers["x-request-id"]) >= 8
    assert r.headers["x-angel-safety"] == ""
    return err


def db_key(tmp_path, **kw) -> str:
    key, _ = KeyStore(Database(f"sqlite:///{tmp_path}/gw.db")).create(kw.pop("name", "k"), **kw)
    return key


# --- authentication -------------------------------------------------------------------------------------


async def test_missing_key(gw, upstream):
    r = await gw.post("/v1/chat/completions", json=chat_body())
    err = assert_openai_error(r, 401, "invalid_api_key")
    assert err["type"] == "authentication_error"
    assert upstream.requests == []


@pytest.mark.parametrize(
    "header",
    ["Basic abc", "Bearer", "Bearer    ", f"Token {TEST_KEY}", f"Bearer {TEST_KEY} x", "Bearer " + "x" * 600],
)
async def test_garbled_key(gw, upstream, header):
    r = await gw.post("/v1/chat/completions", json=chat_body(), headers={"Authorization": header})
    assert_openai_error(r, 401, "invalid_api_key")
    assert upstream.requests == []


async def test_wrong_key(gw):
    r = await gw.get("/v1/models", headers={"Authorization": "Bearer sk-angel-not-a-real-key-at-all-xyz"})
    assert_openai_error(r, 401, "invalid_api_key")


async def test_revoked_key(make_gateway, tmp_path):
    key = db_key(tmp_path, name="rev")
    gw = make_gateway(key_cache_seconds=0)
    assert (
        await gw.post("/v1/chat/completions", json=chat_body(), headers={"Authorization": f"Bearer {key}"})
    ).status_code == 200
    assert KeyStore(Database(f"sqlite:///{tmp_path}/gw.db")).revoke("rev") == 1
    r = await gw.post("/v1/chat/completions", json=chat_body(), headers={"Authorization": f"Bearer {key}"})
    assert "revoked" in assert_openai_error(r, 401, "invalid_api_key")["message"]


async def test_expired_key(make_gateway, tmp_path):
    key = db_key(tmp_path, name="old", expires_at=time.time() - 1)
    r = await make_gateway().post(
        "/v1/chat/completions", json=chat_body(), headers={"Authorization": f"Bearer {key}"}
    )
    assert "expired" in assert_openai_error(r, 401, "invalid_api_key")["message"]


async def test_key_store_down_fails_closed(make_gateway, tmp_path):
    key = db_key(tmp_path, name="k1")
    gw = make_gateway()
    state_of(gw).resolver.store.db.close()  # the database goes away
    r = await gw.post("/v1/chat/completions", json=chat_body(), headers={"Authorization": f"Bearer {key}"})
    assert_openai_error(r, 503, "key_store_unavailable")


# --- models ----------------------------------------------------------------------------------------------


async def test_model_not_allowed(make_gateway, tmp_path, upstream):
    key = db_key(tmp_path, name="narrow", allowed_models=["other-model"])
    r = await make_gateway().post(
        "/v1/chat/completions", json=chat_body(), headers={"Authorization": f"Bearer {key}"}
    )
    err = assert_openai_error(r, 403, "model_not_allowed", "model")
    assert err["type"] == "permission_error"
    assert upstream.requests == []


async def test_model_not_found(gw, upstream):
    r = await gw.post("/v1/chat/completions", json=chat_body(model="nope"), headers=AUTH)
    assert_openai_error(r, 404, "model_not_found", "model")
    assert upstream.requests == []


async def test_client_model_names_do_not_become_metric_labels(gw):
    for i in range(3):
        await gw.post("/v1/chat/completions", json=chat_body(model=f"scanner-{i}"), headers=AUTH)
    text = (await gw.get("/metrics")).text
    assert "scanner-" not in text
    assert 'gateway_requests_total{model="",route="/v1/chat/completions",status="404"} 3.0' in text


async def test_models_listing_filtered_by_key(make_gateway, tmp_path):
    key = db_key(tmp_path, name="narrow", allowed_models=["other-model"])
    gw = make_gateway()
    full = (await gw.get("/v1/models", headers=AUTH)).json()
    assert {m["id"] for m in full["data"]} == {MODEL, "other-model"}
    narrow = (await gw.get("/v1/models", headers={"Authorization": f"Bearer {key}"})).json()
    assert [m["id"] for m in narrow["data"]] == ["other-model"]


# --- request body ----------------------------------------------------------------------------------------


async def test_bad_json(gw):
    r = await gw.post("/v1/chat/completions", content=b"{not json", headers=AUTH)
    assert_openai_error(r, 400, "invalid_request_error")


async def test_body_not_object(gw):
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
async def test_bad_params_are_named(gw, upstream, path, body, param):
    r = await gw.post(path, json=body, headers=AUTH)
    assert_openai_error(r, 400, "invalid_request_error", param)
    assert upstream.requests == []


async def test_max_tokens_cap(make_gateway, tmp_path, upstream):
    key = db_key(tmp_path, name="capped", max_tokens=50)
    gw, h = make_gateway(), {"Authorization": f"Bearer {key}"}
    r = await gw.post("/v1/chat/completions", json=chat_body(max_tokens=51), headers=h)
    assert_openai_error(r, 400, "invalid_request_error", "max_tokens")
    assert (await gw.post("/v1/chat/completions", json=chat_body(), headers=h)).status_code == 200
    assert upstream.last_json()["max_tokens"] == 50
    assert (await gw.post("/v1/chat/completions", json=chat_body(max_tokens=7), headers=h)).status_code == 200
    assert upstream.last_json()["max_tokens"] == 7


async def test_oversized_body_declared(make_gateway, upstream):
    gw = make_gateway(max_body_bytes=2048)
    big = chat_body(messages=[{"role": "user", "content": "x" * 5000}])
    r = await gw.post("/v1/chat/completions", json=big, headers=AUTH)
    assert_openai_error(r, 413, "request_too_large")
    assert upstream.requests == []


async def test_oversized_body_chunked(make_gateway, upstream):
    gw = make_gateway(max_body_bytes=2048)

    async def body():  # no content-length: the limit applies while reading
        for _ in range(10):
            yield b" " * 1000

    r = await gw.post("/v1/chat/completions", content=body(), headers=AUTH)
    assert_openai_error(r, 413, "request_too_large")
    assert upstream.requests == []


# --- rate limits -----------------------------------------------------------------------------------------


async def test_rpm_limit_429(make_gateway, upstream):
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


async def test_tpm_limit_429(make_gateway, upstream):
    gw = make_gateway(default_tpm=10)  # each mocked answer uses 8 tokens
    for _ in range(2):
        assert (await gw.post("/v1/chat/completions", json=chat_body(), headers=AUTH)).status_code == 200
    r = await gw.post("/v1/chat/completions", json=chat_body(), headers=AUTH)
    assert_openai_error(r, 429, "rate_limit_exceeded")
    assert r.headers["x-ratelimit-limit-tokens"] == "10"
    assert r.headers["x-ratelimit-remaining-tokens"] == "0"
    assert "retry-after" in r.headers


@pytest.mark.parametrize(("fail_open", "status"), [(True, 200), (False, 503)])
async def test_redis_down_policy(make_gateway, fail_open, status):
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


# --- upstream failures -----------------------------------------------------------------------------------


def _raise(exc: Exception):
    def answer(request: httpx.Request) -> httpx.Response:
        raise exc

    return answer


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (httpx.ConnectError("refused"), 502, "upstream_unavailable"),
        (httpx.RemoteProtocolError("reset"), 502, "upstream_unavailable"),
        (httpx.ReadTimeout("slow"), 504, "upstream_timeout"),
        (httpx.ConnectTimeout("slow"), 504, "upstream_timeout"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_upstream_transport_failures(gw, upstream, exc, status, code, stream):
    upstream.answer = _raise(exc)
    r = await gw.post("/v1/chat/completions", json=chat_body(stream=stream), headers=AUTH)
    assert_openai_error(r, status, code)


@pytest.mark.parametrize("stream", [False, True])
async def test_upstream_overloaded_503(gw, upstream, stream):
    upstream.answer = lambda r: httpx.Response(
        503, json={"error": {"message": "busy"}}, headers={"retry-after": "3"}
    )
    r = await gw.post("/v1/chat/completions", json=chat_body(stream=stream), headers=AUTH)
    assert_openai_error(r, 503, "upstream_overloaded")
    assert r.headers["retry-after"] == "3"


async def test_upstream_500_is_502(gw, upstream):
    upstream.answer = lambda r: httpx.Response(
        500, json={"error": {"message": "EngineCore died", "code": 500}}
    )
    r = await gw.post("/v1/chat/completions", json=chat_body(), headers=AUTH)
    err = assert_openai_error(r, 502, "upstream_error")
    assert "EngineCore" not in err["message"]  # engine internals stay internal


@pytest.mark.parametrize("stream", [False, True])
async def test_upstream_4xx_translated(gw, upstream, stream):
    # vLLM's error shape: integer code, Python exception name as type.
    upstream.answer = lambda r: httpx.Response(
        400,
        json={
            "error": {
                "message": "This model's maximum context length is 32 tokens.",
                "type": "BadRequestError",
                "param": "max_tokens",
                "code": 400,
            }
        },
    )
    r = await gw.post("/v1/chat/completions", json=chat_body(stream=stream), headers=AUTH)
    err = assert_openai_error(r, 400, "invalid_request_error", "max_tokens")
    assert err["message"].startswith("This model's maximum context length")
    assert err["type"] == "invalid_request_error"


async def test_upstream_legacy_error_shape_and_404(gw, upstream):
    upstream.answer = lambda r: httpx.Response(
        404,
        json={
            "object": "error",
            "message": "The model `x` does not exist.",
            "type": "NotFoundError",
            "param": None,
            "code": 404,
        },
    )
    r = await gw.post("/v1/chat/completions", json=chat_body(), headers=AUTH)
    assert_openai_error(r, 404, "model_not_found")


async def test_upstream_non_json_error(gw, upstream):
    upstream.answer = lambda r: httpx.Response(422, content=b"<html>nope</html>")
    r = await gw.post("/v1/completions", json={"model": MODEL, "prompt": "x"}, headers=AUTH)
    assert_openai_error(r, 422, "invalid_request_error")


async def test_upstream_auth_misconfigured(gw, upstream):
    upstream.answer = lambda r: httpx.Response(401, json={"error": "Unauthorized"})
    r = await gw.post("/v1/chat/completions", json=chat_body(), headers=AUTH)
    assert_openai_error(r, 502, "upstream_auth_failed")


async def test_upstream_malformed_200(gw, upstream):
    upstream.answer = lambda r: httpx.Response(200, content=b"definitely not json")
    r = await gw.post("/v1/chat/completions", json=chat_body(), headers=AUTH)
    assert_openai_error(r, 502, "upstream_malformed_response")


# --- request ids, upstream headers, other routes ---------------------------------------------------------


async def test_request_id_in_out_forwarded(gw, upstream):
    r = await gw.post(
        "/v1/chat/completions", json=chat_body(), headers={**AUTH, "x-request-id": "abc-123.X:9"}
    )
    assert r.headers["x-request-id"] == "abc-123.X:9"
    assert upstream.requests[-1].headers["x-request-id"] == "abc-123.X:9"
    r = await gw.post("/v1/chat/completions", json=chat_body(), headers=AUTH)
    rid = r.headers["x-request-id"]
    assert len(rid) == 32 and upstream.requests[-1].headers["x-request-id"] == rid


async def test_unsafe_request_id_replaced(gw, upstream):
    r = await gw.post(
        "/v1/chat/completions", json=chat_body(), headers={**AUTH, "x-request-id": 'a b"{}' + "x" * 200}
    )
    assert r.headers["x-request-id"] != "a b" and len(r.headers["x-request-id"]) == 32
    assert upstream.requests[-1].headers["x-request-id"] == r.headers["x-request-id"]


async def test_client_key_never_forwarded(make_gateway, upstream):
    from pydantic import SecretStr

    gw = make_gateway(upstream_api_key=SecretStr("vllm-internal-key-0123456789"))
    await gw.post("/v1/chat/completions", json=chat_body(), headers=AUTH)
    sent = upstream.requests[-1].headers
    assert sent["authorization"] == "Bearer vllm-internal-key-0123456789"
    assert TEST_KEY not in str(sent.raw)


async def test_unknown_route_and_method(gw):
    r = await gw.get("/v1/nothing-here", headers=AUTH)
    assert_openai_error(r, 404, "not_found")
    r = await gw.get("/v1/chat/completions", headers=AUTH)
    assert_openai_error(r, 405, "method_not_allowed")


async def test_healthz_and_readyz(make_gateway, upstream):
    gw = make_gateway(ready_cache_seconds=0)
    assert (await gw.get("/healthz")).json() == {"status": "ok"}
    assert upstream.requests == []  # liveness never calls the upstream
    r = await gw.get("/readyz")
    assert r.status_code == 200 and r.json()["status"] == "ready"
    assert upstream.requests[-1].url.path == "/v1/completions"  # it really asked for a token
    upstream.answer = lambda r: httpx.Response(500, json={})
    r = await gw.get("/readyz")
    assert r.status_code == 503 and r.json()["status"] == "not_ready"


async def test_readyz_cached(make_gateway, upstream):
    gw = make_gateway(ready_cache_seconds=30)
    for _ in range(5):
        assert (await gw.get("/readyz")).status_code == 200
    assert len(upstream.requests) == 1


async def test_readyz_hung_engine(make_gateway, upstream):
    gw = make_gateway(ready_cache_seconds=0, ready_timeout=0.2)
    upstream.answer = _raise(httpx.ReadTimeout("hung"))
    r = await gw.get("/readyz")
    assert r.status_code == 503 and "timed out" in r.json()["detail"]


async def test_metrics_names(gw, upstream):
    await gw.post("/v1/chat/completions", json=chat_body(), headers=AUTH)
    await gw.post("/v1/chat/completions", json=chat_body())  # auth failure
    text = (await gw.get("/metrics")).text
    for name in (
        "gateway_requests_total",
        "gateway_request_duration_seconds",
        "gateway_time_to_first_token_seconds",
        "gateway_overhead_seconds",
        "gateway_tokens_total",
        "gateway_inflight_requests",
        "gateway_ratelimit_rejections_total",
        "gateway_auth_failures_total",
        "gateway_upstream_errors_total",
        "gateway_safety_events_total",
    ):
        assert f"# TYPE {name}" in text or f"# TYPE {name.removesuffix('_total')}" in text, name
    assert f'gateway_requests_total{{model="{MODEL}",route="/v1/chat/completions",status="200"}} 1.0' in text
    assert f'gateway_tokens_total{{kind="prompt",model="{MODEL}"}} 5.0' in text
    assert f'gateway_tokens_total{{kind="completion",model="{MODEL}"}} 3.0' in text
    assert 'gateway_auth_failures_total{reason="missing"} 1.0' in text


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


@pytest.mark.parametrize("bad", ["changeme", "short-token"])
def test_metrics_token_must_be_strong(bad):
    from pydantic import ValidationError

    from server.settings import Settings

    with pytest.raises(ValidationError, match="metrics_token"):
        Settings(metrics_token=bad)


async def test_audit_rows_without_content(make_gateway, tmp_path, upstream):
    gw = make_gateway()
    secret_prompt = "my private symptom zebra-42"
    upstream.answer = lambda r: httpx.Response(200, json=completion_json("secret answer quokka-7"))
    r = await gw.post(
        "/v1/chat/completions",
        json=chat_body(messages=[{"role": "user", "content": secret_prompt}]),
        headers={**AUTH, "x-request-id": "audit-1"},
    )
    assert r.status_code == 200
    await gw.post("/v1/chat/completions", json=chat_body(), headers={"x-request-id": "audit-2"})
    state = state_of(gw)
    state.audit.close()  # flush the batch writer
    rows = Database(f"sqlite:///{tmp_path}/gw.db").fetchall(
        "SELECT request_id, key_name, route, model, status, prompt_tokens, completion_tokens FROM audit_log "
        "ORDER BY ts"
    )
    assert rows == [
        ("audit-1", "env-key-0", "/v1/chat/completions", MODEL, 200, 5, 3),
        ("audit-2", None, "/v1/chat/completions", None, 401, None, None),
    ]
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("gw.db*"))
    for secret in (secret_prompt, "quokka-7", TEST_KEY):
        assert secret.encode() not in raw


async def test_logs_never_hold_content_or_keys(gw, upstream, caplog):
    import logging

    caplog.set_level(logging.INFO)
    upstream.answer = lambda r: httpx.Response(200, json=completion_json("answer-text-pelican"))
    await gw.post(
        "/v1/chat/completions",
        json=chat_body(messages=[{"role": "user", "content": "prompt-text-heron"}]),
        headers=AUTH,
    )
    from server.logs import JsonFormatter

    lines = [JsonFormatter().format(rec) for rec in caplog.records]
    request_lines = [orjson.loads(line) for line in lines if '"msg":"request"' in line]
    assert request_lines and request_lines[0]["status"] == 200 and request_lines[0]["key"] == "env-key-0"
    assert request_lines[0]["prompt_tokens"] == 5
    joined = "\n".join(lines)
    for secret in ("prompt-text-heron", "answer-text-pelican", TEST_KEY):
        assert secret not in joined
