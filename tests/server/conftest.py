"""Gateway fixtures: an in-process app over httpx.MockTransport, and real processes (stand-in, Redis)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from pydantic import SecretStr

from server.app import create_app
from server.settings import Settings
from tests.support.procs import TEST_KEY, Proc, start_redis, start_standin

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

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return models_response()
        self.requests.append(request)
        return self.answer(request)

    def last_json(self) -> dict:
        return orjson.loads(self.requests[-1].content)


@pytest.fixture
def upstream() -> Upstream:
    return Upstream()


def state_of(client: httpx.AsyncClient) -> object:
    """The GatewayState behind an in-process client made by `make_gateway`."""
    return client._transport.app.state.gateway  # type: ignore[attr-defined]


@pytest.fixture
async def make_gateway(tmp_path: Path, upstream: Upstream) -> AsyncIterator[Callable[..., httpx.AsyncClient]]:
    """make_gateway(**settings) -> an httpx.AsyncClient talking to an in-process gateway over MockTransport."""
    clients: list[httpx.AsyncClient] = []

    def make(safety_engine: object = None, **overrides: object) -> httpx.AsyncClient:
        values = {
            "upstream_url": "http://upstream.test",
            "api_keys": SecretStr(TEST_KEY),
            "database_url": f"sqlite:///{tmp_path}/gw.db",
            "audit_enabled": True,
            **overrides,
        }
        app = create_app(
            Settings(**values), transport=httpx.MockTransport(upstream.handler), safety_engine=safety_engine
        )
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw.test")
        clients.append(client)
        return client

    yield make
    for client in clients:
        # A test may already have closed parts of it.
        with contextlib.suppress(Exception):
            await state_of(client).aclose()
        await client.aclose()


@pytest.fixture
async def gw(make_gateway: Callable[..., httpx.AsyncClient]) -> httpx.AsyncClient:
    return make_gateway()


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    """A real stand-in upstream process (normal mode; tests switch modes with the x-standin-mode header)."""
    p = start_standin(tmp_path_factory.mktemp("standin"), chunks=16)
    yield p
    p.stop()


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    p = start_redis(tmp_path_factory.mktemp("redis"))
    yield p
    p.stop()
