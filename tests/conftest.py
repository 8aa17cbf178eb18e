"""Session-wide fixtures: one generated tiny checkpoint and one real vLLM server for all tests."""

import subprocess
import sys

import pytest

from tests.model_plugin.engine.support import REPO, start_vllm_server


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """The `tiny` preset written by the project's own generator CLI (seed 0)."""
    out = tmp_path_factory.mktemp("ckpt") / "tiny"
    subprocess.run(
        [sys.executable, "-m", "model_plugin.checkpoints", "--preset", "tiny", "--out", str(out)],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    return out


@pytest.fixture(scope="session")
def vllm_server(tiny_checkpoint, tmp_path_factory):
    """vLLM's OpenAI server with our plugin on the tiny checkpoint, as a real process.

    `.url` is its base URL (no /v1), `.model` the served model name.
    """
    # Tool calling as the serving recipes enable it (README.md): the template writes Hermes-style calls.
    tools = ["--enable-auto-tool-choice", "--tool-call-parser", "hermes"]
    server = start_vllm_server(
        tiny_checkpoint, tmp_path_factory.mktemp("logs") / "vllm.log", extra_args=tools
    )
    yield server
    server.stop()
