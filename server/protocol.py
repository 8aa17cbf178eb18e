"""uvicorn's httptools protocol with a deadline on reading a request's headers (slow-loris), a bound on
their size, and OpenAI-shaped answers for the requests uvicorn refuses before the app sees them.

Why: uvicorn times out only idle keep-alive connections, and only between requests: a client that
connects and never finishes its headers holds a socket (and a file descriptor) forever, and enough of
them exhaust the process's descriptors. Here every request must have its headers complete within
`header_timeout` seconds of its first byte (of the connection, for the first one); otherwise the client
gets a 408 in OpenAI's error shape and the connection is closed. The body has its own deadline in the
route that reads it (`server/routes/chat.py`). Malformed HTTP gets uvicorn's 400, but as JSON in
OpenAI's error shape instead of uvicorn's plain text, like every other error the gateway returns.

Size: uvicorn and httptools keep a request's URL and headers in memory until they are complete, with no
bound, and httptools grows a long header value by concatenation (quadratic): ten unauthenticated clients
sending 60 MB headers took the process from 190 to 940 MB and stalled every other request for seconds.
Here a request's head (request line and headers) is counted as it arrives, before any authentication: past
`max_header_bytes` the client gets 431 and the connection is closed, so a connection never holds more than
the bound plus one socket read of unparsed head.
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
DEFAULT_MAX_HEADER_BYTES = 64 * 1024
# After a 431 the rest of what the client is sending is read and dropped, for at most this long and this
# much, before the socket closes: closing a socket with unread data sends a reset, which can reach the
# client before it has read the 431 (nginx's lingering close).
LINGER_SECONDS, LINGER_BYTES = 2.0, 1 << 20


class _HeadTooLarge(Exception):
    """Raised inside a parser callback to stop parsing a head past the bound."""


def _too_large_response(limit: int) -> bytes:
    return _closing_response(
        b"431 Request Header Fields Too Large",
        GatewayError(
            431,
            "request_headers_too_large",
            f"The request line and headers exceed {limit} bytes.",
        ),
    )


def guarded_protocol(
    header_timeout: float, max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
) -> type[HttpToolsProtocol]:
    """The protocol class for uvicorn's `http=` setting, with the given header deadline and size bound."""
    too_large = _too_large_response(max_header_bytes)

    class HeaderDeadlineProtocol(HttpToolsProtocol):
        _header_timer: asyncio.TimerHandle | None = None
        # Bytes received while a head is incomplete (a coarse count: it may include the start of a body
        # that arrived in the same read, so it is only checked while the head is still incomplete) ...
        _head_raw = 0
        _head_open = True
        # ... and the parsed URL and header bytes of the current head (exact, checked as each completes).
        _head_parsed = 0
        _head_refused = False
        _dropped = 0  # bytes read and dropped after a 431
        _linger: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()  # a client that connects and sends nothing is timed too

        def data_received(self, data: bytes) -> None:
            if self._linger is not None:  # after a 431: dropped unparsed, until the lingering close
                self._dropped += len(data)
                if self._dropped > LINGER_BYTES:
                    self.transport.close()
                return
            if self._head_open:
                self._head_raw += len(data)
            super().data_received(data)
            # Still inside a head after this read: everything counted belongs to it.
            if self._head_open and self._head_raw > max_header_bytes and not self._head_refused:
                self._refuse_head()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._head_parsed = 0
            if self._header_timer is None:  # the next request on a kept-alive connection
                self._arm()

        def on_url(self, url: bytes) -> None:
            self._count(len(url))
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._count(len(name) + len(value) + 4)  # ": " and CRLF
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._disarm()
            self._head_open = False
            self._head_raw = 0
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._head_open = True  # the next request's head may follow on this connection
            self._head_raw = 0

        def _count(self, n: int) -> None:
            # A head that arrives in one read completes within one feed, before data_received can look:
            # counted here as each piece is parsed, and parsing stops at the first piece past the bound.
            self._head_parsed += n
            if self._head_parsed > max_header_bytes:
                self._head_refused = True
                raise _HeadTooLarge

        def _refuse_head(self) -> None:
            self._head_refused = True
            self._disarm()
            if self.transport.is_closing() or self._linger is not None:
                return
            # No request cycle exists for this head yet, so nothing else writes to the socket.
            if self.cycle is not None and not self.cycle.response_complete:
                self.transport.close()  # a pipelined head behind an answer still being sent
                return
            self.transport.write(too_large)
            self.transport.write_eof()  # the answer, then FIN: the client reads both
            self._linger = self.loop.call_later(LINGER_SECONDS, self.transport.close)

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            if self._linger is not None:
                self._linger.cancel()
            super().connection_lost(exc)

        def send_400_response(self, msg: str) -> None:
            if self._head_refused:  # the parser stopped at our _HeadTooLarge, not at bad HTTP
                self._refuse_head()
                return
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
