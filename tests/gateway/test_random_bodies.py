"""Randomised request bodies (seeded, so failures reproduce): the gateway never answers 5xx through
its own fault, and every error is OpenAI-shaped. The upstream is a MockTransport that accepts anything."""

from __future__ import annotations

import json
import random

import pytest

from tests.gateway.conftest import AUTH, MODEL

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
