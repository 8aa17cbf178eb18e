"""Every OpenAI-shaped payload the gateway writes itself, in one place.

Errors (a JSON body, or the final SSE event of a stream), the safety layer's canned answers (JSON or
SSE), the chunk that releases text an output guard still held when the engine's stream ended, and the
model list. Engine answers are relayed, not rebuilt: these are only what the gateway says in its own name.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

SSE_DONE = b"data: [DONE]\n\n"

# HTTP status -> OpenAI error "type" (what the SDKs show next to the string code).
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "timeout_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def error_type_for(status: int) -> str:
    if status in _ERROR_TYPES:
        return _ERROR_TYPES[status]
    return "server_error" if status >= 500 else "invalid_request_error"


def error_payload(message: str, err_type: str, param: str | None, code: str) -> dict[str, Any]:
    """`{"error": {"message", "type", "param", "code"}}`, the one error shape of the gateway."""
    return {"error": {"message": message, "type": err_type, "param": param, "code": code}}


def sse_event(obj: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def sse_error_event(message: str, code: str, err_type: str = "server_error") -> bytes:
    """The final event of a stream that cannot finish normally (the SDKs raise on it)."""
    return sse_event(error_payload(message, err_type, None, code))


def model_list(models: list[dict[str, Any]]) -> dict[str, Any]:
    return {"object": "list", "data": models}


def held_back_chunk(completion_id: str, chat: bool, model: str | None, index: int, text: str) -> bytes:
    """A stream chunk carrying text an output guard still held when the engine's stream ended."""
    chunk: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion.chunk" if chat else "text_completion",
        "created": int(time.time()),
        "model": model,
    }
    chunk["choices"] = (
        [{"index": index, "delta": {"content": text}, "finish_reason": None}]
        if chat
        else [{"index": index, "text": text, "finish_reason": None}]
    )
    return sse_event(chunk)


def canned_answer(
    chat: bool, model: str, text: str, choices: int, *, stream: bool, client_usage: bool
) -> bytes:
    """The safety layer's deterministic answer, shaped like the engine's: a JSON body, or an SSE body
    ending with `[DONE]` (with the usage chunk when the client asked for it)."""
    cid = ("chatcmpl-" if chat else "cmpl-") + orjson.dumps(time.time_ns()).decode()
    created = int(time.time())
    usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    obj_name = "chat.completion" if chat else "text_completion"
    if not stream:
        if chat:
            ch = [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
                for i in range(choices)
            ]
        else:
            ch = [
                {"index": i, "text": text, "finish_reason": "stop", "logprobs": None} for i in range(choices)
            ]
        payload = {
            "id": cid,
            "object": obj_name,
            "created": created,
            "model": model,
            "choices": ch,
            "usage": usage,
        }
        return orjson.dumps(payload)
    obj_name += ".chunk" if chat else ""
    events = []
    for i in range(choices):
        if chat:
            deltas = [({"role": "assistant", "content": ""}, None), ({"content": text}, None), ({}, "stop")]
            for delta, fin in deltas:
                events.append(
                    {
                        "id": cid,
                        "object": obj_name,
                        "created": created,
                        "model": model,
                        "choices": [{"index": i, "delta": delta, "finish_reason": fin}],
                    }
                )
        else:
            events.append(
                {
                    "id": cid,
                    "object": obj_name,
                    "created": created,
                    "model": model,
                    "choices": [{"index": i, "text": text, "finish_reason": "stop"}],
                }
            )
    if client_usage:
        events.append(
            {"id": cid, "object": obj_name, "created": created, "model": model, "choices": [], "usage": usage}
        )
    return b"".join(sse_event(e) for e in events) + SSE_DONE
