"""A client's disconnect cancels its request at every phase, through real processes (the gateway in front
of the stand-in, which counts what it saw): before the engine's response headers (a whole non-streamed
generation, or a stream still queueing), while a large body is scanned, and mid-stream. The request is
booked (499, client disconnects) and nothing is left behind."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import orjson
import pytest

from server.offload import OFFLOAD_BYTES
from tests.server.helpers import AUTH, chat_body
from tests.support.procs import Proc, control, metric, start_gateway

URL = "/v1/chat/completions"


@pytest.fixture(scope="module")
def gateway(standin: Proc, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    g = start_gateway(tmp_path_factory.mktemp("gw-cancel"), standin.url, ANGEL_UPSTREAM_READ_TIMEOUT="30")
    yield g
    g.stop()


@pytest.fixture(autouse=True)
def reset_standin(standin: Proc) -> Iterator[None]:
    yield
    control(standin, mode="normal", delay_ms=0, head_delay_ms=0, chunks=16)


def stats(standin: Proc) -> dict:
    return httpx.get(standin.url + "/_stats").json()


def wait_for(cond: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def give_up_after(gw: Proc, body: dict | bytes, seconds: float) -> None:
    """A client that stops waiting after `seconds` and closes its connection."""
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    headers = {**AUTH, "content-type": "application/json"}
    with pytest.raises(httpx.ReadTimeout):
        with httpx.stream("POST", gw.url + URL, content=content, headers=headers, timeout=seconds) as r:
            for _ in r.iter_raw():
                pass


def booked_as_left(gw: Proc, before: float) -> bool:
    return metric(gw.url, "gateway_requests_total", route=URL, status="499") == before + 1


def test_non_streamed_request_is_cancelled_while_the_engine_generates(gateway: Proc, standin: Proc) -> None:
    # The whole generation happens before vLLM's response headers: 5 s here, 600 s in the worst case.
    control(standin, delay_ms=5000)
    before, left = stats(standin), metric(gateway.url, "gateway_requests_total", route=URL, status="499")
    give_up_after(gateway, chat_body(), 0.5)
    assert wait_for(lambda: stats(standin)["requests_cancelled"] == before["requests_cancelled"] + 1)
    assert wait_for(lambda: booked_as_left(gateway, left))
    assert wait_for(lambda: metric(gateway.url, "gateway_inflight_requests") == 1)  # the scrape itself


def test_stream_is_cancelled_before_the_engine_sends_its_headers(gateway: Proc, standin: Proc) -> None:
    control(standin, head_delay_ms=5000)  # queued or prefilling: no response headers yet
    before, left = stats(standin), metric(gateway.url, "gateway_requests_total", route=URL, status="499")
    give_up_after(gateway, chat_body(stream=True), 0.5)
    assert wait_for(
        lambda: stats(standin)["cancelled_before_headers"] == before["cancelled_before_headers"] + 1
    )
    assert stats(standin)["streams_completed"] == before["streams_completed"]
    assert wait_for(lambda: booked_as_left(gateway, left))


def test_a_client_gone_during_a_large_scan_never_reaches_the_engine(gateway: Proc, standin: Proc) -> None:
    control(standin, max_model_len=10**8)
    text = "Patient reports a dry cough and tiredness. " * (
        1_500_000 // 43
    )  # ~1.5 MB: over a second of scanning
    body = orjson.dumps({"model": "angel-standin", "messages": [{"role": "user", "content": text}]})
    assert len(body) > OFFLOAD_BYTES
    before, left = (
        stats(standin)["requests"],
        metric(gateway.url, "gateway_requests_total", route=URL, status="499"),
    )
    try:
        give_up_after(gateway, body, 0.3)
        assert wait_for(lambda: booked_as_left(gateway, left), 10)  # booked when the client left
        time.sleep(3)  # the scan, which cannot be interrupted, has finished by now
        assert stats(standin)["requests"] == before  # its result was dropped: no engine call
        # The gateway serves the next request normally.
        assert httpx.post(gateway.url + URL, json=chat_body(), headers=AUTH, timeout=10).status_code == 200
    finally:
        control(standin, max_model_len=32768)


def test_streams_and_requests_left_early_leave_nothing_behind(gateway: Proc, standin: Proc) -> None:
    idle = metric(gateway.url, "gateway_asyncio_tasks")
    control(standin, delay_ms=1000, head_delay_ms=200, chunks=20)
    for body in (chat_body(), chat_body(stream=True)):
        for after in (0.1, 0.6):  # before the engine's headers, and after them
            give_up_after(gateway, body, after)
    assert wait_for(lambda: metric(gateway.url, "gateway_asyncio_tasks") == idle, 10)
    assert wait_for(lambda: metric(gateway.url, "gateway_inflight_requests") == 1)
    assert wait_for(lambda: stats(standin)["inflight"] == 0, 10)
