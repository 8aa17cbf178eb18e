"""`POST /v1/responses` with randomised bodies and randomised upstream event streams (seeded, so failures
reproduce): never a 5xx through the gateway's own fault, every error OpenAI-shaped, every stream ending in
a final `response.*` event or an `error` event, with or without the safety layer."""

from __future__ import annotations

import json
import random

import httpx
import orjson
import pytest

from server.safety import SafetyEngine
from tests.server.helpers import AUTH, MODEL
from tests.server.routes.test_chat_random_bodies import random_value

FIELDS = [
    "model",
    "input",
    "instructions",
    "stream",
    "max_output_tokens",
    "temperature",
    "top_p",
    "tools",
    "tool_choice",
    "store",
    "background",
    "previous_response_id",
    "include",
    "text",
]
ITEMS = [
    {"role": "user", "content": "hi"},
    {"role": "user", "content": [{"type": "input_text", "text": "hi"}]},
    {"role": "assistant", "content": [{"type": "output_text", "text": "ok"}]},
    {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
    {"type": "function_call_output", "call_id": "c", "output": "x"},
    {"role": "user", "content": [{"type": "input_image", "image_url": "http://x"}]},
    {"type": "nonsense"},
]


def random_body(rng: random.Random) -> dict:
    body: dict = {"model": MODEL} if rng.random() < 0.8 else {}
    if rng.random() < 0.8:
        body["input"] = (
            rng.choice(["hi", "", "My phone is 415-555-0142"])
            if rng.random() < 0.4
            else [
                rng.choice(ITEMS) if rng.random() < 0.7 else random_value(rng)
                for _ in range(rng.randint(0, 3))
            ]
        )
    for field in rng.sample(FIELDS, rng.randint(0, 4)):
        body[field] = random_value(rng)
    return body


def answer(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"id": "r", "object": "response", "output": [], "usage": None})


@pytest.mark.parametrize("safety", [False, True], ids=["safety-off", "safety-on"])
async def test_random_bodies_never_5xx(make_gateway, upstream, safety):
    gw = make_gateway(safety_engine=SafetyEngine.from_policy_file(None) if safety else None)
    upstream.answer = answer
    rng = random.Random(4321)
    statuses = set()
    for _ in range(300):
        body = random_body(rng)
        r = await gw.post("/v1/responses", content=json.dumps(body).encode(), headers=AUTH)
        assert r.status_code < 500, (body, r.text)
        if r.status_code >= 400:
            err = r.json()["error"]
            assert set(err) == {"message", "type", "param", "code"} and isinstance(err["code"], str), body
        assert "x-request-id" in r.headers and "x-angel-safety" in r.headers
        statuses.add(r.status_code)
    assert {200, 400} <= statuses


def event(obj: dict) -> bytes:
    return b"event: " + str(obj.get("type")).encode() + b"\ndata: " + orjson.dumps(obj) + b"\n\n"


AT = {"item_id": "m", "output_index": 0, "content_index": 0}
PIECES = [
    event({"type": "response.created", "response": {"id": "r", "output": []}, "sequence_number": 0}),
    event({"type": "response.output_text.delta", **AT, "delta": "Call 415-555-0199. ", "sequence_number": 1}),
    event({"type": "response.output_text.delta", **AT, "delta": "ok", "sequence_number": 2}),
    event({"type": "response.output_text.done", **AT, "text": "Call 415-555-0199. ok", "sequence_number": 3}),
    event(
        {"type": "response.function_call_arguments.delta", "item_id": "f", "output_index": 1, "delta": "{"}
    ),
    event(
        {"type": "response.output_item.done", "output_index": 0, "item": {"type": "message", "content": 3}}
    ),
    event({"type": "response.completed", "response": {"output": [], "usage": {"input_tokens": 1}}}),
    event({"type": "response.completed", "response": "nope"}),
    b"event: response.output_text.delta\ndata: {broken\n\n",
    b"data: 42\n\n",
    b": keep-alive\n\n",
    b'event: error\ndata: {"error": {"message": "boom"}}\n\n',
    event({"type": "response.output_text.delta", **AT, "delta": None}),
]


def random_stream(rng: random.Random) -> list[bytes]:
    raw = b"".join(rng.choice(PIECES) for _ in range(rng.randint(0, 8)))
    cuts = sorted(rng.sample(range(len(raw) + 1), min(3, len(raw) + 1)))
    return [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True) if raw[a:b]]


@pytest.mark.parametrize("safety", [False, True], ids=["safety-off", "safety-on"])
async def test_random_upstream_streams_end_cleanly(make_gateway, upstream, safety):
    gw = make_gateway(safety_engine=SafetyEngine.from_policy_file(None) if safety else None)
    rng = random.Random(11)
    endings = set()
    for _ in range(150):
        parts = random_stream(rng)

        async def body(parts: list[bytes] = parts):
            for p in parts:
                yield p

        upstream.answer = lambda r, body=body: httpx.Response(200, content=body())
        r = await gw.post("/v1/responses", json={"model": MODEL, "input": "hi", "stream": True}, headers=AUTH)
        assert r.status_code == 200
        blocks = [b for b in r.text.split("\n\n") if "data: " in b]
        assert blocks, (parts, r.text)
        last = json.loads(blocks[-1].split("data: ", 1)[1])
        assert last.get("type") == "response.completed" or "error" in last, (parts, r.text)
        endings.add(last.get("type") == "response.completed" or last["error"]["code"])
        if safety:
            assert "415-555-0199" not in r.text, (parts, r.text)
    # the seed reaches every way a stream ends
    assert endings == {True, "upstream_malformed_response", "upstream_disconnected", "upstream_error"}
