"""`scripts/fleet.sh` end to end with two tiny CPU engines: engines -> vllm-router (cache-aware) -> gateway.

What each engine did is read from vLLM's own metrics (`vllm:request_success_total`,
`vllm:prefix_cache_hits_total`), so requests are attributed to engines without trusting the router:
- new conversations arriving together are spread over both engines;
- every later turn of a conversation goes to the engine that holds its history, and hits its cache;
- tenants are isolated: the same long prompt from another tenant, on the very engine that caches it for the
  first, gets no prefix-cache hit (a client-sent `cache_salt` changes nothing); two keys of one tenant share;
- an engine killed mid-run costs no request that starts after its death, and serves again once back;
- Ctrl-C (SIGINT to the script) stops every process it started.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
import psutil
import pytest

from tests.support.procs import REPO, free_port, free_port_block, metric

pytestmark = pytest.mark.vllm

REPLICAS = 2
SYSTEM = (
    "You are a careful clinical assistant for a hospital ward. Answer briefly and flag emergencies. " * 10
)
KEY_LINE = re.compile(r"API key \(shown once\): (sk-angel-[A-Za-z0-9_-]+)")


@dataclass
class Fleet:
    proc: subprocess.Popen
    runtime: Path
    gateway: str
    router: str
    engines: list[str]
    key: str
    db_url: str
    router_metrics: str
    output: list[str] = field(default_factory=list)

    def engine_pid(self, i: int) -> int:
        return int((self.runtime / "fleet" / f"engine-{i + 1}.pid").read_text())

    def counts(self, name: str = "vllm:request_success_total") -> list[float]:
        return [metric(url, name) for url in self.engines]

    def new_key(self, name: str, *extra: str) -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANGEL_")}
        env["ANGEL_DATABASE_URL"] = self.db_url
        out = subprocess.run(
            [sys.executable, "-m", "server", "keys", "create", "--name", name, "--json", *extra],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return orjson.loads(out.stdout)["key"]


def _read_lines(proc: subprocess.Popen, into: list[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        into.append(line)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(scope="module")
def fleet(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    runtime = tmp_path_factory.mktemp("fleet")
    base, router, router_metrics, gateway = free_port_block(REPLICAS), free_port(), free_port(), free_port()
    db_url = f"sqlite:///{runtime}/gateway.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANGEL_")}
    env.update(
        REPLICAS=str(REPLICAS),
        RUNTIME=str(runtime),
        MODEL_DIR=str(tiny_checkpoint),
        ENGINE_BASE_PORT=str(base),
        ROUTER_PORT=str(router),
        ROUTER_METRICS_PORT=str(router_metrics),
        GATEWAY_PORT=str(gateway),
        ANGEL_DATABASE_URL=db_url,
        ENGINE_RESTART_DELAY="1",
    )
    proc = subprocess.Popen(
        ["bash", str(REPO / "scripts" / "fleet.sh")],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # so that teardown can always reach whatever is left
        # Ctrl-C as a user's terminal sends it: a shell that starts with SIGINT ignored (inherited from
        # whatever ran this suite) can never trap it, and fleet.sh would not stop.
        preexec_fn=_default_sigint,
    )
    lines: list[str] = []
    threading.Thread(target=_read_lines, args=(proc, lines), daemon=True).start()
    deadline = time.monotonic() + 420
    key = None
    while key is None and time.monotonic() < deadline and proc.poll() is None:
        key = next((m.group(1) for m in map(KEY_LINE.search, lines) if m), None)
        time.sleep(0.5)
    if key is None:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("fleet.sh printed no key:\n" + "".join(lines[-40:]) + _logs(runtime))
    f = Fleet(
        proc,
        runtime,
        f"http://127.0.0.1:{gateway}",
        f"http://127.0.0.1:{router}",
        [f"http://127.0.0.1:{base + i}" for i in range(1, REPLICAS + 1)],
        key,
        db_url,
        f"http://127.0.0.1:{router_metrics}",
        lines,
    )
    yield f
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(90)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _logs(runtime: Path) -> str:
    return "".join(
        f"\n--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in (runtime / "fleet").glob("*.log")
    )


def _chat(f: Fleet, key: str, messages: list[dict], max_tokens: int = 48, **extra: object) -> httpx.Response:
    body = {"model": "antangelmed", "messages": messages, "max_tokens": max_tokens, "temperature": 0, **extra}
    return httpx.post(
        f.gateway + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=120
    )


def _served_by(f: Fleet, key: str, messages: list[dict], **extra: object) -> tuple[int, str]:
    """Send one chat (nothing else in flight) and return (the engine that served it, the answer)."""
    before = f.counts()
    r = _chat(f, key, messages, **extra)
    assert r.status_code == 200, r.text
    after = f.counts()
    served = [i for i, (a, b) in enumerate(zip(before, after)) if b > a]
    assert len(served) == 1, (before, after)
    return served[0], r.json()["choices"][0]["message"]["content"]


def _conversation(n: int) -> list[dict]:
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"Patient {n} ({uuid.uuid4().hex}): fever for three days, what next?"},
    ]


async def _start_together(
    f: Fleet, conversations: list[list[dict]], keys: list[str] | None = None
) -> list[str]:
    """The first turn of every conversation at once (conversation i with keys[i], default the fleet's key);
    returns the answers."""
    async with httpx.AsyncClient(timeout=180) as c:

        async def one(key: str, messages: list[dict]) -> str:
            body = {"model": "antangelmed", "messages": messages, "max_tokens": 96, "ignore_eos": True}
            r = await c.post(
                f.gateway + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
            )
            assert r.status_code == 200, r.text
            return r.json()["choices"][0]["message"]["content"]

        keys = keys or [f.key] * len(conversations)
        return await asyncio.gather(*(one(k, m) for k, m in zip(keys, conversations, strict=True)))


def test_fleet_prints_a_key_and_is_ready_through_the_router(fleet: Fleet) -> None:
    ready = httpx.get(fleet.gateway + "/readyz", timeout=30)
    assert ready.status_code == 200
    assert ready.json()["detail"] == f"ok (router: {REPLICAS} of {REPLICAS} engines healthy)"
    workers = httpx.get(fleet.router + "/workers", timeout=10).json()["workers"]
    assert sorted(w["url"] for w in workers) == fleet.engines
    assert _chat(fleet, fleet.key, [{"role": "user", "content": "ping"}], max_tokens=4).status_code == 200


def test_new_conversations_spread_and_later_turns_stay_with_their_cache(fleet: Fleet) -> None:
    # Six wards, each its own tenant: their prompts are salted apart, so every new conversation is a cache
    # miss for the router, which sends a miss where the least is cached: new conversations spread. (One
    # tenant's new conversations share its system prompt and stay together on the engine that holds it
    # until that engine is 4 requests busier: that is the policy, not a spread to test.)
    keys = [fleet.new_key(f"ward-{n}") for n in range(6)]
    conversations = [_conversation(n) for n in range(6)]
    before = fleet.counts()
    answers = asyncio.run(_start_together(fleet, conversations, keys))
    spread = [b - a for a, b in zip(before, fleet.counts())]
    assert sum(spread) == len(conversations) and min(spread) >= 1, spread  # both engines took new ones

    engines_of: list[set[int]] = []
    for key, conv, answer in zip(keys, conversations, answers, strict=True):
        conv.append({"role": "assistant", "content": answer})
        served = set()
        for turn in range(2):
            conv.append({"role": "user", "content": f"Follow-up {turn}: and if the fever persists?"})
            hits = fleet.counts("vllm:prefix_cache_hits_total")
            engine, reply = _served_by(fleet, key, conv)
            gained = fleet.counts("vllm:prefix_cache_hits_total")[engine] - hits[engine]
            assert gained >= 128, (engine, gained)  # the history came from this engine's cache
            served.add(engine)
            conv.append({"role": "assistant", "content": reply})
        engines_of.append(served)
    assert all(len(s) == 1 for s in engines_of), engines_of  # each conversation kept its engine
    assert set().union(*engines_of) == set(range(REPLICAS)), engines_of  # and not all on one engine


def test_tenants_never_share_cached_prefixes(fleet: Fleet) -> None:
    clinic_a = fleet.new_key("clinic-a-1", "--tenant", "clinic-a")
    clinic_a2 = fleet.new_key("clinic-a-2", "--tenant", "clinic-a")
    clinic_b = fleet.new_key("clinic-b-1", "--tenant", "clinic-b")
    record = " ".join(
        f"Visit {i}: blood pressure 150/95, creatinine 1.4, metformin 500 mg." for i in range(40)
    )
    prompt = [{"role": "user", "content": f"{uuid.uuid4().hex} Summarise this record: {record}"}]

    def hits_for(key: str, **extra: object) -> tuple[int, float]:
        before = fleet.counts("vllm:prefix_cache_hits_total")
        engine, _ = _served_by(fleet, key, prompt, **extra)
        return engine, fleet.counts("vllm:prefix_cache_hits_total")[engine] - before[engine]

    home, cold = hits_for(clinic_a)
    assert cold == 0
    engine, warm = hits_for(clinic_a)
    assert engine == home and warm >= 3 * 128  # the same tenant reuses the whole prompt
    # Another tenant, routed to the very engine that holds the prompt: not one cached block.
    assert hits_for(clinic_b) == (home, 0)
    # A salt chosen by the client is replaced by the tenant's: B hits its own copy, as without one (with the
    # client's salt it would have hit nothing, and with A's salt it would read A's cache).
    assert hits_for(clinic_b, cache_salt="clinic-a") == (home, pytest.approx(warm, abs=128))
    # Two keys of one tenant share its cache.
    assert hits_for(clinic_a2) == (home, pytest.approx(warm, abs=128))


def test_a_dead_engine_costs_no_later_request_and_serves_again_once_back(fleet: Fleet) -> None:
    victim = 1
    conversation = _conversation(99)
    engine, answer = _served_by(fleet, fleet.key, conversation)
    api_server = psutil.Process(fleet.engine_pid(victim))
    for p in [*api_server.children(recursive=True), api_server]:
        p.kill()  # a crash, not a drain
    died = time.monotonic()
    with pytest.raises(httpx.HTTPError):
        httpx.get(fleet.engines[victim] + "/health", timeout=2)

    # Requests that start after the death: new conversations and continuing ones (some of whose history
    # lived on the dead engine) are all answered.
    conversation += [{"role": "assistant", "content": answer}, {"role": "user", "content": "And then?"}]
    statuses = [_chat(fleet, fleet.key, conversation).status_code]
    statuses += [_chat(fleet, fleet.key, _conversation(100 + n)).status_code for n in range(8)]
    assert statuses == [200] * len(statuses), statuses

    # fleet.sh starts it again; the router takes it back once its health check passes.
    deadline = died + 240
    while time.monotonic() < deadline:
        workers = httpx.get(fleet.router + "/workers", timeout=10).json()["workers"]
        if all(w["is_healthy"] for w in workers) and _healthy(fleet.engines[victim]):
            break
        time.sleep(1)
    else:
        pytest.fail("the engine did not come back:" + _logs(fleet.runtime))
    served_before = fleet.counts()[victim]  # its counters restarted with it
    asyncio.run(_start_together(fleet, [_conversation(200 + n) for n in range(10)]))
    assert fleet.counts()[victim] > served_before


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url + "/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_router_metrics_the_dashboard_and_alerts_read_are_live(fleet: Fleet) -> None:
    """After the runs above (hits, misses, a failover), the router exposes what the dashboard and the
    alerts read (deploy/kustomize/components/monitoring, components/router). Counters it creates on their
    first increment (retries, exhausted retries) may be absent: whether the failover needed a retry depends
    on timing. Every name the dashboard and alerts use is checked against the router binary in
    tests/deploy/test_deploy_observability.py."""
    text = httpx.get(fleet.router_metrics + "/metrics", timeout=10).text
    for name in (
        "vllm_router_worker_health",
        "vllm_router_processed_requests_total",
        "vllm_router_running_requests",
        "vllm_router_cb_state",
        "vllm_router_generate_duration_seconds_bucket",
    ):
        assert re.search(rf"^{name}[{{ ]", text, re.M), name
    outcomes = set(re.findall(r'prefix_routing_decisions_total\{[^}]*outcome="([a-z_]+)"', text))
    # Routed on rendered tokens and salts (without --enable-scale-out on the engines: only missing_tokens).
    assert {"prefix_hit", "prefix_miss"} <= outcomes, outcomes


def test_ctrl_c_stops_everything(fleet: Fleet) -> None:
    pids = [fleet.engine_pid(i) for i in range(REPLICAS)]
    family = [p for pid in pids for p in [psutil.Process(pid), *psutil.Process(pid).children(True)]]
    fleet.proc.send_signal(signal.SIGINT)
    assert fleet.proc.wait(120) == 130  # what a shell reports for a script ended by Ctrl-C
    gone, alive = psutil.wait_procs(family, timeout=30)
    assert not alive, alive
    for url in (fleet.gateway, fleet.router, *fleet.engines):
        with pytest.raises(httpx.HTTPError):
            httpx.get(url + "/health", timeout=2)
    assert "fleet: stopped" in "".join(fleet.output)
