"""The SSE relay (server/upstream/relay.py) in process, over a MockTransport upstream: usage metering
and stripping, events cut anywhere, mid-stream failures, malformed and error events."""

from __future__ import annotations

import httpx

from tests.server.helpers import AUTH, MODEL, USAGE_CHUNK, chat_body, chunk, events, sse, sse_response

STREAM_OK = sse(chunk("Hel"), chunk("lo"), chunk("", "stop"), USAGE_CHUNK, b"[DONE]")


async def test_stream_has_sse_headers_and_strips_the_usage_the_client_did_not_ask_for(gw, upstream):
    upstream.answer = lambda r: sse_response(STREAM_OK)
    r = await gw.post("/v1/chat/completions", json=chat_body(stream=True), headers=AUTH)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["x-accel-buffering"] == "no" and r.headers["cache-control"] == "no-cache"
    assert r.headers["x-angel-safety"] == "" and r.headers["x-request-id"]
    # The gateway asked for usage even though the client did not...
    assert upstream.last_json()["stream_options"] == {"include_usage": True}
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


async def test_unterminated_event_over_the_size_limit_ends_the_stream(make_gateway, upstream, monkeypatch):
    from server.upstream import relay

    monkeypatch.setattr(relay, "MAX_EVENT_BYTES", 4096)
    gw = make_gateway()
    upstream.answer = lambda r: sse_response(b"x" * 10000)
    ev = events((await gw.post("/v1/chat/completions", json=chat_body(stream=True), headers=AUTH)).text)
    assert ev[-1]["error"]["code"] == "upstream_malformed_response"


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
