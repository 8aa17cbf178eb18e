"""The demo (scripts/demo.sh runs scripts/demo_client.py once the stack is ready) against the real stack: it
says a generated checkpoint's text is noise and how to serve real weights, shows the crisis response with
its header, what the engine received for a message with a patient's identifiers (redacted), and the
metrics that counted both."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.support.procs import REPO, TEST_KEY, Proc, start_gateway

pytestmark = pytest.mark.vllm
CLIENT = REPO / "scripts" / "demo_client.py"


@pytest.fixture(scope="module")
def gateway(vllm_server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    g = start_gateway(tmp_path_factory.mktemp("gw-demo"), vllm_server.url, ANGEL_UPSTREAM_READ_TIMEOUT="120")
    yield g
    g.stop()


def run_demo(gateway: Proc, *extra: str) -> str:
    done = subprocess.run(
        [sys.executable, str(CLIENT), "--base-url", gateway.url + "/v1", "--key", TEST_KEY, *extra],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_demo_tells_the_truth_and_shows_the_safety_layer(gateway: Proc, tiny_checkpoint) -> None:
    out = run_demo(gateway, "--model-dir", str(tiny_checkpoint))
    assert "GENERATED checkpoint" in out and "random noise" in out
    assert "MODEL_DIR=/path/to/AntAngelMed scripts/demo.sh" in out
    crisis = out.split("2. A crisis message", 1)[1].split("3. ", 1)[0]
    assert "x-angel-safety: crisis_self_harm" in crisis and "988" in crisis
    phi = out.split("3. A patient's name", 1)[1].split("4. ", 1)[0]
    assert "x-angel-safety: phi" in phi
    sent, engine = phi.split("the engine's prompt", 1)
    assert "Maria Keller" in sent and "415-555-0142" in sent
    assert "[PERSON_1]" in engine and "[PHONE_1]" in engine  # vLLM's own record of its prompt
    assert "Maria Keller" not in engine and "415-555-0142" not in engine
    metrics = out.split("4. The gateway's metrics", 1)[1]
    for line in (
        r'gateway_safety_events_total\{action="annotate",category="crisis_self_harm"\} [1-9]',
        r'gateway_safety_events_total\{action="redact",category="phi"\} [1-9]',
        r'gateway_requests_total\{model="antangelmed",route="/v1/responses",status="200"\} [1-9]',
    ):
        assert re.search(line, metrics), line


def test_demo_on_real_weights_does_not_call_them_noise(gateway: Proc) -> None:
    assert "GENERATED" not in run_demo(gateway)  # no --model-dir with a generator record


def test_demo_script_runs_the_client_on_the_served_checkpoint_with_the_tool_parser() -> None:
    script = (REPO / "scripts" / "demo.sh").read_text()
    assert subprocess.run(["bash", "-n", str(REPO / "scripts" / "demo.sh")], check=False).returncode == 0
    assert re.search(r"scripts/demo_client\.py .*--model-dir \"\$MODEL_DIR\"", script)
    assert "--enable-auto-tool-choice --tool-call-parser hermes" in script
