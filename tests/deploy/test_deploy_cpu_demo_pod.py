"""The cpu-demo overlay's pods, run for real without a container runtime.

No container engine exists on the development machines, so the pods' own commands, arguments,
environment and probes are taken from the rendered manifests and run here as processes, with
container paths mapped to a temporary directory and every address moved to 127.0.0.1 on free
ports. That proves what the images would run: the init container generates a checkpoint (and is
a no-op the second time), the engine starts inside the startup window the manifest grants, its
readiness probe (a real generation) passes, the gateway becomes ready in front of it, a key made
with the README's command works end to end, and the metrics that KEDA and the alerts use exist.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.deploy.deploy_helpers import REPO, Obj, one, render

pytestmark = pytest.mark.vllm


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Pod:
    """Maps a container's view (paths, ports, hosts) onto this machine."""

    def __init__(self, root: Path, engine_port: int, gateway_port: int) -> None:
        self.engine_port, self.gateway_port = engine_port, gateway_port
        self.paths = {
            "/opt/antangelmed/probe.py": str(REPO / "deploy" / "docker" / "probe.py"),
            "/etc/antangelmed": str(root / "etc"),
            "/models": str(root / "models"),
            "/data": str(root / "data"),
            "/home/vllm": str(root / "home"),
            "/tmp": str(root / "tmp"),
        }
        for p in list(self.paths.values())[1:]:
            Path(p).mkdir(parents=True, exist_ok=True)

    def map(self, text: str) -> str:
        """One pass over the text, so a mapped path is never mapped again."""
        if text.startswith("sqlite:///"):  # sqlite:////data/x.db: an absolute path after the scheme
            return "sqlite:///" + self.map(text.removeprefix("sqlite:///"))
        text = text.replace("http://antangelmed-engine:8000", f"http://127.0.0.1:{self.engine_port}")
        text = text.replace("http://127.0.0.1:8000", f"http://127.0.0.1:{self.engine_port}")
        text = text.replace("--port=8000", f"--port={self.engine_port}").replace("0.0.0.0", "127.0.0.1")
        paths = "|".join(re.escape(p) for p in sorted(self.paths, key=len, reverse=True))
        text = re.sub(rf"(?<![\w/.-])({paths})(?=/|\s|$)", lambda m: self.paths[m.group(1)], text)
        # The container's `python` (also inside `sh -c` scripts) is this virtualenv's interpreter.
        return re.sub(r"(?<![\w/.-])python3?(?=\s|$)", sys.executable, text)

    def argv(self, command: list[str]) -> list[str]:
        return [self.map(a) for a in command]

    def env(self, container: Obj) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ANGEL_", "VLLM_"))}
        for e in container.get("env", []):
            if "value" in e:  # valueFrom: optional Secrets, absent in the demo
                env[e["name"]] = self.map(e["value"])
        if container["name"] == "gateway":
            env["ANGEL_PORT"] = str(self.gateway_port)
        env["HOME"] = self.paths["/home/vllm"]
        return env


def _start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as fh:
        return subprocess.Popen(
            argv, env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=log.parent, start_new_session=True
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _probe_until_ok(
    pod: Pod, container: Obj, probe_name: str, proc: subprocess.Popen[bytes], log: Path
) -> float:
    """Run an httpGet/exec probe as the kubelet would, within the window the manifest allows."""
    probe = container[probe_name]
    window = probe.get("periodSeconds", 10) * probe.get("failureThreshold", 3)
    start = time.monotonic()
    while time.monotonic() - start < window:
        if proc.poll() is not None:
            pytest.fail(f"{container['name']} exited ({proc.returncode}):\n{log.read_text()[-4000:]}")
        if "httpGet" in probe:
            port = pod.engine_port if container["name"] == "engine" else pod.gateway_port
            try:
                ok = (
                    httpx.get(f"http://127.0.0.1:{port}{probe['httpGet']['path']}", timeout=5).status_code
                    < 400
                )
            except httpx.HTTPError:
                ok = False
        else:
            ok = (
                subprocess.run(
                    pod.argv(probe["exec"]["command"]),
                    env=pod.env(container),
                    capture_output=True,
                    timeout=probe.get("timeoutSeconds", 1) + 5,
                    check=False,
                ).returncode
                == 0
            )
        if ok:
            return time.monotonic() - start
        time.sleep(1)
    pytest.fail(f"{container['name']} {probe_name} not passing within {window}s:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    objs = render("cpu-demo")
    root = tmp_path_factory.mktemp("cpu-demo-pod")
    pod = Pod(root, _free_port(), _free_port())
    engine_spec = one(objs, "Deployment", "antangelmed-engine")["spec"]["template"]["spec"]
    gateway_spec = one(objs, "Deployment", "antangelmed-gateway")["spec"]["template"]["spec"]
    (init,) = engine_spec["initContainers"]
    engine = engine_spec["containers"][0]
    gateway = gateway_spec["containers"][0]
    # The ConfigMap volume, as the kubelet would project it.
    policy_cm = next(v["configMap"]["name"] for v in gateway_spec["volumes"] if "configMap" in v)
    for key, text in one(objs, "ConfigMap", policy_cm)["data"].items():
        (root / "etc" / key).write_text(text)

    # Init container, twice: the second run must find the checkpoint and do nothing.
    init_runs = []
    for _ in range(2):
        t0 = time.monotonic()
        proc = subprocess.run(
            pod.argv(init["command"]),
            env=pod.env(init),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr[-4000:]
        init_runs.append((time.monotonic() - t0, (root / "models" / "tiny" / "config.json").stat().st_mtime))

    engine_log, gateway_log = root / "engine.log", root / "gateway.log"
    engine_proc = _start(pod.argv(engine["command"] + engine["args"]), pod.env(engine), engine_log)
    gateway_proc = None
    try:
        started = _probe_until_ok(pod, engine, "startupProbe", engine_proc, engine_log)
        _probe_until_ok(pod, engine, "readinessProbe", engine_proc, engine_log)
        gateway_proc = _start(pod.argv(gateway["command"]), pod.env(gateway), gateway_log)
        _probe_until_ok(pod, gateway, "startupProbe", gateway_proc, gateway_log)
        _probe_until_ok(pod, gateway, "readinessProbe", gateway_proc, gateway_log)
        yield {"pod": pod, "gateway": gateway, "init_runs": init_runs, "engine_started_s": started}
    finally:
        for p in (gateway_proc, engine_proc):
            if p is not None:
                _stop(p)


def test_init_container_generates_once(demo: dict) -> None:
    (_, first_mtime), (_, second_mtime) = demo["init_runs"]
    assert first_mtime == second_mtime  # the guard kept the existing checkpoint
    assert (Path(demo["pod"].paths["/models"]) / "tiny" / "tokenizer.json").exists()


def test_readme_key_flow_through_gateway(demo: dict) -> None:
    pod, gateway = demo["pod"], demo["gateway"]
    # deploy/README.md, cpu-demo step 4: `kubectl exec deploy/antangelmed-gateway -- python -m server keys
    # create`
    created = subprocess.run(
        [sys.executable, "-m", "server", "keys", "create", "--name", "demo"],
        env=pod.env(gateway),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    url = f"http://127.0.0.1:{pod.gateway_port}/v1/chat/completions"
    body = {
        "model": "antangelmed",
        "messages": [{"role": "user", "content": "What is hypertension?"}],
        "max_tokens": 8,
    }
    resp = httpx.post(url, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=120)
    assert resp.status_code == 200, resp.text
    assert resp.json()["choices"][0]["message"]["content"] is not None
    refused = httpx.post(
        url, json=body, headers={"Authorization": "Bearer wrong-key-0123456789abcdef"}, timeout=30
    )
    assert refused.status_code == 401


def _exposes(exposition: str, name: str) -> bool:
    """A metric is exposed when it has a sample line or a TYPE line (counters and histograms are
    declared under their base name and sampled with suffixes)."""
    base = re.sub(r"_(total|bucket|sum|count)$", "", name)
    lines = exposition.splitlines()
    declared = any(f"# TYPE {n} " in exposition for n in (name, base, f"{base}_total"))
    return declared or any(ln.startswith((f"{name} ", f"{name}{{")) for ln in lines)


def test_metrics_used_by_keda_alerts_and_dashboard_are_live(demo: dict) -> None:
    pod = demo["pod"]
    engine_metrics = httpx.get(f"http://127.0.0.1:{pod.engine_port}/metrics", timeout=10).text
    for name in (
        "vllm:num_requests_waiting",
        "vllm:num_requests_running",
        "vllm:kv_cache_usage_perc",
        "vllm:time_to_first_token_seconds_bucket",
        "vllm:generation_tokens_total",
    ):
        assert _exposes(engine_metrics, name), name
    gateway_metrics = httpx.get(f"http://127.0.0.1:{pod.gateway_port}/metrics", timeout=10).text
    for name in (
        "gateway_requests_total",
        "gateway_inflight_requests",
        "gateway_request_duration_seconds_bucket",
        "gateway_time_to_first_token_seconds_bucket",
        "gateway_safety_events_total",
    ):
        assert _exposes(gateway_metrics, name), name
    assert not _exposes(gateway_metrics, "gateway_made_up_total")


def test_engine_started_inside_its_startup_window(demo: dict) -> None:
    engine = one(render("cpu-demo"), "Deployment", "antangelmed-engine")["spec"]["template"]["spec"][
        "containers"
    ][0]
    window = engine["startupProbe"]["periodSeconds"] * engine["startupProbe"]["failureThreshold"]
    assert demo["engine_started_s"] < window
