"""What OpenAI clients see through the real gateway process (the stand-in answering as vLLM does): the
stream's system_fingerprint, events of many MiB, `context_length_exceeded` (from the engine, or from
the gateway before any engine call) as the openai SDK raises it, requests taken as vLLM takes them when
safety is off, and no model name the upstream does not serve in the logs or the audit table."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import orjson
import pytest

from server.context import UNSERVED_MODEL
from tests.server.helpers import AUTH, MODEL, chat_body, events
from tests.support.procs import TEST_KEY, Proc, control, start_gateway, start_standin

MODELS_TTL = 0.5  # the gateways' model-list cache: context lengths changed by a test are seen at once


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    p = start_standin(tmp_path_factory.mktemp("standin-fidelity"), chunks=4)
    yield p
    p.stop()


@pytest.fixture(autouse=True)
def reset_standin(standin: Proc) -> Iterator[None]:
    yield
    control(standin, mode="normal", delay_ms=0, chunks=4, max_model_len=32768)
    time.sleep(MODELS_TTL)


@pytest.fixture(scope="module")
def gw_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gw-fidelity")


@pytest.fixture(scope="module")
def gateway(standin: Proc, gw_dir: Path) -> Iterator[Proc]:
    p = start_gateway(gw_dir, standin.url, ANGEL_LOG_LEVEL="info", ANGEL_MODELS_CACHE_SECONDS=str(MODELS_TTL))
    yield p
    p.stop()


@pytest.fixture(scope="module")
def plain(standin: Proc, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    """A gateway with the safety layer off."""
    p = start_gateway(
        tmp_path_factory.mktemp("gw-plain"),
        standin.url,
        ANGEL_SAFETY_ENABLED="false",
        ANGEL_MODELS_CACHE_SECONDS=str(MODELS_TTL),
    )
    yield p
    p.stop()


def sdk(gw: Proc) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=TEST_KEY, max_retries=0, timeout=60)


def stats(standin: Proc) -> dict:
    return httpx.get(standin.url + "/_stats").json()


def test_stream_keeps_vllms_system_fingerprint(gateway: Proc) -> None:
    # vLLM stamps a stream's terminal chunk when usage is not asked for, else its usage chunk; the gateway
    # always asks for usage upstream, and the client sees what it would see from vLLM either way.
    chunks = list(
        sdk(gateway).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert [c.system_fingerprint for c in chunks] == [None] * (len(chunks) - 1) + ["fp_standin"]
    with_usage = list(
        sdk(gateway).chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert with_usage[-1].usage is not None and with_usage[-1].system_fingerprint == "fp_standin"
    assert all(c.usage is None for c in with_usage[:-1])  # usage on every chunk upstream, not here


def test_an_event_of_several_mib_reaches_the_client_whole(plain: Proc, standin: Proc) -> None:
    control(standin, mode="echo", chunks=1, max_model_len=10**8)  # the whole echo in one SSE event
    time.sleep(MODELS_TTL)
    text = "lab values " * 300_000  # 3.3 MB
    body = chat_body(messages=[{"role": "user", "content": text}], stream=True)
    r = httpx.post(plain.url + "/v1/chat/completions", json=body, headers=AUTH, timeout=60)
    ev = events(r.text)
    assert ev[-1] == "[DONE]", str(ev[-1])[:300]
    echoed = "".join(
        e["choices"][0]["delta"].get("content") or "" for e in ev if e != "[DONE]" and e["choices"]
    )
    assert orjson.loads(echoed) == body["messages"]


def test_engine_context_length_error_is_context_length_exceeded(gateway: Proc, standin: Proc) -> None:
    control(standin, max_model_len=1000)  # the stand-in counts ~4 characters a token: 5,000 do not fit
    time.sleep(MODELS_TTL)
    with pytest.raises(openai.BadRequestError) as e:
        sdk(gateway).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "a " * 2500}])
    assert e.value.code == "context_length_exceeded"
    assert e.value.body["param"] == "messages" and "maximum context length" in e.value.body["message"]
    with pytest.raises(openai.BadRequestError) as e:
        sdk(gateway).completions.create(model=MODEL, prompt="a " * 2500)
    assert e.value.code == "context_length_exceeded" and e.value.body["param"] == "prompt"


def test_certainly_too_long_prompt_is_refused_by_the_gateway_itself(gateway: Proc, standin: Proc) -> None:
    control(standin, max_model_len=1000)
    time.sleep(MODELS_TTL)
    before = stats(standin)["requests"]
    with pytest.raises(openai.BadRequestError) as e:  # 200,000 characters: at least 1,563 tokens
        sdk(gateway).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "b" * 200_000}]
        )
    assert e.value.code == "context_length_exceeded" and e.value.body["param"] == "messages"
    assert stats(standin)["requests"] == before


def test_with_safety_off_roles_and_a_missing_model_are_taken_as_vllm_takes_them(
    plain: Proc, standin: Proc
) -> None:
    msgs = [{"role": "operator", "content": "be brief"}, {"role": "user", "content": "hi"}]
    r = httpx.post(plain.url + "/v1/chat/completions", json={"messages": msgs}, headers=AUTH, timeout=10)
    assert r.status_code == 200, r.text
    seen = stats(standin)["last_body"]
    assert seen["messages"] == msgs and seen["model"] == MODEL


def test_with_safety_on_they_are_refused_naming_the_parameter(gateway: Proc) -> None:
    for body, param in (
        ({"messages": [{"role": "user", "content": "hi"}]}, "model"),
        ({"model": MODEL, "messages": [{"role": "operator", "content": "hi"}]}, "messages[0].role"),
    ):
        r = httpx.post(gateway.url + "/v1/chat/completions", json=body, headers=AUTH, timeout=10)
        assert r.status_code == 400 and r.json()["error"]["param"] == param, r.text


def test_an_unserved_model_name_is_never_logged_or_stored(gateway: Proc, gw_dir: Path) -> None:
    typed = "John Q Patient MRN 00412345"  # what a user might type into the wrong field
    r = httpx.post(
        gateway.url + "/v1/chat/completions", json=chat_body(model=typed), headers=AUTH, timeout=10
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    deadline = time.monotonic() + 5
    rows: list = []
    while time.monotonic() < deadline:  # the audit writer flushes every 0.25 s
        with sqlite3.connect(gw_dir / "gw.db", timeout=10) as c:
            rows = c.execute("SELECT model FROM audit_log WHERE status = 404").fetchall()
        if rows:
            break
        time.sleep(0.1)
    assert rows and all(row[0] == UNSERVED_MODEL for row in rows)
    log = gateway.log()
    assert typed not in log and "MRN" not in log
    lines = [orjson.loads(line) for line in log.splitlines() if '"status":404' in line]
    assert lines and all(line["model"] == UNSERVED_MODEL for line in lines)
