"""The upstream client and its error translation (server/upstream/client.py), through the in-process
gateway: transport failures, the engine's error answers in OpenAI's shape with string codes, and what
the engine is sent."""

from __future__ import annotations

import httpx
import pytest

from tests.server.helpers import AUTH, MODEL, assert_openai_error, chat_body, raising
from tests.support.procs import TEST_KEY


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
async def test_connect_and_read_failures_become_502_or_504(gw, upstream, exc, status, code, stream):
    upstream.answer = raising(exc)
    r = await gw.post("/v1/chat/completions", json=chat_body(stream=stream), headers=AUTH)
    assert_openai_error(r, status, code)


@pytest.mark.parametrize("stream", [False, True])
async def test_upstream_overloaded_is_503_with_its_retry_after(gw, upstream, stream):
    upstream.answer = lambda r: httpx.Response(
        503, json={"error": {"message": "busy"}}, headers={"retry-after": "3"}
    )
    r = await gw.post("/v1/chat/completions", json=chat_body(stream=stream), headers=AUTH)
    assert_openai_error(r, 503, "upstream_overloaded")
    assert r.headers["retry-after"] == "3"


async def test_upstream_500_is_502_without_engine_details(gw, upstream):
    upstream.answer = lambda r: httpx.Response(
        500, json={"error": {"message": "EngineCore died", "code": 500}}
    )
    r = await gw.post("/v1/chat/completions", json=chat_body(), headers=AUTH)
    err = assert_openai_error(r, 502, "upstream_error")
    assert "EngineCore" not in err["message"]  # engine internals stay internal


def vllm_400(message: str, param: str | None) -> httpx.Response:
    # vLLM's error shape: integer code, Python exception name as type.
    error = {"message": message, "type": "BadRequestError", "param": param, "code": 400}
    return httpx.Response(400, json={"error": error})


@pytest.mark.parametrize("stream", [False, True])
async def test_upstream_4xx_keeps_message_and_param_with_a_string_code(gw, upstream, stream):
    upstream.answer = lambda r: vllm_400("temperature must be non-negative, got -1.", "temperature")
    r = await gw.post("/v1/chat/completions", json=chat_body(stream=stream), headers=AUTH)
    err = assert_openai_error(r, 400, "invalid_request_error", "temperature")
    assert err["message"] == "temperature must be non-negative, got -1."
    assert err["type"] == "invalid_request_error"


CONTEXT_MESSAGES = [
    "This model's maximum context length is 2048 tokens. However, your prompt contains 4100 input tokens, "
    "which exceeds this limit even without any output tokens. Please reduce the length of the input prompt.",
    "This model's maximum context length is 2048 tokens. However, your prompt contains 900000 characters "
    "(more than 524288 characters, which is the upper bound for 2048 input tokens). Please reduce the "
    "length of the input prompt.",
    "The decoder prompt (length 2048) plus the number of requested output tokens (at least 1) is longer "
    "than the maximum model length of 2048. Make sure that `max_model_len` is no smaller than the number "
    "of text tokens (prompt + requested output tokens).",
]


@pytest.mark.parametrize("message", CONTEXT_MESSAGES)
@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/chat/completions", chat_body(), "messages"),
        ("/v1/chat/completions", chat_body(stream=True), "messages"),
        ("/v1/completions", {"model": MODEL, "prompt": "x"}, "prompt"),
    ],
)
async def test_vllm_context_length_400_is_context_length_exceeded(gw, upstream, message, path, body, param):
    # OpenAI's code for a prompt longer than the model reads; LangChain keys its overflow error on it.
    upstream.answer = lambda r: vllm_400(message, "input_tokens")
    r = await gw.post(path, json=body, headers=AUTH)
    err = assert_openai_error(r, 400, "context_length_exceeded", param)
    assert err["message"] == message


async def test_upstream_legacy_error_shape_404_is_model_not_found(gw, upstream):
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


async def test_upstream_non_json_error_keeps_its_status(gw, upstream):
    upstream.answer = lambda r: httpx.Response(422, content=b"<html>nope</html>")
    r = await gw.post("/v1/completions", json={"model": MODEL, "prompt": "x"}, headers=AUTH)
    assert_openai_error(r, 422, "invalid_request_error")


async def test_upstream_refusing_the_gateway_key_is_502_auth_failed(gw, upstream):
    upstream.answer = lambda r: httpx.Response(401, json={"error": "Unauthorized"})
    r = await gw.post("/v1/chat/completions", json=chat_body(), headers=AUTH)
    assert_openai_error(r, 502, "upstream_auth_failed")


async def test_upstream_malformed_200_is_502(gw, upstream):
    upstream.answer = lambda r: httpx.Response(200, content=b"definitely not json")
    r = await gw.post("/v1/chat/completions", json=chat_body(), headers=AUTH)
    assert_openai_error(r, 502, "upstream_malformed_response")


async def test_upstream_gets_the_gateway_key_never_the_clients(make_gateway, upstream):
    from pydantic import SecretStr

    gw = make_gateway(upstream_api_key=SecretStr("vllm-internal-key-0123456789"))
    await gw.post("/v1/chat/completions", json=chat_body(), headers=AUTH)
    sent = upstream.requests[-1].headers
    assert sent["authorization"] == "Bearer vllm-internal-key-0123456789"
    assert TEST_KEY not in str(sent.raw)
