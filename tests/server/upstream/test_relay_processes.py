"""Streaming through real processes: the gateway (`python -m server`) in front of the stand-in upstream.

No buffering is proven by chunk arrival times; cancellation by what the upstream saw; upstream death,
hangs and SIGTERM drains by the events the client receives.
"""

from __future__ import annotations

import itertools
import signal
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest

from tests.server.helpers import AUTH, MODEL, chat_body
from tests.support.procs import Proc, control, metric, start_gateway


@pytest.fixture(scope="module")
def gateway(standin: Proc, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    g = start_gateway(tmp_path_factory.mktemp("gw"), standin.url, ANGEL_UPSTREAM_READ_TIMEOUT="2")
    yield g
    g.stop()


@pytest.fixture(autouse=True)
def reset_standin(standin: Proc) -> Iterator[None]:
    yield
    control(standin, mode="normal", delay_ms=0, chunks=16)


def stats(standin: Proc) -> dict:
    return httpx.get(standin.url + "/_stats").json()


def stream_events(url: str, body: dict, timeout: float = 10.0) -> list[tuple[float, object]]:
    """(arrival time, parsed data) for each SSE event, timed as the bytes arrive."""
    out: list[tuple[float, object]] = []
    buf = b""
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, headers=AUTH, timeout=timeout) as r:
        assert r.status_code == 200, r.read()
        for raw in r.iter_raw():
            now = time.perf_counter()
            buf += raw
            while b"\n\n" in buf:
                event, buf = buf.split(b"\n\n", 1)
                data = event.removeprefix(b"data: ")
                out.append((now, data.decode() if data == b"[DONE]" else orjson.loads(data)))
    return out


def test_chunks_reach_the_client_as_the_upstream_sends_them(gateway: Proc, standin: Proc) -> None:
    # 300 ms between tokens: wide enough that a loaded 2-core machine cannot blur one token into the next
    control(standin, delay_ms=300, chunks=6)
    t0 = time.perf_counter()
    ev = stream_events(gateway.url, chat_body(stream=True))
    contents = [
        (t, e)
        for t, e in ev
        if isinstance(e, dict) and e["choices"] and (e["choices"][0]["delta"].get("content") or "").strip()
    ]
    assert len(contents) == 6
    # The first token arrives long before the stream is over, and consecutive tokens arrive one upstream
    # delay apart: nothing waits for a buffer to fill.
    assert contents[0][0] - t0 < 0.28  # before the upstream has produced its second token
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(contents)]
    assert all(0.20 < g < 0.60 for g in gaps), gaps
    assert ev[-1][1] == "[DONE]"


def test_client_disconnect_cancels_upstream(gateway: Proc, standin: Proc) -> None:
    control(standin, delay_ms=100, chunks=200)  # a 20 s answer if nobody stops it
    before = stats(standin)
    with httpx.stream(
        "POST", gateway.url + "/v1/chat/completions", json=chat_body(stream=True), headers=AUTH
    ) as r:
        got = 0
        for raw in r.iter_raw():
            got += raw.count(b"\n\n")
            if got >= 3:
                break  # the client walks away
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and stats(standin)["streams_cancelled"] == before["streams_cancelled"]:
        time.sleep(0.05)
    after = stats(standin)
    assert after["streams_cancelled"] == before["streams_cancelled"] + 1  # the upstream saw the disconnect
    assert after["streams_completed"] == before["streams_completed"]
    assert after["inflight"] == 0
    m = httpx.get(gateway.url + "/metrics").text
    assert "gateway_client_disconnects_total 1.0" in m


def test_streams_leave_no_asyncio_task_behind(gateway: Proc, standin: Proc) -> None:
    """Finished, abandoned and failed streams leave no asyncio task behind in the gateway."""
    idle = metric(gateway.url, "gateway_asyncio_tasks")
    assert idle >= 1  # the scrape itself
    control(standin, delay_ms=20, chunks=50)
    body = chat_body(stream=True)
    for i in range(12):
        with httpx.stream(
            "POST", gateway.url + "/v1/chat/completions", json=body, headers=AUTH, timeout=10
        ) as r:
            for n, _ in enumerate(r.iter_raw()):
                if i % 2 and n == 2:
                    break  # every other client walks away mid-stream
    control(standin, mode="die-midstream", chunks=10)
    httpx.post(gateway.url + "/v1/chat/completions", json=body, headers=AUTH, timeout=10).read()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and metric(gateway.url, "gateway_asyncio_tasks") != idle:
        time.sleep(0.1)
    assert metric(gateway.url, "gateway_asyncio_tasks") == idle
    assert metric(gateway.url, "gateway_inflight_requests") == 1  # the scrape


def test_upstream_dying_midstream_ends_with_an_error_event(gateway: Proc, standin: Proc) -> None:
    control(standin, mode="die-midstream", chunks=10)
    ev = stream_events(gateway.url, chat_body(stream=True))
    assert any(isinstance(e, dict) and e.get("choices") for _, e in ev)  # some content got through
    assert ev[-1][1]["error"]["code"] == "upstream_disconnected"
    # ...and the gateway serves the next request.
    control(standin, mode="normal")
    assert httpx.post(gateway.url + "/v1/chat/completions", json=chat_body(), headers=AUTH).status_code == 200


def test_upstream_stalling_midstream_ends_with_a_timeout_event(gateway: Proc, standin: Proc) -> None:
    control(standin, mode="stall-midstream", chunks=10)
    t0 = time.perf_counter()
    ev = stream_events(gateway.url, chat_body(stream=True))
    assert ev[-1][1]["error"]["code"] == "upstream_timeout"
    assert time.perf_counter() - t0 < 6  # ANGEL_UPSTREAM_READ_TIMEOUT=2, never a hang


def test_upstream_hanging_before_its_answer_is_504(gateway: Proc, standin: Proc) -> None:
    control(standin, mode="hang")
    t0 = time.perf_counter()
    r = httpx.post(gateway.url + "/v1/chat/completions", json=chat_body(), headers=AUTH, timeout=10)
    assert r.status_code == 504 and r.json()["error"]["code"] == "upstream_timeout"
    assert time.perf_counter() - t0 < 6


def test_malformed_upstream_stream_ends_with_an_error_event(gateway: Proc, standin: Proc) -> None:
    control(standin, mode="malformed", chunks=4)
    ev = stream_events(gateway.url, chat_body(stream=True))
    assert ev[-1][1]["error"]["code"] == "upstream_malformed_response"


def test_upstream_down_is_502_and_not_ready_but_alive(
    standin: Proc, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from tests.support.procs import free_port

    g = start_gateway(tmp_path_factory.mktemp("gwdown"), f"http://127.0.0.1:{free_port()}")
    try:
        r = httpx.post(g.url + "/v1/chat/completions", json=chat_body(stream=True), headers=AUTH)
        assert r.status_code == 502 and r.json()["error"]["code"] == "upstream_unavailable"
        assert httpx.get(g.url + "/readyz").status_code == 503
        assert httpx.get(g.url + "/healthz").status_code == 200
    finally:
        g.stop()


def test_sigterm_lets_short_streams_finish_and_ends_long_ones(
    standin: Proc, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """In-flight streams finish during the grace period; streams outlasting it end with an error event."""
    import threading

    g = start_gateway(tmp_path_factory.mktemp("gwdrain"), standin.url, ANGEL_SHUTDOWN_GRACE_SECONDS="4")
    control(standin, delay_ms=100, chunks=10)  # ~1 s answers
    results: dict[str, list] = {}

    def run(name: str, body: dict) -> None:
        results[name] = [e for _, e in stream_events(g.url, body, timeout=20)]

    short = threading.Thread(target=run, args=("short", chat_body(stream=True)))
    long = threading.Thread(target=run, args=("long", chat_body(stream=True, max_tokens=10_000)))
    try:
        short.start()
        time.sleep(0.3)
        control(standin, chunks=200)  # the next stream would take 20 s
        long.start()
        time.sleep(0.5)
        g.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        with pytest.raises(httpx.ConnectError):  # no new connections once draining
            httpx.get(g.url + "/healthz", timeout=1)
        short.join(10)
        long.join(10)
        # uvicorn re-raises the captured SIGTERM after its graceful shutdown, hence -SIGTERM.
        assert g.proc.wait(10) in (0, -signal.SIGTERM)
    finally:
        g.stop()
    assert results["short"][-1] == "[DONE]"
    assert sum(1 for e in results["short"] if isinstance(e, dict) and e["choices"]) >= 10
    assert results["long"][-1]["error"]["code"] == "server_shutting_down"


def test_model_list_and_usage_through_the_process(gateway: Proc) -> None:
    r = httpx.get(gateway.url + "/v1/models", headers=AUTH)
    assert [m["id"] for m in r.json()["data"]] == [MODEL]
    ev = [
        e
        for _, e in stream_events(gateway.url, chat_body(stream=True, stream_options={"include_usage": True}))
    ]
    assert ev[-2]["usage"]["completion_tokens"] == 16 and ev[-1] == "[DONE]"
