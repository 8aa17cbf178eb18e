"""The SSE relay (server/upstream/relay.py) in process, over a MockTransport upstream: usage metering
(continuous, and what is stripped), the system_fingerprint, events cut anywhere and events of many MiB,
mid-stream failures, malformed and error events."""

from __future__ import annotations

import httpx
import pytest

from server.db import Database
from tests.server.helpers import (
    AUTH,
    MODEL,
    USAGE_CHUNK,
    chat_body,
    chunk,
    events,
    sse,
    sse_response,
    state_of,
)

STREAM_OK = sse(chunk("Hel"), chunk("lo"), chunk("", "stop"), USAGE_CHUNK, b"[DONE]")


async def test_stream_has_sse_headers_and_strips_the_usage_the_client_did_not_ask_for(gw, upstream):
    upstream.answer = lambda r: sse_response(STREAM_OK)
    r = await gw.post("/v1/chat/completions", json=chat_body(stream=True), headers=AUTH)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["x-accel-buffering"] == "no" and r.headers["cache-control"] == "no-cache"
    assert r.headers["x-angel-safety"] == "" and r.headers["x-request-id"]
    # The gateway asked for usage (on every chunk) even though the client did not...
    assert upstream.last_json()["stream_options"] == {"include_usage": True, "continuous_usage_stats": True}
    ev = events(r.text)
    # ...and the client does not see the usage chunk.
    assert ev[-1] == "[DONE]"
    assert all(e == "[DONE]" or e["choices"] for e in ev)
    assert "".join(e["choices"][0]["delta"]["content"] for e in ev[:-1]) == "Hello"
    metrics = (await gw.get("/metrics")).text
    assert f'gateway_tokens_total{{kind="completion",model="{MODEL}"}} 2.0' in metrics
    assert 'gateway_time_to_first_token_seconds_count{model="angel-standin"} 1.0' in metrics


async def test_stream_keeps_the_usage_chunk_when_asked(gw, upstream):
    upstream.answer = lambda r: sse_response(STREAM_OK)
    body = chat_body(stream=True, stream_options={"include_usage": True})
    ev = events((await gw.post("/v1/chat/completions", json=body, headers=AUTH)).text)
    assert ev[-2]["usage"] == USAGE_CHUNK["usage"] and ev[-2]["choices"] == []
    assert ev[-1] == "[DONE]"


async def test_events_cut_across_reads_and_crlf_line_ends_are_reassembled(gw, upstream):
    raw = STREAM_OK.replace(b"\n", b"\r\n")

    async def dribble():  # events cut at arbitrary byte boundaries
        for i in range(0, len(raw), 7):
            yield raw[i : i + 7]

    upstream.answer = lambda r: sse_response(dribble())
    ev = events((await gw.post("/v1/chat/completions", json=chat_body(stream=True), headers=AUTH)).text)
    assert "".join(e["choices"][0]["delta"]["content"] for e in ev[:-1]) == "Hello" and ev[-1] == "[DONE]"


async def test_midstream_failure_ends_with_error_event(gw, upstream):
    async def dies():
        yield sse(chunk("Hel"), chunk("lo"))
        raise httpx.ReadError("connection reset by peer")

    upstream.answer = lambda r: sse_response(dies())
    r = await gw.post("/v1/chat/completions", json=chat_body(stream=True), headers=AUTH)
    assert r.status_code == 200
    ev = events(r.text)
    assert [e["choices"][0]["delta"]["content"] for e in ev[:2]] == ["Hel", "lo"]
    assert ev[-1]["error"]["code"] == "upstream_disconnected"
    assert set(ev[-1]["error"]) == {"message", "type", "param", "code"}
    assert "[DONE]" not in ev
    assert 'gateway_upstream_errors_total{kind="disconnected"} 1.0' in (await gw.get("/metrics")).text


async def test_midstream_timeout_ends_with_an_upstream_timeout_event(gw, upstream):
    async def stalls():
        yield sse(chunk("Hel"))
        raise httpx.ReadTimeout("no data")

    upstream.answer = lambda r: sse_response(stalls())
    ev = events((await gw.post("/v1/chat/completions", json=chat_body(stream=True), headers=AUTH)).text)
    assert ev[-1]["error"]["code"] == "upstream_timeout"


async def test_stream_ending_without_done_ends_with_an_upstream_disconnected_event(gw, upstream):
    upstream.answer = lambda r: sse_response(sse(chunk("Hel")))
    ev = events((await gw.post("/v1/chat/completions", json=chat_body(stream=True), headers=AUTH)).text)
    assert ev[0]["choices"][0]["delta"]["content"] == "Hel"
    assert ev[-1]["error"]["code"] == "upstream_disconnected"


async def test_malformed_event_ends_the_stream_with_an_error_event(gw, upstream):
    upstream.answer = lambda r: sse_response(sse(chunk("Hel"), b"{not json", chunk("never sent")))
    ev = events((await gw.post("/v1/chat/completions", json=chat_body(stream=True), headers=AUTH)).text)
    assert len(ev) == 2 and ev[-1]["error"]["code"] == "upstream_malformed_response"


async def test_unterminated_event_over_max_event_bytes_ends_the_stream(make_gateway, upstream):
    gw = make_gateway(max_event_bytes=65536)

    async def endless():  # one event that never ends, a read at a time
        yield sse(chunk("Hel"))
        while True:
            yield b"data: " + b"x" * 8192

    upstream.answer = lambda r: sse_response(endless())
    ev = events((await gw.post("/v1/chat/completions", json=chat_body(stream=True), headers=AUTH)).text)
    assert ev[0]["choices"][0]["delta"]["content"] == "Hel"
    assert ev[-1]["error"]["code"] == "upstream_malformed_response"


async def test_an_event_of_several_mib_is_relayed_whole_by_default(gw, upstream):
    # Echo with logprobs on a long prompt makes events like this one (the old 1 MiB cap ended such streams).
    big = chunk("y" * (3 << 20))
    raw = sse(chunk("Hel"), big, chunk("", "stop"), USAGE_CHUNK, b"[DONE]")

    async def in_reads():  # as a socket delivers it: 64 KiB at a time
        for i in range(0, len(raw), 65536):
            yield raw[i : i + 65536]

    upstream.answer = lambda r: sse_response(in_reads())
    ev = events((await gw.post("/v1/chat/completions", json=chat_body(stream=True), headers=AUTH)).text)
    assert ev[1]["choices"][0]["delta"]["content"] == "y" * (3 << 20)
    assert ev[-1] == "[DONE]"


async def test_upstream_error_event_becomes_a_server_error_event(gw, upstream):
    vllm_err = {
        "error": {"message": "engine overloaded", "type": "InternalServerError", "param": None, "code": 500}
    }
    upstream.answer = lambda r: sse_response(sse(chunk("Hel"), vllm_err))
    ev = events((await gw.post("/v1/chat/completions", json=chat_body(stream=True), headers=AUTH)).text)
    assert ev[-1]["error"]["code"] == "upstream_error" and ev[-1]["error"]["type"] == "server_error"


async def test_completions_stream_is_relayed_with_usage_requested_upstream(gw, upstream):
    def comp(text, fin=None):
        return {
            "id": "c",
            "object": "text_completion",
            "model": MODEL,
            "choices": [{"index": 0, "text": text, "finish_reason": fin}],
        }

    upstream.answer = lambda r: sse_response(sse(comp("a"), comp("b", "length"), USAGE_CHUNK, b"[DONE]"))
    r = await gw.post("/v1/completions", json={"model": MODEL, "prompt": "x", "stream": True}, headers=AUTH)
    ev = events(r.text)
    assert [e["choices"][0]["text"] for e in ev[:-1]] == ["a", "b"] and ev[-1] == "[DONE]"
    assert upstream.last_json()["stream_options"]["include_usage"] is True


async def test_keepalive_comments_pass_through(gw, upstream):
    upstream.answer = lambda r: sse_response(b": ping\n\n" + STREAM_OK)
    r = await gw.post("/v1/chat/completions", json=chat_body(stream=True), headers=AUTH)
    assert r.text.startswith(": ping\n\n") and events(r.text)[-1] == "[DONE]"


# --- continuous usage: metered as it streams, stripped unless asked --------------------------------------


def usage_chunk(text: str, completion: int, finish: str | None = None, index: int = 0) -> dict:
    c = chunk(text, finish)
    c["choices"][0]["index"] = index
    c["usage"] = {"prompt_tokens": 5, "completion_tokens": completion, "total_tokens": 5 + completion}
    return c


CONTINUOUS = sse(
    usage_chunk("", 0),
    usage_chunk("Hel", 1),
    usage_chunk("lo", 2),
    usage_chunk("", 2, "stop"),
    USAGE_CHUNK,
    b"[DONE]",
)


@pytest.mark.parametrize(
    ("options", "per_chunk", "final"),
    [
        (None, False, False),
        ({"include_usage": True}, False, True),
        ({"include_usage": True, "continuous_usage_stats": True}, True, True),
    ],
)
async def test_usage_on_every_chunk_reaches_the_client_only_as_asked(gw, upstream, options, per_chunk, final):
    upstream.answer = lambda r: sse_response(CONTINUOUS)
    body = chat_body(stream=True, **({"stream_options": options} if options else {}))
    ev = events((await gw.post("/v1/chat/completions", json=body, headers=AUTH)).text)
    content = [e for e in ev if e != "[DONE]" and e["choices"]]
    assert all(("usage" in e) == per_chunk for e in content)
    assert (ev[-2]["choices"] == [] and "usage" in ev[-2]) == final
    assert "".join(e["choices"][0]["delta"]["content"] for e in content) == "Hello"


async def test_a_stream_cut_before_its_usage_chunk_is_charged_what_was_streamed(
    make_gateway, upstream, tmp_path
):
    async def cut():  # the engine's connection dies after two tokens, before any final usage
        yield sse(usage_chunk("", 0), usage_chunk("Hel", 1), usage_chunk("lo", 2))
        raise httpx.ReadError("connection reset by peer")

    gw = make_gateway()
    upstream.answer = lambda r: sse_response(cut())
    ev = events((await gw.post("/v1/chat/completions", json=chat_body(stream=True), headers=AUTH)).text)
    assert ev[-1]["error"]["code"] == "upstream_disconnected"
    metrics = (await gw.get("/metrics")).text
    assert f'gateway_tokens_total{{kind="completion",model="{MODEL}"}} 2.0' in metrics
    assert f'gateway_tokens_total{{kind="prompt",model="{MODEL}"}} 5.0' in metrics
    state_of(gw).audit.close()
    rows = Database(f"sqlite:///{tmp_path}/gw.db").fetchall(
        "SELECT prompt_tokens, completion_tokens FROM audit_log"
    )
    assert [tuple(r) for r in rows] == [(5, 2)]


async def test_choices_are_metered_each_and_summed(gw, upstream):
    # n=2: vLLM's continuous usage counts each choice's own tokens; the request used their sum.
    raw = sse(
        usage_chunk("a", 1, index=0),
        usage_chunk("b", 1, index=1),
        usage_chunk("c", 2, index=0),
        usage_chunk("d", 2, "stop", index=1),
    )

    async def cut():
        yield raw
        raise httpx.ReadError("gone")

    upstream.answer = lambda r: sse_response(cut())
    await gw.post("/v1/chat/completions", json=chat_body(stream=True, n=2), headers=AUTH)
    metrics = (await gw.get("/metrics")).text
    assert f'gateway_tokens_total{{kind="completion",model="{MODEL}"}} 4.0' in metrics
    assert f'gateway_tokens_total{{kind="prompt",model="{MODEL}"}} 5.0' in metrics


async def test_an_upstream_without_usage_on_chunks_is_charged_its_content_chunks(gw, upstream):
    async def cut():
        yield sse(chunk("Hel"), chunk("lo"), chunk("!"))
        raise httpx.ReadError("gone")

    upstream.answer = lambda r: sse_response(cut())
    await gw.post("/v1/chat/completions", json=chat_body(stream=True), headers=AUTH)
    assert f'gateway_tokens_total{{kind="completion",model="{MODEL}"}} 3.0' in (await gw.get("/metrics")).text


# --- system_fingerprint, where vLLM puts it for the usage the client asked for ---------------------------

FINAL = {**USAGE_CHUNK, "system_fingerprint": "fp_test"}
WITH_FINGERPRINT = sse(chunk("Hel"), chunk("lo", "stop"), FINAL, b"[DONE]")


async def test_fingerprint_goes_on_the_terminal_chunk_when_the_usage_chunk_is_stripped(gw, upstream):
    upstream.answer = lambda r: sse_response(WITH_FINGERPRINT)
    ev = events((await gw.post("/v1/chat/completions", json=chat_body(stream=True), headers=AUTH)).text)
    assert [e if e == "[DONE]" else e.get("system_fingerprint") for e in ev] == [None, "fp_test", "[DONE]"]
    assert ev[1]["choices"][0]["finish_reason"] == "stop" and ev[1]["choices"][0]["delta"]["content"] == "lo"


async def test_fingerprint_stays_on_the_usage_chunk_when_the_client_asked_for_usage(gw, upstream):
    upstream.answer = lambda r: sse_response(WITH_FINGERPRINT)
    body = chat_body(stream=True, stream_options={"include_usage": True})
    ev = events((await gw.post("/v1/chat/completions", json=body, headers=AUTH)).text)
    assert [e if e == "[DONE]" else e.get("system_fingerprint") for e in ev] == [
        None,
        None,
        "fp_test",
        "[DONE]",
    ]


async def test_a_held_terminal_chunk_is_not_lost_when_the_stream_fails(gw, upstream):
    async def dies():
        yield sse(chunk("Hel"), chunk("lo", "stop"))
        raise httpx.ReadError("gone")

    upstream.answer = lambda r: sse_response(dies())
    ev = events((await gw.post("/v1/chat/completions", json=chat_body(stream=True), headers=AUTH)).text)
    assert (
        ev[1]["choices"][0]["delta"]["content"] == "lo" and ev[-1]["error"]["code"] == "upstream_disconnected"
    )


@pytest.mark.parametrize(
    ("piece", "content"),
    [
        (b'data: {"choices":[{"delta":{"role":"assistant","content":""}}]}\n\n', False),
        (b'data: {"choices":[{"delta":{"reasoning_content":"thinking"}}]}\n\n', False),
        (b'data: {"error":{"message":"boom"}}\n\n', False),
        (
            b'data: {"choices":[{"delta":{"content":""}}]}\n\n'
            b'data: {"choices":[{"delta":{"content":"Hi"}}]}\n\n',
            True,
        ),
        (b'data: {"choices":[{"text":"Hi","index":0}]}\n\n', True),
    ],
)
def test_time_to_first_token_counts_only_non_empty_content(piece: bytes, content: bool) -> None:
    """contracts.md: the first event whose delta carries non-empty content; never a role-only or empty
    event, a reasoning delta or an error."""
    from server.upstream.relay import _has_content

    assert _has_content(piece) is content
