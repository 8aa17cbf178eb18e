"""Slow-loris deadlines on the real gateway process: headers must arrive within ANGEL_HEADER_TIMEOUT of a
request's first byte and the body within ANGEL_BODY_TIMEOUT, or the client gets a 408 in OpenAI's shape
and the socket is closed (so idle or trickling clients cannot hold the process's descriptors)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import orjson
import pytest

from tests.server.hardening.conftest import AUTH, MODEL
from tests.support.procs import Proc, start_gateway

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 1.5


@pytest.fixture(scope="module")
def gw(echo: Proc, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    p = start_gateway(
        tmp_path_factory.mktemp("gw-deadlines"),
        echo.url,
        ANGEL_HEADER_TIMEOUT=str(HEADER_TIMEOUT),
        ANGEL_BODY_TIMEOUT=str(BODY_TIMEOUT),
    )
    yield p
    p.stop()


def connect(gw: Proc) -> socket.socket:
    host, port = gw.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def read_until_closed(s: socket.socket, trickle: bytes = b"", every: float = 0.25) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and when it closed (monotonic).
    With `trickle`, one more byte string is sent every `every` seconds meanwhile (as a slow client would)."""
    s.settimeout(every if trickle else 10)
    data = b""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except TimeoutError:
            try:
                s.sendall(trickle)
            except OSError:
                pass  # the server closed its side while we were writing
            continue
        except ConnectionResetError:
            return data, time.monotonic()
        if not chunk:
            return data, time.monotonic()
        data += chunk
    raise AssertionError(f"the gateway kept the connection open for 10 s; got {data[:200]!r}")


def assert_408(response: bytes) -> None:
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), head
    err = orjson.loads(body)["error"]
    assert err["code"] == "request_timeout" and err["type"] == "timeout_error" and err["message"]


def request_bytes(body: bytes) -> bytes:
    return (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Authorization: {AUTH['Authorization']}\r\n".encode()
        + b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )


BODY = orjson.dumps({"model": MODEL, "messages": [{"role": "user", "content": "hello"}]})


def test_silent_connection_is_closed(gw: Proc) -> None:
    s = connect(gw)
    t0 = time.monotonic()
    data, closed = read_until_closed(s)
    assert_408(data)
    assert HEADER_TIMEOUT * 0.9 <= closed - t0 < HEADER_TIMEOUT + 2


def test_trickled_headers_are_cut_off(gw: Proc) -> None:
    # Many clients, each sending a header line every 0.25 s: bytes keep arriving, the headers never end.
    socks = [connect(gw) for _ in range(20)]
    t0 = time.monotonic()
    for s in socks:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
    for s in socks:
        data, closed = read_until_closed(s, trickle=b"X-Slow: 1\r\n")
        assert_408(data)
        assert closed - t0 < HEADER_TIMEOUT + 3
        s.close()


def test_kept_alive_connection_is_timed_per_request(gw: Proc) -> None:
    s = connect(gw)
    s.sendall(request_bytes(BODY))
    first = s.recv(65536)
    assert first.startswith(b"HTTP/1.1 200 "), first[:200]
    time.sleep(HEADER_TIMEOUT * 1.5)  # idle between requests is the keep-alive timer's business, not this one
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
    t0 = time.monotonic()
    data, closed = read_until_closed(s, trickle=b"X-Slow: 1\r\n")
    _, marker, rest = data.partition(b"HTTP/1.1 408 ")  # after the tail of the first answer, if any
    assert_408(marker + rest)
    assert closed - t0 < HEADER_TIMEOUT + 3


def test_trickled_body_gets_408(gw: Proc) -> None:
    s = connect(gw)
    head = request_bytes(BODY)
    s.sendall(head[: head.index(b"\r\n\r\n") + 4] + BODY[:5])  # the headers, then the body byte by byte
    t0 = time.monotonic()
    data, closed = read_until_closed(s, trickle=b" ", every=0.2)
    head_out, _, body_out = data.partition(b"\r\n\r\n")
    assert head_out.startswith(b"HTTP/1.1 408 "), head_out
    assert b"connection: close" in head_out.lower()
    err = orjson.loads(body_out)["error"]
    assert err["code"] == "request_timeout" and "body" in err["message"]
    assert BODY_TIMEOUT * 0.9 <= closed - t0 < BODY_TIMEOUT + 3


def test_malformed_http_gets_openai_shaped_400(gw: Proc) -> None:
    s = connect(gw)
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost x\r\n\r\n")  # a header line without a colon
    data, _ = read_until_closed(s)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), head
    assert orjson.loads(body)["error"]["code"] == "invalid_request_error"


def test_slow_but_timely_client_is_served(gw: Proc) -> None:
    # Headers spread over half the deadline and a body sent in pieces: within both deadlines, so served.
    s = connect(gw)
    raw = request_bytes(BODY)
    cut = raw.index(b"\r\n\r\n")
    for i in range(0, cut, 16):
        s.sendall(raw[i : min(i + 16, cut)])
        time.sleep(HEADER_TIMEOUT * 0.5 / (cut / 16))
    s.sendall(raw[cut : cut + 10])
    time.sleep(BODY_TIMEOUT * 0.3)
    s.sendall(raw[cut + 10 :])
    s.settimeout(10)
    answer = s.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
    s.close()
