"""A small, fast OpenAI-compatible stand-in for vLLM's server, run as its own process.

    python tests/support/standin_upstream.py --port N [--chunks 64] [--delay-ms X] [--mode MODE]

Modes (also per request with the `x-standin-mode` header):
  normal         a fixed answer; streams send --chunks content chunks, --delay-ms apart
  echo           the answer is the request's `messages` (chat) or `prompt` (completions) as JSON text,
                 so tests can see exactly what reached the upstream
  die-midstream  streams stop half-way by dropping the connection (non-streams: connection dropped)
  hang           accepts the request and never answers (/v1/models still answers)
  stall-midstream  streams send half of the chunks, then go silent
  malformed      non-JSON bodies and SSE events
  error500       HTTP 500 with a vLLM-shaped error
  error400       HTTP 400 with a vLLM-shaped error (param "temperature")
  overloaded     HTTP 503
  script         the answer is `script` (set with /_control): a list of pieces, each a text or, for a stream,
                 a chunk's parts {"delta": {...}, "logprobs": {...}} (chat) / {"text": ..., "logprobs": ...}
`POST /_control {"mode": ..., "delay_ms": ..., "chunks": ..., "head_delay_ms": ..., "max_model_len": ...}`
changes the behaviour at run time: `head_delay_ms` holds every answer's headers back that long (an engine
still queueing or prefilling), `max_model_len` is what the model cards say and what longer prompts are
refused against (with vLLM's 400).
Like vLLM: usage on every stream chunk with `stream_options.continuous_usage_stats`, and the
`system_fingerprint` on a stream's terminal chunks, or on its usage chunk when usage was asked for.
`GET /_stats` reports counters (requests, completed and client-cancelled streams, requests whose client
left before their headers or before their JSON answer, last request id and headers) so tests can check
what the upstream saw, e.g. that a client's disconnect reached it.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import orjson

STATS: dict[str, Any] = {
    "requests": 0,
    "streams_completed": 0,
    "streams_cancelled": 0,
    "last_request_id": None,
    "last_authorization": None,
    "last_body": None,
    "inflight": 0,
    "cancelled_before_headers": 0,
    "requests_cancelled": 0,
}
CFG: dict[str, Any] = {
    "mode": "normal",
    "chunks": 64,
    "delay": 0.0,
    "head_delay": 0.0,
    "model": "angel-standin",
    "max_model_len": 32768,
}
FINGERPRINT = "fp_standin"
# Each piece ends a sentence, so output guards with a sentence hold-back window release it at once.
ANSWER_WORD = "Fine. "


async def _read_body(receive: Any) -> bytes:
    body = b""
    while True:
        msg = await receive()
        body += msg.get("body", b"")
        if not msg.get("more_body"):
            return body


async def _send_json(send: Any, status: int, obj: Any, raw: bytes | None = None) -> None:
    data = raw if raw is not None else orjson.dumps(obj)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": data})


def _vllm_error(status: int, message: str, param: str | None = None) -> dict[str, Any]:
    return {
        "error": {
            "message": message,
            "type": "BadRequestError" if status < 500 else "InternalServerError",
            "param": param,
            "code": status,
        }
    }


def _piece_text(piece: Any) -> str:
    """A scripted piece's text (a plain piece is its own text)."""
    if isinstance(piece, str):
        return piece
    return (piece.get("delta") or {}).get("content") or piece.get("text") or ""


def _answer_pieces(mode: str, body: dict[str, Any], chat: bool) -> list[Any]:
    if mode == "echo":
        text = orjson.dumps(body.get("messages") if chat else body.get("prompt")).decode()
        size = max(1, -(-len(text) // CFG["chunks"]))
        return [text[i : i + size] for i in range(0, len(text), size)]
    if mode == "script":
        return list(CFG.get("script") or [])
    n = body.get("max_tokens") or CFG["chunks"]
    return [ANSWER_WORD] * min(n, CFG["chunks"])


def _prompt_tokens(body: dict[str, Any]) -> int:
    return len(orjson.dumps(body.get("messages") or body.get("prompt") or "")) // 4 + 1


def _usage(body: dict[str, Any], completion: int) -> dict[str, int]:
    prompt = _prompt_tokens(body)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


async def _client_left_within(receive: Any, seconds: float) -> bool:
    """Wait `seconds` (after the request body was read); True as soon as the client disconnects."""
    if seconds <= 0:
        return False

    async def gone() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    try:
        await asyncio.wait_for(gone(), seconds)
        return True
    except asyncio.TimeoutError:
        return False


async def _completion(scope: Any, receive: Any, send: Any, chat: bool) -> None:
    raw = await _read_body(receive)
    headers = dict(scope["headers"])
    mode = headers.get(b"x-standin-mode", CFG["mode"].encode()).decode()
    STATS["requests"] += 1
    STATS["last_request_id"] = headers.get(b"x-request-id", b"").decode() or None
    STATS["last_authorization"] = headers.get(b"authorization", b"").decode() or None
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        await _send_json(send, 400, _vllm_error(400, "invalid JSON"))
        return
    STATS["last_body"] = body
    if mode == "hang":
        await asyncio.Event().wait()
    if mode == "error500":
        await _send_json(send, 500, _vllm_error(500, "EngineCore encountered an issue"))
        return
    if mode == "error400":
        await _send_json(send, 400, _vllm_error(400, "temperature must be non-negative", "temperature"))
        return
    if mode == "overloaded":
        await _send_json(send, 503, _vllm_error(503, "server overloaded"))
        return
    if body.get("model") not in (CFG["model"], None, ""):  # vLLM serves its model for an absent one
        await _send_json(send, 404, _vllm_error(404, f"The model `{body.get('model')}` does not exist."))
        return
    prompt_tokens = _prompt_tokens(body)
    if prompt_tokens >= CFG["max_model_len"]:
        message = (
            f"This model's maximum context length is {CFG['max_model_len']} tokens. However, your prompt "
            f"contains {prompt_tokens} input tokens, which exceeds this limit even without any output "
            "tokens. Please reduce the length of the input prompt."
        )
        await _send_json(send, 400, _vllm_error(400, message, "input_tokens"))
        return
    if await _client_left_within(receive, CFG["head_delay"]):
        STATS["cancelled_before_headers"] += 1
        return
    pieces = _answer_pieces(mode, body, chat)
    if body.get("stream"):
        await _stream(scope, receive, send, body, pieces, chat, mode)
        return
    if mode == "die-midstream":
        raise ConnectionAbortedError("stand-in dropping the connection")
    if mode == "malformed":
        await _send_json(send, 200, None, raw=b"this is not json")
        return
    if await _client_left_within(receive, CFG["delay"]):
        STATS["requests_cancelled"] += 1
        return
    text = "".join(map(_piece_text, pieces))
    choice: dict[str, Any] = (
        {
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "logprobs": None,
            "finish_reason": "stop",
        }
        if chat
        else {"index": 0, "text": text, "logprobs": None, "finish_reason": "stop"}
    )
    await _send_json(
        send,
        200,
        {
            "id": "chatcmpl-standin" if chat else "cmpl-standin",
            "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()),
            "model": CFG["model"],
            "choices": [choice],
            "usage": _usage(body, len(pieces)),
            "system_fingerprint": FINGERPRINT,
        },
    )


async def _stream(
    scope: Any, receive: Any, send: Any, body: dict[str, Any], pieces: list[str], chat: bool, mode: str
) -> None:
    gone = asyncio.Event()

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        gone.set()

    watcher = asyncio.ensure_future(watch())
    STATS["inflight"] += 1
    try:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")],
            }
        )
        created = int(time.time())
        base = {
            "id": "chatcmpl-standin" if chat else "cmpl-standin",
            "object": "chat.completion.chunk" if chat else "text_completion",
            "created": created,
            "model": CFG["model"],
        }
        options = body.get("stream_options") or {}
        include_usage = bool(options.get("include_usage"))
        continuous = include_usage and bool(options.get("continuous_usage_stats"))
        sent = 0  # completion tokens so far (one per piece)

        def event(obj: Any) -> bytes:
            return b"data: " + orjson.dumps(obj) + b"\n\n"

        def chunk(text: Any, finish: str | None = None, role: bool = False) -> bytes:
            scripted = text if isinstance(text, dict) else {}
            logprobs = scripted.get("logprobs")
            if chat:
                delta: dict[str, Any] = {"role": "assistant", "content": text} if role else {"content": text}
                if scripted:
                    delta = dict(scripted.get("delta") or {})
                out = {
                    **base,
                    "choices": [{"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish}],
                }
            else:
                piece = scripted.get("text", "") if scripted else text
                out = {
                    **base,
                    "choices": [{"index": 0, "text": piece, "logprobs": logprobs, "finish_reason": finish}],
                }
            if finish is not None and not include_usage:
                out["system_fingerprint"] = FINGERPRINT  # vLLM: terminal chunks, unless a usage chunk follows
            if continuous:
                out["usage"] = _usage(body, sent)
            return event(out)

        if chat:
            await send({"type": "http.response.body", "body": chunk("", role=True), "more_body": True})
        half = len(pieces) // 2
        for i, piece in enumerate(pieces):
            if gone.is_set():
                STATS["streams_cancelled"] += 1
                return
            if mode == "die-midstream" and i == half:
                raise ConnectionAbortedError("stand-in dropping the connection mid-stream")
            if mode == "stall-midstream" and i == half:
                await gone.wait()
                STATS["streams_cancelled"] += 1
                return
            sent += 1
            data = b"data: {this is not json\n\n" if mode == "malformed" else chunk(piece)
            await send({"type": "http.response.body", "body": data, "more_body": True})
            if CFG["delay"]:
                try:
                    await asyncio.wait_for(gone.wait(), CFG["delay"])
                except asyncio.TimeoutError:
                    pass
        tail = chunk("", "stop")
        if include_usage:
            usage = _usage(body, len(pieces))
            tail += event({**base, "choices": [], "usage": usage, "system_fingerprint": FINGERPRINT})
        await send({"type": "http.response.body", "body": tail + b"data: [DONE]\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        STATS["streams_completed"] += 1
    finally:
        STATS["inflight"] -= 1
        watcher.cancel()


async def app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    path, method = scope["path"], scope["method"]
    if path == "/v1/chat/completions" and method == "POST":
        await _completion(scope, receive, send, chat=True)
    elif path == "/v1/completions" and method == "POST":
        await _completion(scope, receive, send, chat=False)
    elif path == "/v1/models":
        await _send_json(
            send,
            200,
            {
                "object": "list",
                "data": [
                    {
                        "id": CFG["model"],
                        "object": "model",
                        "created": 0,
                        "owned_by": "standin",
                        "max_model_len": CFG["max_model_len"],
                    }
                ],
            },
        )
    elif path == "/_control" and method == "POST":
        # Tests switch behaviour between requests (the gateway forwards no client headers upstream).
        ctl = orjson.loads(await _read_body(receive))
        if "mode" in ctl:
            CFG["mode"] = ctl["mode"]
        if "delay_ms" in ctl:
            CFG["delay"] = ctl["delay_ms"] / 1000.0
        if "chunks" in ctl:
            CFG["chunks"] = ctl["chunks"]
        if "script" in ctl:
            CFG["script"] = ctl["script"]
        if "head_delay_ms" in ctl:
            CFG["head_delay"] = ctl["head_delay_ms"] / 1000.0
        if "max_model_len" in ctl:
            CFG["max_model_len"] = ctl["max_model_len"]
        await _send_json(send, 200, {k: v for k, v in CFG.items() if k != "model"})
    elif path in ("/health", "/_stats"):
        await _send_json(send, 200, STATS if path == "/_stats" else {})
    else:
        await _send_json(send, 404, _vllm_error(404, "not found"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--chunks", type=int, default=64)
    p.add_argument("--delay-ms", type=float, default=0.0)
    p.add_argument("--model", default="angel-standin")
    p.add_argument(
        "--mode",
        default="normal",
        choices=[
            "normal",
            "echo",
            "die-midstream",
            "hang",
            "stall-midstream",
            "malformed",
            "error500",
            "error400",
            "overloaded",
        ],
    )
    args = p.parse_args()
    CFG.update(mode=args.mode, chunks=args.chunks, delay=args.delay_ms / 1000.0, model=args.model)
    import uvicorn

    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        http="httptools",
        loop="uvloop",
        lifespan="on",
        backlog=4096,
    )


if __name__ == "__main__":
    main()
