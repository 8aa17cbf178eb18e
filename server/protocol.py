"""uvicorn's httptools protocol with a deadline on reading a request's headers (slow-loris), and
OpenAI-shaped answers for the requests uvicorn refuses before the app sees them.

Why: uvicorn times out only idle keep-alive connections, and only between requests: a client that
connects and never finishes its headers holds a socket (and a file descriptor) forever, and enough of
them exhaust the process's descriptors. Here every request must have its headers complete within
`header_timeout` seconds of its first byte (of the connection, for the first one); otherwise the client
gets a 408 in OpenAI's error shape and the connection is closed. The body has its own deadline in the
route that reads it (`server/routes/chat.py`). Malformed HTTP gets uvicorn's 400, but as JSON in
OpenAI's error shape instead of uvicorn's plain text, like every other error the gateway returns.
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


def guarded_protocol(header_timeout: float) -> type[HttpToolsProtocol]:
    """The protocol class for uvicorn's `http=` setting, with the given header deadline."""

    class HeaderDeadlineProtocol(HttpToolsProtocol):
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
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
