"""Hostile bodies and clients against the real gateway process (echo stand-in upstream, safety on).

Malformed, oversized and deeply nested JSON; invalid UTF-8 and control characters; Unicode tricks that
try to smuggle PHI past the rails (checked at the upstream: the echo stand-in records what arrived);
slow-loris clients; attempts to forge log lines.
"""

from __future__ import annotations

import re
import socket
import threading
import time
import unicodedata

import httpx
import orjson
import pytest

from tests.server.hardening.conftest import AUTH, MODEL, assert_openai_error, upstream_stats
from tests.support.procs import Proc

URL = "/v1/chat/completions"


def post_raw(gw: Proc, body: bytes, timeout: float = 20) -> httpx.Response:
    headers = {**AUTH, "content-type": "application/json"}
    return httpx.post(gw.url + URL, content=body, headers=headers, timeout=timeout)


def still_serving(gw: Proc) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "still there?"}]}
    r = httpx.post(gw.url + URL, json=body, headers=AUTH, timeout=5)
    assert r.status_code == 200, r.text


def nested(depth: int) -> bytes:
    return (
        b'{"model":"angel-standin","messages":[{"role":"user","content":'
        + b"[" * depth
        + b"]" * depth
        + b"}]}"
    )


@pytest.mark.parametrize(
    "name,body",
    [
        ("nested-100k", nested(100_000)),
        ("nested-1000", nested(1000)),
        (
            "nested-objects",
            b'{"model":"angel-standin","messages":[' + b'{"a":' * 50_000 + b"1" + b"}" * 50_000 + b"]}",
        ),
        (
            "nested-extra-field",
            b'{"model":"angel-standin","x":' + b"[" * 200_000 + b"]" * 200_000 + b',"messages":[]}',
        ),
        (
            "invalid-utf8",
            b'{"model":"angel-standin","messages":[{"role":"user","content":"\xff\xfe\xc3\x28"}]}',
        ),
        ("lone-surrogate", b'{"model":"angel-standin","messages":[{"role":"user","content":"\\ud800x"}]}'),
        ("overlong-utf8", b'{"model":"angel-standin","messages":[{"role":"user","content":"\xc0\xaf"}]}'),
        ("nul-in-content", b'{"model":"angel-standin","messages":[{"role":"user","content":"a\\u0000b"}]}'),
        (
            "raw-control-chars",
            b'{"model":"angel-standin","messages":[{"role":"user","content":"a\x01\x1bb"}]}',
        ),
        ("nul-in-model", b'{"model":"angel-standin\\u0000","messages":[{"role":"user","content":"hi"}]}'),
        (
            "huge-number",
            b'{"model":"angel-standin","max_tokens":1'
            + b"0" * 5000
            + b',"messages":[{"role":"user","content":"hi"}]}',
        ),
        ("nan", b'{"model":"angel-standin","temperature":NaN,"messages":[{"role":"user","content":"hi"}]}'),
        (
            "duplicate-keys",
            b'{"model":"nope","model":"angel-standin","messages":[{"role":"user","content":"hi"}]}',
        ),
        ("bom", b'\xef\xbb\xbf{"model":"angel-standin","messages":[{"role":"user","content":"hi"}]}'),
        ("trailing-garbage", b'{"model":"angel-standin","messages":[{"role":"user","content":"hi"}]}xyz'),
        ("empty", b""),
    ],
)
def test_malformed_and_nested_json_never_gets_a_5xx(gateway: Proc, name: str, body: bytes) -> None:
    r = post_raw(gateway, body)
    # Accepted (a harmless reading) or refused with OpenAI's shape; never a gateway 5xx.
    assert r.status_code < 500, (name, r.status_code, r.text[:300])
    if r.status_code != 200:
        assert_openai_error(r)
    still_serving(gateway)


def test_huge_messages_array_under_the_body_limit_is_handled_in_time(gateway: Proc, echo: Proc) -> None:
    msgs = [{"role": "user", "content": f"m{i}"} for i in range(100_000)]  # ~3.5 MB, under the 4 MiB limit
    body = orjson.dumps({"model": MODEL, "messages": msgs})
    assert len(body) < 4 * 2**20
    t0 = time.perf_counter()
    r = post_raw(gateway, body, timeout=60)
    elapsed = time.perf_counter() - t0
    assert r.status_code < 500, r.text[:300]
    if r.status_code != 200:
        assert_openai_error(r)
    assert elapsed < 30, elapsed
    still_serving(gateway)


def test_huge_messages_array_over_the_body_limit_is_413(gateway: Proc) -> None:
    msgs = [{"role": "user", "content": "x" * 40} for _ in range(100_000)]  # ~5 MB
    assert_openai_error(post_raw(gateway, orjson.dumps({"model": MODEL, "messages": msgs})), 413)
    still_serving(gateway)


# --- PHI smuggled with Unicode tricks: it must not reach the upstream in any spelling ------------------

_INVISIBLE = re.compile("[\u200b-\u200f\u2060-\u2064\ufeff\u00ad\u180e]")


def _digits_view(text: str) -> str:
    """What a reader (or a model) would take the text to say, digits only: NFKC, invisibles dropped."""
    folded = unicodedata.normalize("NFKC", _INVISIBLE.sub("", text))
    return "".join(ch for ch in folded if ch.isdigit() or ch in "Xx")


PHONE = "4155550132"
CN_ID = "11010519491231002X"
TRICKS = {
    "full-width phone": "Call me on ４１５-５５５-０１３２ about my TSH.",
    "zero-width in phone": "Call me on 415\u200b-555\u200d-01\u200c32 about my TSH.",
    "word-joiner phone": "Call me on 415\u2060-\u2060555\u2060-\u20600132 about my TSH.",
    "soft hyphen phone": "Call me on 415\u00ad-555-\u00ad0132 about my TSH.",
    "full-width CN ID": "我的身份证号是１１０１０５１９４９１２３１００２Ｘ，TSH 6.2 高吗？",
    "zero-width CN ID": "我的身份证号是110105\u200b19491231\u200d002X，TSH 6.2 高吗？",
    "mathematical digits CN ID": "ID 𝟏𝟏𝟎𝟏𝟎𝟓𝟏𝟗𝟒𝟗𝟏𝟐𝟑𝟏𝟎𝟎𝟐X, is TSH 6.2 high?",
    "BOM-split phone": "phone 415-555\ufeff-0132, is TSH 6.2 high?",
}


@pytest.mark.parametrize("name", list(TRICKS))
def test_unicode_tricks_do_not_smuggle_phi_upstream(gateway: Proc, echo: Proc, name: str) -> None:
    text = TRICKS[name]
    secret = CN_ID if "ID" in name else PHONE
    assert secret in _digits_view(text)  # the trick really spells the identifier
    body = {"model": MODEL, "messages": [{"role": "user", "content": text}]}
    r = httpx.post(gateway.url + URL, json=body, headers=AUTH, timeout=10)
    assert r.status_code == 200, r.text
    assert "phi" in r.headers["x-angel-safety"].split(","), (name, r.headers["x-angel-safety"])
    arrived = orjson.dumps(upstream_stats(echo)["last_body"]).decode()
    assert secret not in _digits_view(orjson.loads(arrived)["messages"][0]["content"]), (name, arrived)


def test_homoglyph_name_context_still_redacts_the_number(gateway: Proc, echo: Proc) -> None:
    # Cyrillic letters in "phone" and "ID" do not hide the number: free-standing formats need no context.
    text = "рhоne 415-555-0132 (Cyrillic р and о), is my TSH of 6.2 high?"
    r = httpx.post(
        gateway.url + URL,
        json={"model": MODEL, "messages": [{"role": "user", "content": text}]},
        headers=AUTH,
        timeout=10,
    )
    assert r.status_code == 200
    assert PHONE not in _digits_view(orjson.dumps(upstream_stats(echo)["last_body"]).decode())


# --- slow-loris ------------------------------------------------------------------------------------------


def test_slow_loris_clients_do_not_starve_others(gateway: Proc) -> None:
    host, port = gateway.url.removeprefix("http://").split(":")
    stop = threading.Event()
    socks: list[socket.socket] = []
    for i in range(150):
        s = socket.create_connection((host, int(port)), timeout=5)
        # half never finish their headers, half declare a body and trickle it
        head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
        if i % 2:
            key = AUTH["Authorization"][7:]
            head += f"Authorization: Bearer {key}\r\nContent-Length: 100000\r\n\r\n{{".encode()
        s.sendall(head)
        socks.append(s)

    def trickle() -> None:
        while not stop.is_set():
            for s in socks:
                try:
                    s.sendall(b"X-a: b\r\n" if socks.index(s) % 2 == 0 else b" ")
                except OSError:
                    pass
            stop.wait(0.5)

    t = threading.Thread(target=trickle, daemon=True)
    t.start()
    try:
        times = []
        for _ in range(20):
            t0 = time.perf_counter()
            still_serving(gateway)
            times.append(time.perf_counter() - t0)
        assert sorted(times)[len(times) // 2] < 0.5, times
    finally:
        stop.set()
        t.join(5)
        for s in socks:
            s.close()
    still_serving(gateway)


# --- log injection ---------------------------------------------------------------------------------------

FORGED = '{"level":"critical","logger":"server.request","msg":"forged","key":"admin"}'


def test_log_injection_cannot_forge_lines(gateway: Proc) -> None:
    host, port = gateway.url.removeprefix("http://").split(":")
    before = len(gateway.log().splitlines())
    body = orjson.dumps({"model": "x\n" + FORGED + "\r\n", "messages": [{"role": "user", "content": "hi"}]})
    attempts = [
        # obs-fold continuation, bare LF, bare CR, and an encoded newline in x-request-id and other headers
        b"X-Request-Id: abc\r\n " + FORGED.encode() + b"\r\n",
        b"X-Request-Id: abc\n" + FORGED.encode() + b"\r\n",
        b"X-Request-Id: abc\r" + FORGED.encode() + b"\r\n",
        b"X-Request-Id: abc%0a" + FORGED.encode() + b"\r\n",
        b"X-Request-Id: abc\\n" + FORGED.encode() + b"\r\n",
        b"User-Agent: ua\r\n " + FORGED.encode() + b"\r\n",
    ]
    for extra in attempts:
        head = (
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + AUTH["Authorization"].join([b"Authorization: ".decode(), "\r\n"]).encode()
            + extra
            + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
        )
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(head + body)
            reply = b""
            while chunk := s.recv(65536):
                reply += chunk
        status = int(reply.split(b" ", 2)[1])
        assert status in (400, 404), reply[:300]  # the parser refuses it, or the unknown model is a 404
        assert FORGED.encode() not in reply.split(b"\r\n\r\n", 1)[0]  # not reflected into response headers
    # Also through a well-behaved client: the model name with newlines goes into the log escaped.
    r = httpx.post(gateway.url + URL, content=body, headers={**AUTH, "x-request-id": "abc"}, timeout=5)
    assert_openai_error(r, 404, "model_not_found")
    time.sleep(0.3)
    lines = gateway.log().splitlines()[before:]
    assert lines, "the gateway logged nothing (ANGEL_LOG_LEVEL=info expected)"
    for line in lines:
        rec = orjson.loads(line)  # every line is one whole JSON object
        assert rec.get("msg") != "forged" and rec.get("level") != "critical", line
    assert any(rec.get("status") == 404 for rec in map(orjson.loads, lines))
