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


def error_payload(message: str, err_type: str, param: str | None, code: str | None) -> dict[str, Any]:
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


# ---- Responses API (`POST /v1/responses`) ----------------------------------------------------------------
# A Responses stream is a sequence of typed events (`event: <type>` + `data: {"type": <type>, ...,
# "sequence_number": n}`), ending with `response.completed` (or `.incomplete` / `.failed`); no [DONE].


def responses_event(obj: dict[str, Any]) -> bytes:
    """One Responses SSE event; `obj["type"]` names it on the `event:` line too, as OpenAI and vLLM do."""
    return b"event: " + str(obj["type"]).encode() + b"\ndata: " + orjson.dumps(obj) + b"\n\n"


def responses_error_event(message: str, code: str, err_type: str, sequence_number: int) -> bytes:
    """The final event of a Responses stream that cannot finish. It carries the gateway's `error` object
    (the SDKs raise on it, as on a chat stream) and the fields of OpenAI's own `error` event."""
    err = error_payload(message, err_type, None, code)
    return responses_event(
        {
            "type": "error",
            **err,
            "code": code,
            "message": message,
            "param": None,
            "sequence_number": sequence_number,
        }
    )


def responses_delta(
    event_type: str, item_id: str, output_index: int, content_index: int | None, text: str
) -> dict[str, Any]:
    """A `*.delta` event the gateway adds itself (text an output guard held back until its piece closed);
    the relay numbers it. Function-call arguments and custom-tool input have no content_index."""
    delta: dict[str, Any] = {"type": event_type, "item_id": item_id, "output_index": output_index}
    if content_index is not None:
        delta["content_index"] = content_index
    delta["delta"] = text
    if event_type == "response.output_text.delta":
        delta["logprobs"] = []
    return delta


def _response_object(rid: str, model: str, status: str, output: list[dict[str, Any]]) -> dict[str, Any]:
    usage = {
        "input_tokens": 0,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": 0,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 0,
    }
    return {
        "id": rid,
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "model": model,
        "output": output,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "metadata": None,
        "parallel_tool_calls": True,
        "temperature": None,
        "top_p": None,
        "tool_choice": "auto",
        "tools": [],
        "usage": usage if status == "completed" else None,
    }


def canned_response(model: str, text: str, *, stream: bool) -> bytes:
    """The safety layer's deterministic answer as a Responses object, or as the event sequence a streamed
    answer has (created, in_progress, item and part added, one text delta, the done events, completed)."""
    rid, mid = f"resp_angel{time.time_ns()}", f"msg_angel{time.time_ns()}"
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    item = {"type": "message", "id": mid, "status": "completed", "role": "assistant", "content": [part]}
    done = _response_object(rid, model, "completed", [item])
    if not stream:
        return orjson.dumps(done)
    started = _response_object(rid, model, "in_progress", [])
    at = {"item_id": mid, "output_index": 0, "content_index": 0}
    opened = {**item, "status": "in_progress", "content": []}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": started},
        {"type": "response.in_progress", "response": started},
        {"type": "response.output_item.added", "output_index": 0, "item": opened},
        {"type": "response.content_part.added", **at, "part": {**part, "text": ""}},
        {"type": "response.output_text.delta", **at, "delta": text, "logprobs": []},
        {"type": "response.output_text.done", **at, "text": text, "logprobs": []},
        {"type": "response.content_part.done", **at, "part": part},
        {"type": "response.output_item.done", "output_index": 0, "item": item},
        {"type": "response.completed", "response": done},
    ]  # fmt: skip
    return b"".join(responses_event({**e, "sequence_number": n}) for n, e in enumerate(events))
