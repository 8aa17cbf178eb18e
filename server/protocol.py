"""uvicorn's httptools protocol with a deadline on reading a request's headers (slow-loris), and
OpenAI-shaped answers for the requests uvicorn refuses before the app sees them, and one socket write
per event-loop step.

Why: uvicorn times out only idle keep-alive connections, and only between requests: a client that
connects and never finishes its headers holds a socket (and a file descriptor) forever, and enough of
them exhaust the process's descriptors. Here every request must have its headers complete within
`header_timeout` seconds of its first byte (of the connection, for the first one); otherwise the client
gets a 408 in OpenAI's error shape and the connection is closed. The body has its own deadline in the
route that reads it (`server/routes/chat.py`). Malformed HTTP gets uvicorn's 400, but as JSON in
OpenAI's error shape instead of uvicorn's plain text, like every other error the gateway returns.

Write batching: uvicorn writes a response's headers and each body message with a send() of its own, and
each send() that wakes a sleeping client costs the writer tens of microseconds on a virtual machine (an
inter-processor interrupt through the hypervisor). A stream's headers, role chunk and first token were
three wake-ups before the client saw any text. `_BatchingTransport` joins the writes made within one
event-loop step and sends them when the step ends: nothing waits for data that has not arrived yet,
so this holds no event back (the stream relay yields right after a first token so that it leaves
alone).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from server.errors import GatewayError


def _closing_response(status_line: bytes, err: GatewayError) -> bytes:
    body = err.body()
    return (
        b"HTTP/1.1 %s\r\ncontent-type: application/json\r\nconnection: close\r\n"
        b"content-length: %d\r\n\r\n%s" % (status_line, len(body), body)
    )


_TIMEOUT_RESPONSE = _closing_response(
    b"408 Request Timeout",
    GatewayError(408, "request_timeout", "The request's headers did not arrive in time."),
)
_MALFORMED_RESPONSE = _closing_response(
    b"400 Bad Request",
    GatewayError(400, "invalid_request_error", "The request is not valid HTTP/1.1."),
)


class _BatchingTransport:
    """The connection's transport, with the writes of one event-loop step sent as one.

    Everything but writing and closing is the real transport's (flow control, peer address, state).
    """

    __slots__ = ("_buf", "_loop", "_transport")

    def __init__(self, transport: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._buf: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not data:
            return
        if not self._buf:
            self._loop.call_soon(self.flush)
        self._buf.append(data)

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        if self._buf:
            data = b"".join(self._buf) if len(self._buf) > 1 else self._buf[0]
            self._buf.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._buf.clear()
        self._transport.abort()

    def set_protocol(self, protocol: Any) -> None:
        self.flush()
        self._transport.set_protocol(protocol)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._buf))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def guarded_protocol(header_timeout: float) -> type[HttpToolsProtocol]:
    """The protocol class for uvicorn's `http=` setting, with the given header deadline."""

    class HeaderDeadlineProtocol(HttpToolsProtocol):
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(_BatchingTransport(transport, self.loop))
            self._arm()  # a client that connects and sends nothing is timed too

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._header_timer is None:  # the next request on a kept-alive connection
                self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def send_400_response(self, msg: str) -> None:
            self.transport.write(_MALFORMED_RESPONSE)
            self.transport.close()

        def _arm(self) -> None:
            self._header_timer = self.loop.call_later(header_timeout, self._headers_too_slow)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_too_slow(self) -> None:
            self._header_timer = None
            if self.transport.is_closing():
                return
            # No request cycle exists for these headers yet, so nothing else writes to the socket.
            if self.cycle is None or self.cycle.response_complete:
                self.transport.write(_TIMEOUT_RESPONSE)
            self.transport.close()

    return HeaderDeadlineProtocol
