"""Gateway fixtures: an in-process app over httpx.MockTransport, and real processes (stand-in, Redis).

They apply to every test under tests/server/; the helpers they use are in `helpers.py`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from server.app import create_app
from server.settings import Settings
from tests.server.helpers import Upstream, state_of
from tests.support.procs import TEST_KEY, Proc, start_redis, start_standin


@pytest.fixture
def upstream() -> Upstream:
    return Upstream()


@pytest.fixture
async def make_gateway(tmp_path: Path, upstream: Upstream) -> AsyncIterator[Callable[..., httpx.AsyncClient]]:
    """make_gateway(**settings) -> an httpx.AsyncClient to an in-process gateway over MockTransport."""
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


@pytest.fixture(scope="session")
def real_engine() -> object:
    """The safety engine of the default policy (loaded once: ~0.5 s)."""
    from server.safety import load_engine

    return load_engine(True, None)


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
