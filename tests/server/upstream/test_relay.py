"""SSE relay branches in process (MockTransport upstream): usage metering and stripping, mid-stream
failures, malformed and error events."""

from __future__ import annotations

import httpx
import orjson

from tests.gateway.conftest import AUTH, MODEL, USAGE_CHUNK, chat_body, chunk, sse

STREAM_OK = sse(chunk("Hel"), chunk("lo"), chunk("", "stop"), USAGE_CHUNK, b"[DONE]")


def events(text: str) -> list:
    out = []
    for block in text.split("\n\n"):
        if block.startswith("data: "):
            data = block[6:]
            out.append(data if data == "[DONE]" else orjson.loads(data))
    return out


def sse_response(body: bytes | object) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)


async def test_stream_headers_and_usage_stripped(gw, upstream):
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


async def test_stream_usage_kept_when_asked(gw, upstream):
    upstream.answer = lambda r: sse_response(STREAM_OK)
    body = chat_body(stream=True, stream_options={"include_usage": True})
    ev = events((await gw.post("/v1/chat/completions", json=body, headers=AUTH)).text)
    assert ev[-2]["usage"] == USAGE_CHUNK["usage"] and ev[-2]["choices"] == []
    assert ev[-1] == "[DONE]"


async def test_stream_byte_splits_and_crlf(gw, upstream):
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


async def test_midstream_timeout_error_event(gw, upstream):
    async def stalls():
        yield sse(chunk("Hel"))
        raise httpx.ReadTimeout("no data")

    upstream.answer = lambda r: sse_response(stalls())
    ev = events((await gw.post("/v1/chat/completions", json=chat_body(stream=True), headers=AUTH)).text)
    assert ev[-1]["error"]["code"] == "upstream_timeout"


async def test_stream_ends_without_done(gw, upstream):
    upstream.answer = lambda r: sse_response(sse(chunk("Hel")))
    ev = events((await gw.post("/v1/chat/completions", json=chat_body(stream=True), headers=AUTH)).text)
    assert ev[0]["choices"][0]["delta"]["content"] == "Hel"
    assert ev[-1]["error"]["code"] == "upstream_disconnected"


async def test_stream_malformed_event(gw, upstream):
    upstream.answer = lambda r: sse_response(sse(chunk("Hel"), b"{not json", chunk("never sent")))
    ev = events((await gw.post("/v1/chat/completions", json=chat_body(stream=True), headers=AUTH)).text)
    assert len(ev) == 2 and ev[-1]["error"]["code"] == "upstream_malformed_response"


async def test_stream_unterminated_garbage(make_gateway, upstream, monkeypatch):
    import server.upstream as up

    monkeypatch.setattr(up, "MAX_EVENT_BYTES", 4096)
    gw = make_gateway()
    upstream.answer = lambda r: sse_response(b"x" * 10000)
    ev = events((await gw.post("/v1/chat/completions", json=chat_body(stream=True), headers=AUTH)).text)
    assert ev[-1]["error"]["code"] == "upstream_malformed_response"


async def test_stream_upstream_error_event_translated(gw, upstream):
    vllm_err = {
        "error": {"message": "engine overloaded", "type": "InternalServerError", "param": None, "code": 500}
    }
    upstream.answer = lambda r: sse_response(sse(chunk("Hel"), vllm_err))
    ev = events((await gw.post("/v1/chat/completions", json=chat_body(stream=True), headers=AUTH)).text)
    assert ev[-1]["error"]["code"] == "upstream_error" and ev[-1]["error"]["type"] == "server_error"


async def test_completions_stream(gw, upstream):
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


async def test_keepalive_comments_pass(gw, upstream):
    upstream.answer = lambda r: sse_response(b": ping\n\n" + STREAM_OK)
    r = await gw.post("/v1/chat/completions", json=chat_body(stream=True), headers=AUTH)
    assert r.text.startswith(": ping\n\n") and events(r.text)[-1] == "[DONE]"
