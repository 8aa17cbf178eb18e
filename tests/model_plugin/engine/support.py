"""Helpers for tests that run real vLLM engines and servers on generated checkpoints."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import torch

from tests.support.procs import free_port

REPO = Path(__file__).resolve().parents[3]
MAX_TOKENS = 32  # generated tokens per prompt in equivalence and speculative-decoding checks
PROMPTS = [
    "The patient reports a mild headache and",
    "高血压患者应该注意",
    "Hello doctor, I have a question about",
    "糖尿病的常见症状包括",
    "What is the normal range for fasting glucose",
    "咳嗽三天，伴有低热，",
    "Aspirin is commonly used to",
    "请解释一下心电图的基本原理",
]


def engine_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def run_probe(
    model: Path,
    out: Path,
    *,
    prompts: list[str] = PROMPTS,
    plugin: bool = True,
    extra_args: list[str] = (),
    env: dict[str, str] | None = None,
    timeout: int = 600,
) -> dict:
    """Run tests/model_plugin/engine/probe.py in its own process and return its JSON."""
    prompts_file = out.with_suffix(".prompts.json")
    prompts_file.write_text(json.dumps(prompts, ensure_ascii=False))
    extra_env = dict(env or {})
    if not plugin:
        extra_env["VLLM_PLUGINS"] = "none"  # any value without "antangelmed" keeps our plugin out
    cmd = [
        sys.executable,
        "-m",
        "tests.model_plugin.engine.probe",
        "--model",
        str(model),
        "--out",
        str(out),
        "--prompts-file",
        str(prompts_file),
        *extra_args,
    ]
    proc = subprocess.run(
        cmd,
        cwd=REPO,
        env=engine_env(**extra_env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"probe failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
    return json.loads(out.read_text())


def logprob_gaps_to_reference(run: dict, reference) -> tuple[torch.Tensor, float]:
    """Per scored position, max |logprob gap| over the engine's top-5; and top-1 agreement."""
    gaps, agree = [], 0
    for res in run["results"]:
        ids = res["prompt_token_ids"] + res["token_ids"]
        with torch.no_grad():
            ref = torch.log_softmax(reference.forward(torch.tensor(ids)).double(), dim=-1)
        rows = [(i - 1, r) for i, r in enumerate(res["prompt_logprobs"]) if r is not None]
        rows += [(len(res["prompt_token_ids"]) + s - 1, r) for s, r in enumerate(res["logprobs"])]
        for pos, row in rows:
            gaps.append(max(abs(lp - ref[pos, int(t)].item()) for t, lp in row.items()))
            agree += int(max(row, key=row.get)) == int(ref[pos].argmax())
    return torch.tensor(gaps), agree / len(gaps)


class ServerProcess:
    """A real server process on a free loopback port, stopped with SIGTERM (then SIGKILL)."""

    def __init__(self, cmd: list[str], env: dict[str, str], port: int, health_path: str, log: Path):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        self._health = health_path
        self._log_file = open(log, "wb")  # noqa: SIM115 -- open for the server's lifetime, closed in stop()
        self.proc = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=self._log_file, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_ready(self, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                if httpx.get(self.url + self._health, timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"server not ready after {timeout}s:\n{self.tail()}")

    def tail(self, n: int = 6000) -> str:
        self._log_file.flush()
        return self.log.read_bytes()[-n:].decode(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log_file.close()


def start_vllm_server(
    model: Path,
    log: Path,
    *,
    served_name: str = "antangelmed",
    extra_args: list[str] = (),
    env: dict[str, str] | None = None,
) -> ServerProcess:
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model),
        "--served-model-name",
        served_name,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--max-model-len",
        "2048",
        "--enforce-eager",
        *extra_args,
    ]
    server = ServerProcess(cmd, engine_env(**(env or {})), port, "/health", log)
    server.model = served_name
    server.wait_ready()
    return server
