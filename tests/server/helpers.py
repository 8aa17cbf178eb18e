"""Helpers for the in-process gateway tests: request bodies, the mock upstream, SSE builders and readers,
and the OpenAI error-shape check. The fixtures that use them live in `conftest.py` next to this file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import orjson

from server.db import Database
from server.keys import KeyStore
from server.state import GatewayState
from tests.support.procs import TEST_KEY

MODEL = "angel-standin"
AUTH = {"Authorization": f"Bearer {TEST_KEY}"}


def chat_body(**extra: object) -> dict:
    return {"model": MODEL, "messages": [{"role": "user", "content": "hello"}], **extra}


def completion_json(content: str = "hi there", usage: bool = True) -> dict:
    out = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": MODEL,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        ],
    }
    if usage:
        out["usage"] = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
    return out


def sse(*objs: object) -> bytes:
    return b"".join(b"data: " + (o if isinstance(o, bytes) else orjson.dumps(o)) + b"\n\n" for o in objs)


def chunk(text: str, finish: str | None = None) -> dict:
    return {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": MODEL,
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}],
    }


USAGE_CHUNK = {
    "id": "c1",
    "object": "chat.completion.chunk",
    "created": 1,
    "model": MODEL,
    "choices": [],
    "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
}


def sse_response(body: bytes | object) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)


def events(text: str) -> list:
    """The data of each SSE event the client received, parsed (`[DONE]` kept as the string)."""
    out = []
    for block in text.split("\n\n"):
        if block.startswith("data: "):
            data = block[6:]
            out.append(data if data == "[DONE]" else orjson.loads(data))
    return out


def models_response() -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "object": "list",
            "data": [{"id": MODEL, "object": "model"}, {"id": "other-model", "object": "model"}],
        },
    )


class Upstream:
    """What the mock upstream saw, and what it answers (a callable per request)."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.answer: Callable[[httpx.Request], httpx.Response] = lambda r: httpx.Response(
            200, json=completion_json()
        )
        self.models: Callable[[], httpx.Response] = models_response  # GET /v1/models
        # GET /readiness: a plain vLLM engine has no such route; vLLM's router answers it (tests set it).
        self.readiness: Callable[[], httpx.Response] = lambda: httpx.Response(
            404, json={"detail": "Not Found"}
        )

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return self.models()
        if request.url.path == "/readiness":
            return self.readiness()
        self.requests.append(request)
        return self.answer(request)

    def last_json(self) -> dict:
        return orjson.loads(self.requests[-1].content)


def raising(exc: Exception) -> Callable[[httpx.Request], httpx.Response]:
    """An upstream answer that fails with `exc` (connection refused, timeouts, ...)."""

    def answer(request: httpx.Request) -> httpx.Response:
        raise exc

    return answer


def state_of(client: httpx.AsyncClient) -> GatewayState:
    """The GatewayState behind an in-process client made by `make_gateway`."""
    return client._transport.app.state.gateway  # type: ignore[attr-defined]


def db_key(tmp_path: Path, **kw: object) -> str:
    """A key created in the gateway's SQLite store (the one `make_gateway` uses), returned in plaintext."""
    key, _ = KeyStore(Database(f"sqlite:///{tmp_path}/gw.db")).create(kw.pop("name", "k"), **kw)
    return key


def assert_openai_error(r: httpx.Response, status: int, code: str | None, param: str | None = None) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["code"] == code, err
    assert isinstance(err["message"], str) and err["message"]
    assert err["param"] == param
    # Every response carries a request id and the (here empty) safety header.
    assert len(r.headers["x-request-id"]) >= 8
    assert r.headers["x-angel-safety"] == ""
    return err
