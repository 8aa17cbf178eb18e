"""deploy/docker/probe.py, the images' health/readiness probe, run as the kubelet runs it (a process)
against a real HTTP server on 127.0.0.1 that behaves like a healthy, broken or hung engine."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.deploy.deploy_helpers import REPO

PROBE = REPO / "deploy" / "docker" / "probe.py"


@dataclass
class Behaviour:
    health_status: int = 200
    completion_status: int = 200
    completion_body: dict = field(default_factory=lambda: {"choices": [{"text": "!"}]})
    completion_delay: float = 0.0
    api_key: str | None = None
    seen: list[tuple[str, str, bytes]] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    behaviour: Behaviour

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.behaviour.seen.append(("GET", self.path, b""))
        status = self.behaviour.health_status if self.path in ("/health", "/healthz") else 404
        self._reply(status, b"{}")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.behaviour.seen.append(("POST", self.path, body))
        time.sleep(self.behaviour.completion_delay)
        b = self.behaviour
        if b.api_key is not None and self.headers.get("Authorization") != f"Bearer {b.api_key}":
            self._reply(401, b'{"error": "Unauthorized"}')
            return
        self._reply(b.completion_status, json.dumps(b.completion_body).encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def engine() -> Iterator[tuple[str, Behaviour]]:
    behaviour = Behaviour()
    handler = type("Handler", (_Handler,), {"behaviour": behaviour})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", behaviour
    finally:
        server.shutdown()
        server.server_close()


def run_probe(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "VLLM_API_KEY"} | (env or {})
    return subprocess.run(
        [sys.executable, "-B", str(PROBE), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=environ,
    )


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_get_healthy(engine: tuple[str, Behaviour]) -> None:
    url, _ = engine
    assert run_probe(f"{url}/healthz").returncode == 0


def test_get_unhealthy_status(engine: tuple[str, Behaviour]) -> None:
    url, behaviour = engine
    behaviour.health_status = 503
    proc = run_probe(f"{url}/health")
    assert proc.returncode == 1 and "503" in proc.stderr


def test_nothing_listening() -> None:
    proc = run_probe(f"http://127.0.0.1:{_closed_port()}/health", "--timeout=2")
    assert proc.returncode == 1 and "failed" in proc.stderr


def test_generate_ready(engine: tuple[str, Behaviour]) -> None:
    url, behaviour = engine
    assert run_probe("--generate", url, "--model=antangelmed").returncode == 0
    (get, post) = behaviour.seen
    assert get[:2] == ("GET", "/health") and post[:2] == ("POST", "/v1/completions")
    body = json.loads(post[2])
    assert body["model"] == "antangelmed" and body["max_tokens"] == 1


def test_generate_not_ready_when_health_fails(engine: tuple[str, Behaviour]) -> None:
    url, behaviour = engine
    behaviour.health_status = 500
    assert run_probe("--generate", url).returncode == 1
    assert [s[0] for s in behaviour.seen] == ["GET"]  # no generation attempted on a dead engine


@pytest.mark.parametrize(
    "status,body",
    [
        (500, {"error": {"message": "boom"}}),
        (200, {"choices": []}),
        (404, {"error": {"message": "model not found"}}),
    ],
)
def test_generate_not_ready_when_generation_fails(
    engine: tuple[str, Behaviour], status: int, body: dict
) -> None:
    url, behaviour = engine
    behaviour.completion_status, behaviour.completion_body = status, body
    proc = run_probe("--generate", url)
    assert proc.returncode == 1 and proc.stderr.strip()


def test_generate_hung_engine_times_out(engine: tuple[str, Behaviour]) -> None:
    url, behaviour = engine
    behaviour.completion_delay = 3.0
    start = time.monotonic()
    proc = run_probe("--generate", url, "--timeout=0.5")
    assert proc.returncode == 1
    assert time.monotonic() - start < 2.5  # the probe gave up, it did not wait for the answer


def test_generate_sends_the_engine_api_key(engine: tuple[str, Behaviour]) -> None:
    url, behaviour = engine
    behaviour.api_key = "k" * 32
    proc = run_probe("--generate", url)
    assert proc.returncode == 1 and "401" in proc.stderr  # without the key the engine refuses
    assert run_probe("--generate", url, env={"VLLM_API_KEY": "k" * 32}).returncode == 0
