"""Randomised request bodies (seeded, so failures reproduce): the gateway never answers 5xx through
its own fault, and every error is OpenAI-shaped. The upstream is a MockTransport that accepts anything."""

from __future__ import annotations

import json
import random

import pytest

from tests.server.helpers import AUTH, MODEL

VALUES = [
    None,
    True,
    False,
    0,
    -1,
    1,
    7,
    10**30,
    1.5,
    float("1e308"),
    "",
    "x",
    "user",
    MODEL,
    [],
    [1],
    ["a"],
    [[1, 2]],
    {},
    {"role": "user"},
    {"include_usage": True},
    {"a": {"b": []}},
    "\u202e\u200d",
    "😀" * 3,
]
FIELDS = [
    "model",
    "messages",
    "prompt",
    "stream",
    "stream_options",
    "max_tokens",
    "max_completion_tokens",
    "n",
    "temperature",
    "top_p",
    "tools",
    "user",
    "logprobs",
]


def random_value(rng: random.Random, depth: int = 0) -> object:
    r = rng.random()
    if depth < 3 and r < 0.15:
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if depth < 3 and r < 0.3:
        return {
            rng.choice(["role", "content", "type", "text", "x"]): random_value(rng, depth + 1)
            for _ in range(rng.randint(0, 3))
        }
    return rng.choice(VALUES)


def random_body(rng: random.Random) -> dict:
    body: dict = {"model": MODEL} if rng.random() < 0.7 else {}
    if rng.random() < 0.6:
        body["messages"] = [
            {"role": rng.choice(["user", "system", "assistant", "bad", 3]), "content": random_value(rng)}
            for _ in range(rng.randint(0, 3))
        ]
    for field in rng.sample(FIELDS, rng.randint(0, 5)):
        body[field] = random_value(rng)
    return body


def _real_safety_engine() -> object:
    from server.safety import SafetyEngine

    return SafetyEngine.from_policy_file(None)


@pytest.mark.parametrize("safety", [False, True], ids=["safety-off", "safety-on"])
async def test_random_bodies_never_5xx(make_gateway, upstream, safety):
    gw = make_gateway(safety_engine=_real_safety_engine() if safety else None)
    rng = random.Random(1234)
    for i in range(400):
        body = random_body(rng)
        path = "/v1/chat/completions" if i % 2 else "/v1/completions"
        r = await gw.post(path, content=json.dumps(body).encode(), headers=AUTH)
        assert r.status_code < 500, (path, body, r.text)
        if r.status_code >= 400:
            err = r.json()["error"]
            assert set(err) == {"message", "type", "param", "code"} and isinstance(err["code"], str), body
        assert "x-request-id" in r.headers and "x-angel-safety" in r.headers


async def test_random_bytes_never_5xx(gw):
    rng = random.Random(99)
    for _ in range(200):
        raw = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 64)))
        r = await gw.post("/v1/chat/completions", content=raw, headers=AUTH)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request_error"


def random_sse(rng: random.Random) -> list[bytes]:
    """Upstream SSE streams with valid, truncated, garbled and odd events, cut at random byte offsets."""
    pieces = [
        b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":null}]}\n\n',
        b'data: {"id":"c","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}\n\n',
        b"data: [DONE]\n\n",
        b": keep-alive\n\n",
        b"data: {broken\n\n",
        b"data: 42\n\n",
        b"data: null\n\n",
        b'data: {"choices":"nope"}\n\n',
        b'data: {"choices":[{"delta":null}]}\n\n',
        b"event: x\n\n",
        b"\n\n",
        b'data: {"error":{"message":"boom"}}\n\n',
        b'data: {"choices":[{"index":0,"text":5}]}\n\n',
    ]
    raw = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))
    cuts = sorted(rng.sample(range(len(raw) + 1), min(3, len(raw) + 1)))
    return [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)]) if raw[a:b]]


@pytest.mark.parametrize("safety", [False, True], ids=["safety-off", "safety-on"])
async def test_random_upstream_streams_end_cleanly(make_gateway, upstream, safety):
    import httpx

    gw = make_gateway(safety_engine=_real_safety_engine() if safety else None)
    rng = random.Random(7)
    for _ in range(150):
        parts = random_sse(rng)

        async def body(parts: list[bytes] = parts):
            for p in parts:
                yield p

        upstream.answer = lambda r, body=body: httpx.Response(200, content=body())
        req = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True}
        r = await gw.post("/v1/chat/completions", json=req, headers=AUTH)
        assert r.status_code == 200
        events = [blk for blk in r.text.split("\n\n") if blk.startswith("data: ")]
        assert events, (parts, r.text)
        last = events[-1][6:]
        assert last == "[DONE]" or "error" in json.loads(last), (parts, r.text)
