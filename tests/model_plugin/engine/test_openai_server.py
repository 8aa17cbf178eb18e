"""vLLM's OpenAI server with our plugin on the tiny checkpoint answers chat (stream and not) and
/v1/models."""

import json
import os
from pathlib import Path

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


def _children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:  # field 4, the parent's pid
                kids.append(int(entry.name))
    return kids


def _titled(pids: list[int], title: str) -> int:
    found = [p for p in pids if (Path(f"/proc/{p}/cmdline").read_bytes()).startswith(title.encode())]
    assert len(found) == 1, (title, pids)
    return found[0]


def test_engine_core_runs_on_its_workers_cores(vllm_server):
    """vLLM leaves the engine core on the spare core the API server streams from; the plugin moves it
    beside its worker (model_plugin/cpu_placement.py), in every thread."""
    core = _titled(_children(vllm_server.proc.pid), "VLLM::EngineCore")
    worker = _titled(_children(core), "VLLM::Worker")
    worker_cpus = os.sched_getaffinity(worker)
    if worker_cpus == os.sched_getaffinity(vllm_server.proc.pid):
        pytest.skip("vLLM bound the worker to every core here: no spare core to keep free")
    for tid in os.listdir(f"/proc/{core}/task"):
        assert os.sched_getaffinity(int(tid)) == worker_cpus, tid
