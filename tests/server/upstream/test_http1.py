"""The gateway's HTTP/1.1 upstream transport against real sockets: keep-alive reuse, errors mapped to
httpx's exceptions, read timeouts, early close, and dropping connections whose body was not read."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx
import orjson
import pytest

from server.upstream.http1 import FastHTTP1Transport

OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


async def raw_server(handler: Callable) -> tuple[asyncio.AbstractServer, str, list[int]]:
    """A TCP server running `handler(reader, writer)` per connection; counts connections."""
    conns: list[int] = []

    async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conns.append(1)
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}", conns


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            await reader.readexactly(int(line.split(b":")[1]))
    return head


@pytest.fixture
async def client_for() -> AsyncIterator[Callable[..., httpx.AsyncClient]]:
    made: list[httpx.AsyncClient] = []

    def make(url: str, read: float = 5.0) -> httpx.AsyncClient:
        c = httpx.AsyncClient(
            base_url=url, transport=FastHTTP1Transport(), timeout=httpx.Timeout(5.0, read=read)
        )
        made.append(c)
        return c

    yield make
    for c in made:
        await c.aclose()


async def test_keepalive_connection_is_reused_for_every_request(client_for) -> None:
    async def serve(reader, writer):
        while True:
            try:
                await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            writer.write(OK)

    server, url, conns = await raw_server(serve)
    async with server:
        c = client_for(url)
        for _ in range(20):
            r = await c.post("/x", content=b'{"a": 1}')
            assert r.status_code == 200 and r.json() == {}
        assert len(conns) == 1


async def test_chunked_body_is_streamed_chunk_by_chunk(client_for) -> None:
    async def serve(reader, writer):
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        for i in range(3):
            writer.write(b"5\r\nhello\r\n")
            await writer.drain()
            await asyncio.sleep(0.05)
        writer.write(b"0\r\n\r\n")
        await asyncio.sleep(1)

    server, url, _ = await raw_server(serve)
    async with server:
        async with client_for(url).stream("GET", "/") as r:
            parts = [p async for p in r.aiter_raw()]
        assert parts == [b"hello"] * 3  # chunk by chunk, as they arrived


async def test_refused_connection_raises_connect_error(client_for) -> None:
    server, url, _ = await raw_server(lambda r, w: asyncio.sleep(0))
    server.close()
    await server.wait_closed()
    with pytest.raises(httpx.ConnectError):
        await client_for(url).get("/")


async def test_silence_before_the_head_raises_read_timeout(client_for) -> None:
    async def hang(reader, writer):
        await asyncio.sleep(5)

    server, url, _ = await raw_server(hang)
    async with server:
        with pytest.raises(httpx.ReadTimeout):
            await client_for(url, read=0.2).get("/")


async def test_silence_mid_body_raises_read_timeout(client_for) -> None:
    async def stall(reader, writer):
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n")
        await asyncio.sleep(5)

    server, url, _ = await raw_server(stall)
    async with server, client_for(url, read=0.2).stream("GET", "/") as r:
        with pytest.raises(httpx.ReadTimeout):
            async for _ in r.aiter_raw():
                pass


async def test_close_mid_body_is_protocol_error(client_for) -> None:
    async def die(reader, writer):
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly a part")

    server, url, _ = await raw_server(die)
    async with server:
        with pytest.raises(httpx.RemoteProtocolError):
            await client_for(url).get("/")


async def test_malformed_response_is_protocol_error(client_for) -> None:
    async def garbage(reader, writer):
        await read_request(reader)
        writer.write(b"this is not http\r\n\r\n")

    server, url, _ = await raw_server(garbage)
    async with server:
        with pytest.raises(httpx.RemoteProtocolError):
            await client_for(url).get("/")


async def test_body_closed_unread_drops_the_connection(client_for) -> None:
    """A stream closed early (client went away) must not return its connection to the pool."""
    closed = asyncio.Event()

    async def long_body(reader, writer):
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n")
        await writer.drain()
        await reader.read()  # returns at EOF: the gateway closed the connection
        closed.set()

    server, url, _ = await raw_server(long_body)
    async with server:
        c = client_for(url)
        async with c.stream("GET", "/") as r:
            async for _ in r.aiter_raw():
                break
        await asyncio.wait_for(closed.wait(), 2)  # the upstream sees the disconnect


async def test_stale_keepalive_connection_is_retried_on_a_new_one(client_for) -> None:
    """The server closes an idle keep-alive connection; the next request transparently reconnects."""

    async def one_shot(reader, writer):
        await read_request(reader)
        writer.write(OK)
        await writer.drain()

    server, url, conns = await raw_server(one_shot)
    async with server:
        c = client_for(url)
        assert (await c.get("/")).status_code == 200
        await asyncio.sleep(0.1)
        assert (await c.get("/")).status_code == 200
        assert len(conns) == 2


async def test_idle_connection_that_sends_bytes_is_not_reused(client_for) -> None:
    """A server that writes on an idle keep-alive connection gets that connection dropped, not reused."""

    async def chatty(reader, writer):
        await read_request(reader)
        writer.write(OK)
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n\r\n")
        await asyncio.sleep(2)

    server, url, conns = await raw_server(chatty)
    async with server:
        c = client_for(url)
        assert (await c.get("/")).status_code == 200
        await asyncio.sleep(0.2)
        assert (await c.get("/")).status_code == 200  # a fresh connection, not the stray 408
        assert len(conns) == 2


def _chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def test_streams_through_the_gateway_reuse_one_upstream_connection(tmp_path) -> None:
    """vLLM (uvicorn) sends `data: [DONE]` and the end of its chunked body in two writes. The relay
    must read that end after [DONE], or each stream's connection is dropped and the next stream pays for
    a new TCP connection before its first token."""
    from server.app import create_app
    from server.settings import Settings
    from tests.server.helpers import AUTH, MODEL, USAGE_CHUNK, chat_body, chunk, sse
    from tests.support.procs import TEST_KEY

    models = orjson.dumps({"object": "list", "data": [{"id": MODEL, "object": "model"}]})

    async def engine_like(reader, writer):
        while True:
            try:
                head = await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            if head.startswith(b"GET /v1/models"):
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(models), models))
                continue
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
            )
            writer.write(_chunked(sse(chunk("hello"), chunk("", "stop"), USAGE_CHUNK, b"[DONE]")))
            await writer.drain()
            await asyncio.sleep(0.02)  # the terminating chunk comes in a write of its own
            writer.write(b"0\r\n\r\n")

    server, url, conns = await raw_server(engine_like)
    settings = Settings(
        upstream_url=url,
        api_keys=TEST_KEY,
        database_url=f"sqlite:///{tmp_path / 'gw.db'}",
        safety_enabled=False,
        audit_enabled=False,
    )
    app = create_app(settings)
    async with server, app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            for _ in range(4):
                r = await client.post("/v1/chat/completions", json=chat_body(stream=True), headers=AUTH)
                assert r.status_code == 200 and r.text.endswith("data: [DONE]\n\n")
    assert len(conns) == 1
