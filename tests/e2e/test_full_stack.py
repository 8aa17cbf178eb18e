"""The whole stack on CPU, as the README's run command brings it up: vLLM with our plugin on a
generated checkpoint, the gateway with safety on, a key made with the CLI, and the official `openai`
client streaming a Chinese and an English chat through it, with the traffic visible on /metrics."""

import subprocess
import sys

import httpx
import openai
import pytest

from tests.support.procs import REPO, gateway_env, start_gateway

pytestmark = pytest.mark.vllm


@pytest.fixture(scope="module")
def stack(vllm_server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    db = tmp / "gateway.db"
    created = subprocess.run(
        [
            sys.executable,
            "-m",
            "server",
            "keys",
            "create",
            "--name",
            "e2e-clinic",
            "--models",
            vllm_server.model,
            "--rpm",
            "600",
            "--safety-profile",
            "patient",
        ],
        cwd=REPO,
        env=gateway_env(vllm_server.url, db),
        capture_output=True,
        text=True,
        check=True,
    )
    key = created.stdout.split()[0]
    assert key.startswith("sk-angel-")
    # The plaintext key never lands in the database, only its hash.
    assert key.encode() not in db.read_bytes()
    gateway = start_gateway(tmp, vllm_server.url, db=db, ANGEL_API_KEYS="", ANGEL_UPSTREAM_READ_TIMEOUT="120")
    for _ in range(240):
        if httpx.get(gateway.url + "/readyz", timeout=5).status_code == 200:
            break
    yield gateway, key
    gateway.stop()


@pytest.mark.parametrize(
    "question", ["What are the warning signs of high blood pressure?", "糖尿病患者饮食需要注意什么？"]
)
def test_openai_client_streams_a_chat_through_the_stack(stack, vllm_server, question):
    gateway, key = stack
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0, timeout=120)
    stream = client.chat.completions.create(
        model=vllm_server.model,
        messages=[{"role": "user", "content": question}],
        max_tokens=16,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"ignore_eos": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text  # the engine generated through the gateway
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 16


def test_wrong_key_is_refused_in_openai_shape(stack, vllm_server):
    gateway, _ = stack
    client = openai.OpenAI(
        base_url=gateway.url + "/v1", api_key="sk-angel-not-a-real-key-000000000000", max_retries=0
    )
    with pytest.raises(openai.AuthenticationError) as err:
        client.chat.completions.create(model=vllm_server.model, messages=[{"role": "user", "content": "hi"}])
    assert err.value.body["code"] == "invalid_api_key"


def test_metrics_show_the_traffic(stack, vllm_server):
    gateway, key = stack
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0, timeout=120)
    client.chat.completions.create(
        model=vllm_server.model, messages=[{"role": "user", "content": "hello"}], max_tokens=4
    )
    metrics = httpx.get(gateway.url + "/metrics", timeout=10).text
    ok = [
        line
        for line in metrics.splitlines()
        if line.startswith("gateway_requests_total{")
        and 'status="200"' in line
        and "/v1/chat/completions" in line
    ]
    assert ok and float(ok[0].rsplit(" ", 1)[1]) >= 1
    assert any(line.startswith("gateway_tokens_total{") for line in metrics.splitlines())
    assert "gateway_time_to_first_token_seconds_bucket" in metrics
