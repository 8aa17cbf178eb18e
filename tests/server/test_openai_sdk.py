"""The real `openai` Python client against the gateway process (stand-in upstream): sync and async,
stream and non-stream, and every gateway error mapped to the SDK's exception class."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from server.db import Database
from server.keys import KeyStore
from tests.server.helpers import MODEL
from tests.support.procs import TEST_KEY, Proc, start_gateway

MSG = [{"role": "user", "content": "What is a normal resting heart rate?"}]


@pytest.fixture(scope="module")
def db_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sdkdb") / "gw.db"


@pytest.fixture(scope="module")
def gateway(standin: Proc, db_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    g = start_gateway(tmp_path_factory.mktemp("gwsdk"), standin.url, db=db_path)
    yield g
    g.stop()


@pytest.fixture(autouse=True)
def normal_mode(standin: Proc) -> Iterator[None]:
    yield
    httpx.post(standin.url + "/_control", json={"mode": "normal", "chunks": 16, "delay_ms": 0})


def client(gw: Proc, key: str = TEST_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)


def aclient(gw: Proc, key: str = TEST_KEY) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)


def test_sync_client_reads_a_whole_answer_with_gateway_headers(gateway: Proc) -> None:
    raw = client(gateway).chat.completions.with_raw_response.create(model=MODEL, messages=MSG)
    assert raw.headers["x-angel-safety"] is not None and raw.headers["x-request-id"]
    r = raw.parse()
    assert r.choices[0].message.content == "Fine. " * 16
    assert r.usage is not None and r.usage.completion_tokens == 16


def test_sync_client_stream_has_no_usage_unless_asked(gateway: Proc) -> None:
    chunks = list(client(gateway).chat.completions.create(model=MODEL, messages=MSG, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Fine. " * 16
    assert all(c.usage is None for c in chunks)  # not asked for: stripped


def test_sync_client_stream_gets_usage_when_asked(gateway: Proc) -> None:
    chunks = list(
        client(gateway).chat.completions.create(
            model=MODEL, messages=MSG, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 16


def test_sync_client_completions(gateway: Proc) -> None:
    r = client(gateway).completions.create(model=MODEL, prompt="Hello", max_tokens=4)
    assert r.choices[0].text == "Fine. " * 4


async def test_async_client_reads_a_whole_answer(gateway: Proc) -> None:
    async with aclient(gateway) as c:
        r = await c.chat.completions.create(model=MODEL, messages=MSG)
    assert r.choices[0].message.content == "Fine. " * 16


async def test_async_client_streams(gateway: Proc) -> None:
    async with aclient(gateway) as c:
        stream = await c.chat.completions.create(model=MODEL, messages=MSG, stream=True)
        text = "".join([ch.choices[0].delta.content or "" async for ch in stream if ch.choices])
    assert text == "Fine. " * 16


async def test_async_client_lists_models(gateway: Proc) -> None:
    async with aclient(gateway) as c:
        models = await c.models.list()
    assert [m.id for m in models.data] == [MODEL]


def test_wrong_key_raises_authentication_error(gateway: Proc) -> None:
    with pytest.raises(openai.AuthenticationError) as e:
        client(gateway, "sk-angel-wrong-key-000000000000000").chat.completions.create(
            model=MODEL, messages=MSG
        )
    assert e.value.code == "invalid_api_key"


def test_unknown_model_raises_not_found_error(gateway: Proc) -> None:
    with pytest.raises(openai.NotFoundError) as e:
        client(gateway).chat.completions.create(model="no-such-model", messages=MSG)
    assert e.value.code == "model_not_found"


def test_bad_parameter_raises_bad_request_error_naming_it(gateway: Proc) -> None:
    with pytest.raises(openai.BadRequestError) as e:
        client(gateway).chat.completions.create(model=MODEL, messages=MSG, temperature=7)
    assert e.value.code == "invalid_request_error" and e.value.param == "temperature"


def test_model_outside_the_key_raises_permission_denied_error(gateway: Proc, db_path: Path) -> None:
    key, _ = KeyStore(Database(f"sqlite:///{db_path}")).create("narrow-sdk", allowed_models=["other"])
    with pytest.raises(openai.PermissionDeniedError) as e:
        client(gateway, key).chat.completions.create(model=MODEL, messages=MSG)
    assert e.value.code == "model_not_allowed"


def test_rpm_exceeded_raises_rate_limit_error_with_retry_after(gateway: Proc, db_path: Path) -> None:
    key, _ = KeyStore(Database(f"sqlite:///{db_path}")).create("limited-sdk", rpm=1)
    c = client(gateway, key)
    c.chat.completions.create(model=MODEL, messages=MSG)
    with pytest.raises(openai.RateLimitError) as e:
        c.chat.completions.create(model=MODEL, messages=MSG)
    assert e.value.code == "rate_limit_exceeded"
    assert int(e.value.response.headers["retry-after"]) >= 1


async def test_async_client_raises_the_same_errors_on_streams(gateway: Proc) -> None:
    async with aclient(gateway, "sk-angel-wrong-key-000000000000000") as c:
        with pytest.raises(openai.AuthenticationError):
            await c.chat.completions.create(model=MODEL, messages=MSG, stream=True)
    async with aclient(gateway) as c:
        with pytest.raises(openai.BadRequestError):
            await c.chat.completions.create(model=MODEL, messages=[], stream=True)


def test_upstream_500_raises_internal_server_error(gateway: Proc, standin: Proc) -> None:
    httpx.post(standin.url + "/_control", json={"mode": "error500"})
    with pytest.raises(openai.InternalServerError) as e:
        client(gateway).chat.completions.create(model=MODEL, messages=MSG)
    assert e.value.status_code == 502 and e.value.code == "upstream_error"


def test_midstream_failure_raises_in_sdk(gateway: Proc, standin: Proc) -> None:
    httpx.post(standin.url + "/_control", json={"mode": "die-midstream", "chunks": 8})
    got: list = []
    with pytest.raises(openai.APIError) as e:
        got.extend(client(gateway).chat.completions.create(model=MODEL, messages=MSG, stream=True))
    assert got  # part of the answer arrived before the error event
    assert "failed mid-stream" in str(e.value.message) or "ended the stream early" in str(e.value.message)
