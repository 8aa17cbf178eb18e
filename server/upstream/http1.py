"""A lean HTTP/1.1 transport for httpx, used for the plain-HTTP hop to vLLM.

Why: profiling the gateway (py-spy, benchmarks/README.md) showed httpcore's pool spending most of a
request's CPU under concurrency: for every request it polls every pooled socket (`is_socket_readable`,
one syscall each) and walks the pool in Python. Here a connection is an asyncio Protocol parsed by
httptools (already a uvicorn dependency); dead connections are noticed through `connection_lost`
callbacks instead of polling, and the idle pool is a LIFO list. It plugs in as an
`httpx.AsyncBaseTransport`, so the rest of the gateway keeps httpx's API and exceptions, and tests can
still swap in `httpx.MockTransport`. HTTPS upstreams keep httpx's default transport.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import httptools
import httpx

# Idle connections older than this are not reused: uvicorn (vLLM's server) closes them after 5 s, and a
# request written into a connection the server is closing would fail.
IDLE_REUSE_SECONDS = 4.0
# Stop reading from the upstream when this many body chunks wait unread (a slow client backs up into
# the engine's socket instead of into our memory).
HIGH_WATER, LOW_WATER = 64, 8


class _Conn(asyncio.Protocol):
    """One keep-alive connection; serves one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._reset()

    def _reset(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.headers: list[tuple[bytes, bytes]] = []
        self.head: asyncio.Future | None = None
        self.chunks: deque[bytes] = deque()
        self.waiter: asyncio.Future | None = None
        self.complete = False
        self.keep_alive = False
        self.got_bytes = False
        self.error: Exception | None = None
        self.paused = False

    # --- asyncio.Protocol -----------------------------------------------------------------------------
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.head is None:  # bytes on an idle pooled connection: nothing sane to do but drop it
            self.close()
            return
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"malformed HTTP response from upstream: {exc}"))
            self.close()
            return
        if len(self.chunks) > HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.complete:
            self._fail(httpx.RemoteProtocolError("upstream closed the connection before the response ended"))

    # --- httptools callbacks --------------------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        # Read now: httptools forgets it once the message is complete.
        self.keep_alive = self.parser.should_keep_alive()
        if self.head is not None and not self.head.done():
            self.head.set_result(self.parser.get_status_code())

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self._wake()

    def on_message_complete(self) -> None:
        self.complete = True
        self._wake()

    # --- helpers ----------------------------------------------------------------------------------------
    def _wake(self) -> None:
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _fail(self, exc: Exception) -> None:
        self.error = exc
        for f in (self.head, self.waiter):
            if f is not None and not f.done():
                f.set_exception(exc)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    async def _wait(self, fut: asyncio.Future, timeout: float | None, request: httpx.Request | None) -> Any:
        if timeout is None:
            return await fut
        handle = asyncio.get_running_loop().call_later(timeout, _expire, fut)
        try:
            return await fut
        except asyncio.CancelledError:
            if handle.cancelled() or not getattr(fut, "_angel_expired", False):
                raise
            self.close()
            raise httpx.ReadTimeout("upstream read timed out", request=request) from None
        finally:
            handle.cancel()

    async def next_chunk(self, timeout: float | None, request: httpx.Request | None) -> bytes | None:
        while not self.chunks:
            if self.complete:
                return None
            if self.error is not None:
                raise self.error
            self.waiter = asyncio.get_running_loop().create_future()
            await self._wait(self.waiter, timeout, request)
            self.waiter = None
        data = self.chunks.popleft()
        if self.paused and len(self.chunks) < LOW_WATER and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return data


def _expire(fut: asyncio.Future) -> None:
    if not fut.done():
        fut._angel_expired = True  # type: ignore[attr-defined]
        fut.cancel()


class _Body(httpx.AsyncByteStream):
    def __init__(
        self,
        pool: FastHTTP1Transport,
        key: tuple[str, int],
        conn: _Conn,
        timeout: float | None,
        request: httpx.Request | None,
    ) -> None:
        self.pool, self.key, self.conn, self.timeout, self.request = pool, key, conn, timeout, request
        self.released = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        conn = self.conn
        while True:
            chunk = await conn.next_chunk(self.timeout, self.request)
            if chunk is None:
                return
            yield chunk

    async def aclose(self) -> None:
        if self.released:
            return
        self.released = True
        conn = self.conn
        if conn.complete and not conn.closed and conn.error is None and conn.keep_alive:
            self.pool._release(self.key, conn)
        else:
            conn.close()  # unread body or broken: the only safe thing is to drop the connection


class UpstreamResponse:
    """The part of httpx.Response the gateway's hot path uses, over a pooled connection's body."""

    __slots__ = ("_body", "content", "headers", "status_code")

    def __init__(self, status: int, headers: dict[str, str], body: _Body) -> None:
        self.status_code = status
        self.headers = headers  # lower-cased names
        self._body = body
        self.content = b""

    def aiter_bytes(self) -> AsyncIterator[bytes]:
        return self._body.__aiter__()

    async def aread(self) -> bytes:
        self.content = b"".join([chunk async for chunk in self._body])
        return self.content

    async def aclose(self) -> None:
        await self._body.aclose()


class FastHTTP1Transport(httpx.AsyncBaseTransport):
    def __init__(self, max_keepalive: int = 256) -> None:
        self.max_keepalive = max_keepalive
        self._idle: dict[tuple[str, int], list[_Conn]] = {}

    def _acquire(self, key: tuple[str, int]) -> _Conn | None:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < IDLE_REUSE_SECONDS:
                return conn
            conn.close()
        return None

    def _release(self, key: tuple[str, int], conn: _Conn) -> None:
        idle = self._idle.setdefault(key, [])
        if len(idle) >= self.max_keepalive:
            conn.close()
            return
        conn._reset()
        conn.idle_since = time.monotonic()
        idle.append(conn)

    async def _connect(
        self, key: tuple[str, int], timeout: float | None, request: httpx.Request | None
    ) -> _Conn:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await asyncio.wait_for(loop.create_connection(_Conn, key[0], key[1]), timeout)
        except asyncio.TimeoutError:
            raise httpx.ConnectTimeout("connecting to the upstream timed out", request=request) from None
        except OSError as exc:
            raise httpx.ConnectError(
                f"cannot connect to the upstream: {exc.strerror or exc}", request=request
            ) from None
        return conn

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        key = (url.host, url.port or 80)
        timeouts = request.extensions.get("timeout", {})
        body = b"".join([part async for part in request.stream])  # type: ignore[union-attr]
        head = [b"%s %s HTTP/1.1\r\n" % (request.method.encode(), url.raw_path)]
        head += [b"%s: %s\r\n" % (k, v) for k, v in request.headers.raw]
        conn, status = await self._exchange(key, b"".join(head) + b"\r\n" + body, timeouts, request)
        return httpx.Response(
            status,
            headers=conn.headers,
            stream=_Body(self, key, conn, timeouts.get("read"), request),
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def post(
        self, url: httpx.URL, headers: dict[str, str], body: bytes, timeouts: dict[str, float | None]
    ) -> UpstreamResponse:
        """POST without httpx's Request and Response objects (~10 µs each per request in profiles).

        The gateway's chat and completion calls use this; httpx's own API uses handle_async_request.
        Failures raise the same httpx exceptions, without a request attached.
        """
        key = (url.host, url.port or 80)
        head = b"POST %s HTTP/1.1\r\nhost: %s\r\ncontent-length: %d\r\n" % (
            url.raw_path,
            url.netloc,
            len(body),
        )
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode("latin-1")
        conn, status = await self._exchange(key, head + b"\r\n" + body, timeouts, None)
        # Header names from httptools keep their case; HTTP's are case-insensitive.
        names = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in conn.headers}
        return UpstreamResponse(status, names, _Body(self, key, conn, timeouts.get("read"), None))

    async def _exchange(
        self, key: tuple[str, int], data: bytes, timeouts: dict, request: httpx.Request | None
    ) -> tuple[_Conn, int]:
        """Write one request on a pooled (or new) connection; return it with the response's status."""
        for attempt in (0, 1):
            conn = self._acquire(key)
            reused = conn is not None
            if conn is None:
                conn = await self._connect(key, timeouts.get("connect"), request)
            conn.head = asyncio.get_running_loop().create_future()
            assert conn.transport is not None
            conn.transport.write(data)
            try:
                status = await conn._wait(conn.head, timeouts.get("read"), request)
            except httpx.RemoteProtocolError:
                # A reused connection the server closed just as we wrote: nothing was processed, retry once.
                if reused and attempt == 0 and not conn.got_bytes:
                    continue
                raise
            except BaseException:
                conn.close()
                raise
            return conn, status
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
