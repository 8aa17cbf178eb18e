"""vLLM's OpenAI server with our plugin on the tiny checkpoint answers chat (stream and not) and
/v1/models."""

import json

import httpx
import pytest

pytestmark = pytest.mark.vllm


def test_models_lists_served_model(vllm_server):
    body = httpx.get(f"{vllm_server.url}/v1/models", timeout=10).json()
    assert [m["id"] for m in body["data"]] == [vllm_server.model]


def test_chat_completion_non_stream(vllm_server):
    r = httpx.post(
        f"{vllm_server.url}/v1/chat/completions",
        timeout=60,
        json={
            "model": vllm_server.model,
            "max_tokens": 12,
            "temperature": 0,
            "messages": [
                {"role": "system", "content": "You are a careful medical assistant."},
                {"role": "user", "content": "头痛应该怎么办？"},
            ],
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert isinstance(body["choices"][0]["message"]["content"], str)
    assert body["usage"]["completion_tokens"] == 12
    # The chat template was applied: the prompt is longer than the two raw messages' tokens.
    assert body["usage"]["prompt_tokens"] > 5


def test_chat_completion_stream_with_usage(vllm_server):
    events = []
    with httpx.stream(
        "POST",
        f"{vllm_server.url}/v1/chat/completions",
        timeout=60,
        json={
            "model": vllm_server.model,
            "max_tokens": 8,
            "temperature": 0,
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "What is hypertension?"}],
        },
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data: "):
                events.append(line[6:])
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert sum(1 for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content") is not None) >= 1
    assert chunks[-1]["usage"]["completion_tokens"] == 8


def test_greedy_is_deterministic_across_requests(vllm_server):
    def ask():
        return httpx.post(
            f"{vllm_server.url}/v1/completions",
            timeout=60,
            json={
                "model": vllm_server.model,
                "prompt": "The patient presents with",
                "max_tokens": 16,
                "temperature": 0,
            },
        ).json()["choices"][0]["text"]

    assert ask() == ask()
