"""Auth bypass attempts against the real gateway process: path tricks, methods, header abuse, keys that
must not work (revoked, expired, another deployment's), and the timing of wrong-key comparisons."""

from __future__ import annotations

import random
import secrets
import socket
import statistics
import time

import httpx
import pytest

from tests.server.hardening.conftest import AUTH, MODEL, Keys, assert_openai_error, upstream_stats
from tests.support.procs import TEST_KEY, Proc


def raw_request(url: str, head: bytes, body: bytes = b"", timeout: float = 5.0) -> tuple[int, bytes, bytes]:
    """Send bytes exactly as written (no client-side path normalisation); (status, headers, body)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(head + body)
        data = b""
        while True:
            try:
                piece = s.recv(65536)
            except TimeoutError:
                break
            if not piece:
                break
            data += piece
            if b"\r\n\r\n" in data:
                headers, _, rest = data.partition(b"\r\n\r\n")
                length = next(
                    (
                        int(h.split(b":")[1])
                        for h in headers.split(b"\r\n")
                        if h.lower().startswith(b"content-length:")
                    ),
                    None,
                )
                if length is not None and len(rest) >= length:
                    break
    status_line, _, _ = data.partition(b"\r\n")
    headers, _, rest = data.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), headers, rest


PATH_TRICKS = [
    "//v1/models",
    "/v1//models",
    "/v1/models/",
    "/v1/models/.",
    "/v1/./models",
    "/v1/../v1/models",
    "/V1/models",
    "/v1/Models",
    "/v1%2Fmodels",
    "/v1%2fmodels",
    "/%761/models",
    "/v1/models%00",
    "/v1/models;x=1",
    "/v1/models?x=/healthz",
    "/healthz/../v1/models",
    "/v1/chat/completions/",
    "//v1/chat/completions",
    "/v1/chat%2Fcompletions",
]


@pytest.mark.parametrize("method", ["GET", "POST", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("path", PATH_TRICKS + ["/v1/models", "/v1/chat/completions", "/v1/completions"])
def test_no_path_or_method_reaches_a_v1_route_without_a_key(
    gateway: Proc, echo: Proc, path: str, method: str
) -> None:
    before = upstream_stats(echo)["requests"]
    body = (
        b'{"model":"angel-standin","messages":[{"role":"user","content":"hi"}]}' if method != "GET" else b""
    )
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    status, headers, rest = raw_request(gateway.url, head, body)
    # Nothing without a key succeeds: no 2xx, no redirect that a client could follow into a route.
    assert status in (400, 401, 404, 405), (path, method, status, rest[:200])
    assert not headers.lower().count(b"\r\nlocation:"), headers
    if method != "HEAD":
        err = httpx.Response(status, headers={"content-type": "application/json"}, content=rest).json()[
            "error"
        ]
        assert set(err) == {"message", "type", "param", "code"}
        # OpenAI sends code null for an unknown path or method; a string code for everything else.
        assert err["code"] is None if status in (404, 405) else isinstance(err["code"], str), err
    assert upstream_stats(echo)["requests"] == before, "an unauthenticated request reached the upstream"


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Bearer",
        "Bearer ",
        f"bearer{TEST_KEY}",
        f"Basic {TEST_KEY}",
        f"Token {TEST_KEY}",
        f"Bearer {TEST_KEY} {TEST_KEY}",
        f"Bearer {TEST_KEY[:-1]}",
        f"Bearer {TEST_KEY}x",
        f"Bearer {TEST_KEY.upper()}",
        f"Bearer\t{TEST_KEY}",
        "Bearer " + "A" * 600,
        "Bearer " + TEST_KEY + "\x00",
        "Bearer " + "sk-angel-" + "é" * 30,
        "Bearer *",
        "Bearer %s" % ("' OR '1'='1" + "x" * 20),
    ],
)
def test_garbled_authorization_headers_are_401(gateway: Proc, header: str) -> None:
    # Raw bytes: an HTTP client would refuse to send some of these, an attacker's would not.
    head = (
        b"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: "
        + header.encode()
        + b"\r\nConnection: close\r\n\r\n"
    )
    status, _, rest = raw_request(gateway.url, head)
    r = httpx.Response(
        status, headers={"content-type": "application/json", "x-request-id": "-"}, content=rest
    )
    if status == 400:  # refused by the HTTP parser before the app: no access, and still OpenAI's shape
        assert_openai_error(r, 400, "invalid_request_error")
        return
    assert_openai_error(r, 401, "invalid_api_key")


def test_two_authorization_headers_do_not_combine(gateway: Proc) -> None:
    head = (
        f"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong-key-000000000000000000\r\n"
        f"Authorization: Bearer {TEST_KEY}\r\nConnection: close\r\n\r\n"
    ).encode()
    status, _, _ = raw_request(gateway.url, head)
    # Either key is refused or the first one wins: the valid one must not be picked from a duplicate list.
    assert status == 401


def test_oversized_authorization_header_is_refused_cleanly(gateway: Proc) -> None:
    r = httpx.get(gateway.url + "/v1/models", headers={"Authorization": "Bearer " + "k" * 60_000}, timeout=5)
    assert r.status_code in (400, 401, 431)
    if r.status_code == 401:
        assert_openai_error(r, 401, "invalid_api_key")
    assert httpx.get(gateway.url + "/v1/models", headers=AUTH, timeout=5).status_code == 200


@pytest.mark.parametrize("which", ["revoked", "expired", "other_deployment"])
def test_revoked_expired_and_foreign_keys_are_401(gateway: Proc, echo: Proc, keys: Keys, which: str) -> None:
    before = upstream_stats(echo)["requests"]
    h = {"Authorization": f"Bearer {getattr(keys, which)}"}
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    r = httpx.post(gateway.url + "/v1/chat/completions", json=body, headers=h, timeout=5)
    err = assert_openai_error(r, 401, "invalid_api_key")
    assert {"revoked": "revoked", "expired": "expired", "other_deployment": "Incorrect"}[which] in err[
        "message"
    ]
    assert upstream_stats(echo)["requests"] == before
    # The database key of this deployment works, so the refusals above are about the key, not the store.
    ok = httpx.post(
        gateway.url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {keys.live}"}
    )
    assert ok.status_code == 200, ok.text


def _wrong_key(template: str, shared: int) -> str:
    """A key of the same length as `template` sharing its first `shared` characters, random after that."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    tail = "".join(secrets.choice(alphabet) for _ in range(len(template) - shared))
    if shared < len(template) and tail[0] == template[shared]:  # differ exactly at `shared`
        tail = ("a" if tail[0] != "a" else "b") + tail[1:]
    return template[:shared] + tail


def test_wrong_key_timing_does_not_depend_on_the_matched_prefix(gateway: Proc, keys: Keys) -> None:
    """Interleaved pairs of fresh wrong keys: one sharing nothing with a valid key, one sharing all but its
    last six characters (six random ones keep every key new, so neither class hits the negative cache).
    Keys are looked up by SHA-256 digest and confirmed with compare_digest, so the paired differences
    must centre on zero; the bound is far below what any network-visible leak needs, and the median of
    paired differences shrugs off scheduler noise on a busy machine."""
    diffs: dict[str, list[float]] = {"env": [], "db": []}
    with httpx.Client(base_url=gateway.url, timeout=5) as c:
        for _ in range(20):  # warm the connection and the code paths
            c.get("/v1/models", headers={"Authorization": f"Bearer {_wrong_key(TEST_KEY, 0)}"})
        for _ in range(300):
            for name, valid in (("env", TEST_KEY), ("db", keys.live)):
                pair = [_wrong_key(valid, 0), _wrong_key(valid, len(valid) - 6)]
                order = [0, 1]
                random.shuffle(order)
                t = [0.0, 0.0]
                for i in order:
                    t0 = time.perf_counter()
                    r = c.get("/v1/models", headers={"Authorization": f"Bearer {pair[i]}"})
                    t[i] = time.perf_counter() - t0
                    assert r.status_code == 401
                diffs[name].append(t[1] - t[0])
    for name, d in diffs.items():
        med = statistics.median(d)
        spread = statistics.median(abs(x - med) for x in d)
        # |median difference| below 100 us and below the typical spread of a single difference.
        assert abs(med) < max(100e-6, spread), (name, med, spread)
