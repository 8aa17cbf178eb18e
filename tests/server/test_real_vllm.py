"""The gateway in front of a real vLLM server (our plugin, generated tiny checkpoint), driven by the
`openai` client: chat and completions, stream and non-stream, usage metering, vLLM's own errors
translated, readiness, and a client disconnect aborting the engine's request."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import openai
import orjson
import pytest

from tests.support.procs import TEST_KEY, Proc, metric, start_gateway

pytestmark = pytest.mark.vllm


@pytest.fixture(scope="module")
def gateway(vllm_server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    g = start_gateway(tmp_path_factory.mktemp("gw-real"), vllm_server.url, ANGEL_UPSTREAM_READ_TIMEOUT="120")
    yield g
    g.stop()


def sdk(gw: Proc) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=TEST_KEY, max_retries=0, timeout=120)


MSG = [{"role": "user", "content": "What are common symptoms of the flu?"}]


def test_chat_answer_with_usage_and_gateway_headers(gateway: Proc, vllm_server) -> None:
    raw = sdk(gateway).chat.completions.with_raw_response.create(
        model=vllm_server.model, messages=MSG, max_tokens=8, extra_body={"ignore_eos": True}
    )
    assert raw.headers["x-request-id"] and raw.headers["x-angel-safety"] == ""
    r = raw.parse()
    assert r.choices[0].message.role == "assistant" and isinstance(r.choices[0].message.content, str)
    assert r.usage is not None and r.usage.completion_tokens == 8 and r.usage.prompt_tokens > 0


def test_chat_stream_usage_stripped_and_metered(gateway: Proc, vllm_server) -> None:
    chunks = list(
        sdk(gateway).chat.completions.create(
            model=vllm_server.model, messages=MSG, max_tokens=8, stream=True, extra_body={"ignore_eos": True}
        )
    )
    assert chunks and all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "length"
    # the stripped usage chunk was still metered
    assert metric(gateway.url, "gateway_tokens_total", kind="completion", model=vllm_server.model) >= 8


def test_chat_stream_keeps_usage_when_asked(gateway: Proc, vllm_server) -> None:
    chunks = list(
        sdk(gateway).chat.completions.create(
            model=vllm_server.model,
            messages=MSG,
            max_tokens=6,
            stream=True,
            stream_options={"include_usage": True},
            extra_body={"ignore_eos": True},
        )
    )
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 6


async def test_async_completions_stream_and_whole_answer(gateway: Proc, vllm_server) -> None:
    async with openai.AsyncOpenAI(
        base_url=gateway.url + "/v1", api_key=TEST_KEY, max_retries=0, timeout=120
    ) as c:
        stream = await c.completions.create(
            model=vllm_server.model,
            prompt="Fever and cough",
            max_tokens=5,
            stream=True,
            extra_body={"ignore_eos": True},
        )
        pieces = [ch async for ch in stream]
        r = await c.completions.create(
            model=vllm_server.model, prompt="Fever", max_tokens=3, extra_body={"ignore_eos": True}
        )
    assert pieces and isinstance(pieces[0].choices[0].text, str)
    assert r.usage is not None and r.usage.completion_tokens == 3


def test_vllm_errors_are_translated_to_string_codes(gateway: Proc, vllm_server) -> None:
    with pytest.raises(openai.BadRequestError) as e:  # longer than --max-model-len 2048: vLLM refuses
        sdk(gateway).chat.completions.create(model=vllm_server.model, messages=MSG, max_tokens=100_000)
    assert isinstance(e.value.code, str) and e.value.body["type"] == "invalid_request_error"
    with pytest.raises(openai.NotFoundError) as e:
        sdk(gateway).chat.completions.create(model="not-served", messages=MSG)
    assert e.value.code == "model_not_found"


def test_ready_and_lists_the_served_model(gateway: Proc, vllm_server) -> None:
    r = httpx.get(gateway.url + "/readyz", timeout=60)
    assert r.status_code == 200 and r.json()["status"] == "ready"
    assert [m.id for m in sdk(gateway).models.list().data] == [vllm_server.model]


# Enough work that the engine cannot finish it before the abort arrives: on 2 loaded cores vLLM's API
# server sometimes delivers nothing for seconds while its engine core runs on, and with one 2000-token
# answer the engine was done before the API server noticed the closed connection (CI failed that way).
CHOICES = 32
GENERATED = "vllm:generation_tokens_total"


def test_disconnect_aborts_engine_request(gateway: Proc, vllm_server) -> None:
    before = metric(vllm_server.url, GENERATED)
    seen_before = metric(gateway.url, "gateway_client_disconnects_total")
    body = {
        "model": vllm_server.model,
        "messages": MSG,
        "max_tokens": 2000,
        "n": CHOICES,
        "stream": True,
        "ignore_eos": True,
    }
    with httpx.stream(
        "POST",
        gateway.url + "/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {TEST_KEY}"},
        timeout=60,
    ) as r:
        assert r.status_code == 200
        # The client walks away at its first event (the role chunk, sent with the first token). Not
        # later: on 2 cores vLLM's API server can lag seconds behind its engine while the engine runs
        # ahead and finishes all 2000 tokens, leaving nothing to cancel by the time a later event
        # arrives. Polling vLLM's /metrics is no signal either: it stalls while a stream runs.
        next(r.iter_raw())
    # The engine stops: its generated-token counter settles well short of the 32 x 2000 tokens asked for.
    time.sleep(1.5)
    settled = metric(vllm_server.url, GENERATED)
    time.sleep(1.0)
    after = metric(vllm_server.url, GENERATED)
    assert after == settled, "the engine kept generating after the client disconnected"
    assert after - before < 2000 * CHOICES, f"{after - before} tokens: the request was not aborted"
    assert metric(gateway.url, "gateway_client_disconnects_total") == seen_before + 1


# --- fidelity against the real engine ---------------------------------------------------------------------


def test_prompt_longer_than_the_model_reads_is_context_length_exceeded(gateway: Proc, vllm_server) -> None:
    # ~3,000 tokens against --max-model-len 2048: vLLM refuses, the gateway translates the code.
    with pytest.raises(openai.BadRequestError) as e:
        sdk(gateway).chat.completions.create(
            model=vllm_server.model, messages=[{"role": "user", "content": "fever " * 3000}], max_tokens=4
        )
    assert e.value.code == "context_length_exceeded" and e.value.body["param"] == "messages"
    # Certainly too long (at least 2,048 tokens by its characters): refused by the gateway from vLLM's model
    # card, before any scan or engine call.
    with pytest.raises(openai.BadRequestError) as e:
        sdk(gateway).completions.create(model=vllm_server.model, prompt="x" * (2048 * 128), max_tokens=4)
    assert e.value.code == "context_length_exceeded" and "2048 tokens" in e.value.body["message"]


@pytest.fixture(scope="module")
def plain(vllm_server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    """A gateway with the safety layer off."""
    g = start_gateway(
        tmp_path_factory.mktemp("gw-real-plain"),
        vllm_server.url,
        ANGEL_UPSTREAM_READ_TIMEOUT="120",
        ANGEL_SAFETY_ENABLED="false",
    )
    yield g
    g.stop()


@pytest.mark.parametrize(
    "body",
    [
        {"messages": [{"role": "user", "content": "Fever?"}], "max_tokens": 2},  # no model
        {"model": "", "messages": [{"role": "user", "content": "Fever?"}], "max_tokens": 2},
        {
            "messages": [{"role": "narrator", "content": "Ward 7."}, {"role": "user", "content": "Hi"}],
            "max_tokens": 2,
        },
        {
            "messages": [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
            "max_tokens": 2,
        },
    ],
    ids=["no-model", "empty-model", "unknown-role", "developer-role"],
)
def test_with_safety_off_the_gateway_takes_what_vllm_takes(plain: Proc, vllm_server, body: dict) -> None:
    direct = httpx.post(vllm_server.url + "/v1/chat/completions", json=body, timeout=120)
    through = httpx.post(
        plain.url + "/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {TEST_KEY}"},
        timeout=120,
    )
    assert through.status_code == direct.status_code, (direct.text[:300], through.text[:300])
    if direct.status_code == 200:
        assert through.json()["model"] == direct.json()["model"] == vllm_server.model


def test_stream_fingerprint_is_vllms(plain: Proc, vllm_server) -> None:
    body = {"model": vllm_server.model, "messages": MSG, "max_tokens": 4, "stream": True, "ignore_eos": True}

    def fingerprints(url: str, headers: dict) -> list:
        out = []
        with httpx.stream("POST", url + "/v1/chat/completions", json=body, headers=headers, timeout=120) as r:
            for line in r.iter_lines():
                if line.startswith("data: {"):
                    out.append(orjson.loads(line[6:]).get("system_fingerprint"))
        return out

    direct = fingerprints(vllm_server.url, {})
    through = fingerprints(plain.url, {"Authorization": f"Bearer {TEST_KEY}"})
    assert direct[-1] and direct[-1].startswith("vllm-")  # on the terminal chunk, as vLLM sends it
    assert through[-1] == direct[-1] and through.count(None) == len(through) - 1
