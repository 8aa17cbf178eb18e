"""The OpenAI shapes the gateway writes itself (server/openai_shapes.py), as plain functions."""

from __future__ import annotations

import orjson
import pytest

from server.openai_shapes import (
    SSE_DONE,
    canned_answer,
    error_payload,
    error_type_for,
    held_back_chunk,
    model_list,
    sse_error_event,
)
from tests.server.helpers import events


@pytest.mark.parametrize(
    ("status", "err_type"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (404, "not_found_error"),
        (429, "rate_limit_error"),
        (418, "invalid_request_error"),
        (502, "server_error"),
    ],
)
def test_error_type_follows_the_status(status: int, err_type: str) -> None:
    assert error_type_for(status) == err_type


def test_error_payload_has_exactly_the_four_fields() -> None:
    assert error_payload("m", "server_error", None, "c") == {
        "error": {"message": "m", "type": "server_error", "param": None, "code": "c"}
    }


def test_sse_error_event_is_one_data_event() -> None:
    raw = sse_error_event("gone", "upstream_disconnected")
    assert raw.startswith(b"data: ") and raw.endswith(b"\n\n") and raw.count(b"\n\n") == 1
    assert orjson.loads(raw[6:]) == error_payload("gone", "server_error", None, "upstream_disconnected")


def test_model_list_shape() -> None:
    assert model_list([{"id": "m"}]) == {"object": "list", "data": [{"id": "m"}]}


def test_canned_chat_answer_as_json_has_one_message_per_choice() -> None:
    obj = orjson.loads(canned_answer(True, "m", "Call 988.", 2, stream=False, client_usage=False))
    assert obj["object"] == "chat.completion" and obj["id"].startswith("chatcmpl-") and obj["model"] == "m"
    assert [c["message"] for c in obj["choices"]] == [{"role": "assistant", "content": "Call 988."}] * 2
    assert [c["finish_reason"] for c in obj["choices"]] == ["stop", "stop"]
    assert obj["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


def test_canned_completion_stream_ends_with_usage_when_asked_then_done() -> None:
    raw = canned_answer(False, "m", "Call 988.", 1, stream=True, client_usage=True)
    assert raw.endswith(SSE_DONE)
    ev = events(raw.decode())
    assert ev[0]["object"] == "text_completion" and ev[0]["choices"][0]["text"] == "Call 988."
    assert ev[-2]["choices"] == [] and ev[-2]["usage"]["total_tokens"] == 0 and ev[-1] == "[DONE]"


def test_canned_chat_stream_sends_role_text_and_stop_without_usage_unless_asked() -> None:
    ev = events(canned_answer(True, "m", "Call 988.", 1, stream=True, client_usage=False).decode())
    deltas = [(e["choices"][0]["delta"], e["choices"][0]["finish_reason"]) for e in ev[:-1]]
    assert deltas == [
        ({"role": "assistant", "content": ""}, None),
        ({"content": "Call 988."}, None),
        ({}, "stop"),
    ]
    assert all(e["object"] == "chat.completion.chunk" for e in ev[:-1]) and ev[-1] == "[DONE]"


@pytest.mark.parametrize("chat", [True, False])
def test_held_back_chunk_keeps_the_stream_id_and_carries_the_text(chat: bool) -> None:
    (ev,) = events(held_back_chunk("c1", chat, "m", 3, "tail").decode())
    assert ev["id"] == "c1" and ev["model"] == "m"
    choice = ev["choices"][0]
    assert choice["index"] == 3 and choice["finish_reason"] is None
    assert (choice["delta"]["content"] if chat else choice["text"]) == "tail"
