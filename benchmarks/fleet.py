"""Fleet benchmark: 3 CPU engines of the `small` preset, through the gateway, with vLLM's router in front.

    .venv/bin/python benchmarks/fleet.py [--users 6] [--conversations 2] [--turns 3] [--out FILE.json]

One run starts `scripts/fleet.sh` (REPLICAS=3; its router is the kv_aware one, so the engines publish KV
events) plus a cache_aware and a round_robin router on the same engines, and a gateway per upstream. Then:

- a multi-turn chat workload per row: `--users` concurrent users, each a tenant of its own (its own key, so
  its own cache_salt), each holding `--conversations` conversations one after the other, each of `--turns`
  turns that resend the growing history after a long system prompt shared by all (streamed, 24-token answers).
  Rows: cache_aware, kv_aware, round_robin (what a plain Service gives) and one engine alone (the gateway
  straight to engine 1). Every row has new tenants, so no row reuses another's cached prefixes. Per row:
  prefix-cache hit rate from the engines' `vllm:prefix_cache_hits_total / queries_total`, time to the first
  content token p50/p99, output tokens/s over the row, errors;
- failover: the cache_aware workload again, one engine killed (SIGKILL, its workers too) mid-run; errors of
  the requests that started after its death, how long fleet.sh took to bring it back, whether it serves again;
- the router hop: p50 of a 1-token chat sent straight to engine 1 and through a router whose only engine it
  is (cache_aware, and round_robin), interleaved, at concurrency 1, without the gateway.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from server.db import Database
from server.keys import KeyStore
from tests.support.procs import Proc, free_port, free_port_block, start_gateway, start_standin, wait_http

MODEL = "antangelmed"
REPLICAS = 3
ROUTER = REPO / ".venv" / "bin" / "vllm-router"
# The router flags scripts/fleet.sh gives its router (the extra routers here are set up the same way).
ROUTER_FLAGS = [
    "--health-check-interval-secs=5",
    "--health-failure-threshold=2",
    "--health-success-threshold=1",
    "--cb-failure-threshold=3",
    "--cb-timeout-duration-secs=10",
    "--cache-threshold=0.5",
    "--balance-abs-threshold=4",
    "--balance-rel-threshold=1.5",
    "--request-id-headers",
    "x-request-id",
]
SYSTEM = (
    "You are AntAngelMed, a careful bilingual clinical assistant for the wards of a teaching hospital. "
    "Answer concisely, cite the guideline you rely on, state uncertainty, flag anything that needs a "
    "physician today, and never invent laboratory values or doses. "
) * 6
# A pasted record per turn (~600 tokens): what makes a conversation's history long.
RECORD = (
    "Record {n}-{t}: {age}-year-old, admitted for community-acquired pneumonia; history of hypertension, "
    "type 2 diabetes and stage 3 chronic kidney disease. Medications: metformin 1000 mg twice daily, "
    "lisinopril 20 mg daily, atorvastatin 40 mg nightly, amoxicillin-clavulanate since day 1. Labs day {t}: "
    "creatinine {cr} mg/dL, eGFR {egfr}, potassium 4.{t} mmol/L, HbA1c 7.9 %, CRP falling. "
    "Nursing notes: afebrile overnight, oxygen saturation 94 % on 2 L, ambulating with assistance, "
    "appetite improving, no new rash, bowel movements regular, pain 2 of 10 at the IV site. "
    "Imaging: chest radiograph with a right lower lobe consolidation, smaller than on admission, no "
    "effusion. Plan discussed with the family: switch to oral antibiotics when afebrile for 48 hours, "
    "review metformin against the renal function, repeat the electrolytes tomorrow morning. "
) * 2
ANSWER_TOKENS = 24


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ------------------------------------------------------------------------------------------------
# Processes


class Fleet:
    """scripts/fleet.sh with REPLICAS engines of MODEL_DIR; kv_aware router (engines publish KV events)."""

    def __init__(self, model_dir: Path, runtime: Path) -> None:
        self.runtime = runtime
        base = free_port_block(REPLICAS + 1)
        self.engine_ports = [base + i for i in range(1, REPLICAS + 1)]
        self.router_port, self.gateway_port, self.metrics_port = free_port(), free_port(), free_port()
        self.db = runtime / "gateway.db"
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANGEL_")}
        env.update(
            REPLICAS=str(REPLICAS),
            RUNTIME=str(runtime),
            MODEL_DIR=str(model_dir),
            ENGINE_BASE_PORT=str(base),
            ROUTER_PORT=str(self.router_port),
            ROUTER_METRICS_PORT=str(self.metrics_port),
            GATEWAY_PORT=str(self.gateway_port),
            ROUTER_POLICY="kv_aware",
            KV_EVENTS_BASE_PORT=str(free_port_block(REPLICAS + 1)),
            ENGINE_ARGS="--max-model-len 4096 --enforce-eager",
            ANGEL_DATABASE_URL=f"sqlite:///{self.db}",
            ANGEL_LOG_LEVEL="warning",
        )
        self.log = (runtime / "fleet.out").open("w")
        self.proc = subprocess.Popen(
            ["bash", str(REPO / "scripts" / "fleet.sh")],
            cwd=REPO,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # stopped with SIGINT, which a shell that starts with it ignored cannot trap
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        deadline = time.monotonic() + 900
        while "API key (shown once)" not in (runtime / "fleet.out").read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("fleet.sh did not start:\n" + (runtime / "fleet.out").read_text()[-3000:])
            time.sleep(1)

    @property
    def engines(self) -> list[str]:
        return [f"http://127.0.0.1:{p}" for p in self.engine_ports]

    def engine_pid(self, i: int) -> int:
        return int((self.runtime / "fleet" / f"engine-{i + 1}.pid").read_text())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(120)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


def start_router(policy: str, workers: list[str], log: Path) -> Proc:
    """A vllm-router on free ports; `.metrics` is its Prometheus endpoint."""
    port, metrics = free_port(), free_port()
    args = [str(ROUTER), "--host", "127.0.0.1", "--port", str(port), "--worker-urls", *workers]
    args += [
        "--policy",
        policy,
        "--prometheus-host",
        "127.0.0.1",
        "--prometheus-port",
        str(metrics),
        *ROUTER_FLAGS,
    ]
    proc = subprocess.Popen(args, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/liveness", proc, timeout=60)
    router = Proc(proc, url, log)
    router.metrics = f"http://127.0.0.1:{metrics}"  # type: ignore[attr-defined]
    return router


def routing_decisions(metrics_url: str) -> dict[str, float]:
    """A router's own count of its routing decisions by outcome (prefix_hit, load_imbalance, ...)."""
    text = httpx.get(metrics_url + "/metrics", timeout=10).text
    out: dict[str, float] = {}
    for m in re.finditer(
        r'^vllm_router_prefix_routing_decisions_total\{[^}]*outcome="([a-z_]+)"[^}]*\} (\S+)', text, re.M
    ):
        out[m.group(1)] = out.get(m.group(1), 0) + float(m.group(2))
    return out


def new_keys(db: Path, row: str, n: int) -> list[str]:
    store = KeyStore(Database(f"sqlite:///{db}"))
    return [store.create(f"bench-{row}-{i}-{uuid.uuid4().hex[:6]}")[0] for i in range(n)]


def engine_counters(engines: list[str]) -> dict[str, list[float]]:
    names = ("vllm:prefix_cache_hits_total", "vllm:prefix_cache_queries_total", "vllm:request_success_total")
    out: dict[str, list[float]] = {n: [] for n in names}
    for url in engines:
        try:
            text = httpx.get(url + "/metrics", timeout=10).text
        except httpx.HTTPError:
            text = ""
        for n in names:
            out[n].append(
                sum(
                    float(ln.rsplit(" ", 1)[1])
                    for ln in text.splitlines()
                    if ln.startswith(n + "{") or ln.startswith(n + " ")
                )
            )
    return out


# ------------------------------------------------------------------------------------------------
# The workload


class Recorder:
    def __init__(self) -> None:
        self.ttft: list[float] = []
        self.ttft_later: list[float] = []  # turns after the first: what a cached history can shorten
        self.tokens = 0
        self.errors: list[str] = []
        self.started: list[tuple[float, bool]] = []  # (start time, ok) per request


async def chat(
    client: httpx.AsyncClient, url: str, key: str, messages: list[dict], rec: Recorder, later: bool = False
) -> str:
    body = {
        "model": MODEL,
        "messages": messages,
        "max_tokens": ANSWER_TOKENS,
        "ignore_eos": True,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    t0 = time.perf_counter()
    start = time.monotonic()
    text, first, ok = [], None, False
    try:
        async with client.stream(
            "POST", url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
        ) as r:
            if r.status_code != 200:
                rec.errors.append(f"HTTP {r.status_code}: {(await r.aread())[:200]!r}")
            else:
                async for line in r.aiter_lines():
                    if not line.startswith("data: ") or line == "data: [DONE]":
                        continue
                    obj = json.loads(line[6:])
                    if "error" in obj:
                        rec.errors.append(f"stream error: {obj['error']}")
                        break
                    for ch in obj.get("choices") or []:
                        piece = (ch.get("delta") or {}).get("content")
                        if piece:
                            if first is None:
                                first = time.perf_counter() - t0
                            text.append(piece)
                    if obj.get("usage") and not obj.get("choices"):
                        rec.tokens += obj["usage"].get("completion_tokens") or 0
                        ok = True
    except httpx.HTTPError as exc:
        rec.errors.append(f"{type(exc).__name__}: {exc}")
    if first is not None:
        rec.ttft.append(first)
        if later:
            rec.ttft_later.append(first)
    rec.started.append((start, ok and first is not None))
    return "".join(text)


async def user(
    client: httpx.AsyncClient, url: str, key: str, u: int, args: argparse.Namespace, rec: Recorder
) -> None:
    for c in range(args.conversations):
        messages = [{"role": "system", "content": SYSTEM}]
        for t in range(args.turns):
            n = f"{u}.{c}.{uuid.uuid4().hex[:6]}"
            record = RECORD.format(n=n, t=t + 1, age=40 + u * 7 + c, cr=1.1 + t / 10, egfr=58 - t)
            messages.append({"role": "user", "content": record + "What should the team watch today?"})
            answer = await chat(client, url, key, messages, rec, later=t > 0)
            messages.append({"role": "assistant", "content": answer or "(no answer)"})


async def workload(url: str, keys: list[str], args: argparse.Namespace, rec: Recorder) -> float:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(user(client, url, k, u, args, rec) for u, k in enumerate(keys)))
        return time.perf_counter() - t0


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def run_row(name: str, gateway: str, fleet: Fleet, args: argparse.Namespace) -> dict:
    keys = new_keys(fleet.db, name, args.users)
    before = engine_counters(fleet.engines)
    rec = Recorder()
    wall = asyncio.run(workload(gateway, keys, args, rec))
    after = engine_counters(fleet.engines)
    delta = {k: [a - b for a, b in zip(after[k], before[k])] for k in after}
    hits, queries = sum(delta["vllm:prefix_cache_hits_total"]), sum(delta["vllm:prefix_cache_queries_total"])
    row = {
        "row": name,
        "requests": len(rec.started),
        "hit_rate": round(hits / queries, 4) if queries else None,
        "prefix_hit_tokens": hits,
        "prompt_tokens": queries,
        "ttft_p50_s": round(pct(rec.ttft, 0.5) or 0, 4),
        "ttft_p99_s": round(pct(rec.ttft, 0.99) or 0, 4),
        "later_turns_ttft_p50_s": round(pct(rec.ttft_later, 0.5) or 0, 4),
        "output_tok_s": round(rec.tokens / wall, 2),
        "wall_s": round(wall, 1),
        "errors": len(rec.errors),
        "error_samples": rec.errors[:3],
        "requests_per_engine": [int(x) for x in delta["vllm:request_success_total"]],
    }
    _log(f"{name}: {json.dumps({k: v for k, v in row.items() if k != 'error_samples'})}")
    return row


# ------------------------------------------------------------------------------------------------
# Failover


def kill_engine(fleet: Fleet, i: int) -> None:
    proc = psutil.Process(fleet.engine_pid(i))
    for p in [*proc.children(recursive=True), proc]:
        p.kill()


def failover(gateway: str, fleet: Fleet, args: argparse.Namespace) -> dict:
    victim = REPLICAS - 1
    keys = new_keys(fleet.db, "failover", args.users)
    rec = Recorder()
    small = argparse.Namespace(conversations=args.conversations, turns=args.turns)

    async def run() -> float:
        task = asyncio.create_task(workload(gateway, keys, small, rec))
        await asyncio.sleep(args.kill_after)
        kill_engine(fleet, victim)
        died = time.monotonic()
        await task
        return died

    died = asyncio.run(run())
    after_death = [ok for start, ok in rec.started if start > died]
    # fleet.sh starts the engine again; wait until it answers and the router has it back.
    back = None
    deadline = died + 600
    while time.monotonic() < deadline:
        try:
            if httpx.get(fleet.engines[victim] + "/health", timeout=2).status_code == 200:
                back = time.monotonic() - died
                break
        except httpx.HTTPError:
            pass
        time.sleep(1)
    served_before = engine_counters([fleet.engines[victim]])["vllm:request_success_total"][0] if back else 0.0
    again = 0.0
    if back is not None:
        time.sleep(8)  # the router's health check (every 5 s) takes it back
        burst = Recorder()
        asyncio.run(
            workload(
                gateway,
                new_keys(fleet.db, "failover-back", 6),
                argparse.Namespace(conversations=1, turns=1),
                burst,
            )
        )
        again = engine_counters([fleet.engines[victim]])["vllm:request_success_total"][0] - served_before
    result = {
        "killed_engine": victim + 1,
        "requests_started_after_death": len(after_death),
        "errors_after_death": sum(1 for ok in after_death if not ok),
        "errors_total": len(rec.errors),
        "error_samples": rec.errors[:3],
        "engine_back_after_s": round(back, 1) if back is not None else None,
        "requests_served_by_it_after_return": int(again),
    }
    _log(f"failover: {result}")
    return result


# ------------------------------------------------------------------------------------------------
# Router hop


def router_hop(engine: str, samples: int, log_dir: Path, label: str = "engine") -> dict:
    """p50 straight to `engine` and through a router whose only worker it is, alternating, at c=1."""
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "ping"}],
        "max_tokens": 1,
        "temperature": 0,
    }
    out = {}
    for policy in ("cache_aware", "round_robin"):
        router = start_router(policy, [engine], log_dir / f"hop-{policy}.log")
        try:
            direct, routed = [], []
            with httpx.Client(timeout=60) as c:
                for url in (engine, router.url):  # warm both paths
                    for _ in range(5):
                        c.post(url + "/v1/chat/completions", json=body)
                for i in range(samples):
                    for url, into in (
                        ((engine, direct), (router.url, routed))
                        if i % 2
                        else ((router.url, routed), (engine, direct))
                    ):
                        t = time.perf_counter()
                        c.post(url + "/v1/chat/completions", json=body).raise_for_status()
                        into.append(time.perf_counter() - t)
        finally:
            router.stop()
        out[f"{policy} ({label})"] = {
            "direct_p50_ms": round(statistics.median(direct) * 1000, 3),
            "router_p50_ms": round(statistics.median(routed) * 1000, 3),
            "hop_p50_ms": round((statistics.median(routed) - statistics.median(direct)) * 1000, 3),
        }
        _log(f"hop {policy} ({label}): {out[f'{policy} ({label})']}")
    return out


# ------------------------------------------------------------------------------------------------


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=6)
    p.add_argument("--conversations", type=int, default=2)
    p.add_argument("--turns", type=int, default=3)
    p.add_argument("--kill-after", type=float, default=8.0, help="seconds into the failover run")
    p.add_argument("--hop-samples", type=int, default=200)
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "fleet.json"))
    args = p.parse_args()

    model_dir = REPO / "runtime" / "small"
    if not (model_dir / "config.json").exists():
        subprocess.run(
            [sys.executable, "-m", "model_plugin.checkpoints", "--preset", "small", "--out", str(model_dir)],
            cwd=REPO,
            check=True,
        )
    started = time.time()
    load_before = os.getloadavg()
    runtime = Path(tempfile.mkdtemp(prefix="angel-fleet-bench-"))
    _log(f"starting scripts/fleet.sh: {REPLICAS} engines of {model_dir}, runtime {runtime}")
    fleet = Fleet(model_dir, runtime)
    procs: list[Proc] = []
    try:
        _log("fleet ready; starting the cache_aware and round_robin routers and one gateway per upstream")
        routers = {
            pol: start_router(pol, fleet.engines, runtime / f"router-{pol}.log")
            for pol in ("cache_aware", "round_robin")
        }
        procs += routers.values()
        routers_metrics = {pol: r.metrics for pol, r in routers.items()}  # type: ignore[attr-defined]
        gateways = {
            "cache_aware": start_gateway(runtime, routers["cache_aware"].url, db=fleet.db),
            "kv_aware": None,  # fleet.sh's own gateway, in front of its kv_aware router
            "round_robin": start_gateway(runtime, routers["round_robin"].url, db=fleet.db),
            "one engine": start_gateway(runtime, fleet.engines[0], db=fleet.db),
        }
        procs += [g for g in gateways.values() if g is not None]
        urls = {k: (g.url if g else f"http://127.0.0.1:{fleet.gateway_port}") for k, g in gateways.items()}
        # Warm every engine (first requests pay one-off costs), then the rows.
        for e in fleet.engines:
            warm = {"model": MODEL, "messages": [{"role": "user", "content": SYSTEM}], "max_tokens": 4}
            httpx.post(e + "/v1/chat/completions", json=warm, timeout=120).raise_for_status()
        rows = [
            run_row(name, urls[name], fleet, args)
            for name in ("cache_aware", "kv_aware", "round_robin", "one engine")
        ]
        decisions = {
            "cache_aware": routing_decisions(routers_metrics["cache_aware"]),
            "kv_aware": routing_decisions(f"http://127.0.0.1:{fleet.metrics_port}"),
        }
        fail = failover(urls["cache_aware"], fleet, args)
        hop = router_hop(fleet.engines[0], args.hop_samples, runtime, "vLLM engine 1")
        # The router alone, without an engine's variance: a stand-in upstream that answers at once.
        standin = start_standin(runtime, model=MODEL)
        procs.append(standin)
        hop |= router_hop(standin.url, args.hop_samples * 5, runtime, "instant stand-in")
    finally:
        for proc in procs:
            proc.stop()
        fleet.stop()
    result = {
        "benchmark": "fleet",
        "date_utc": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(started)),
        "duration_s": round(time.time() - started),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "setup": {
            "engines": REPLICAS,
            "model": "generated `small` preset (hidden 512, 6 layers, 64 experts), bf16, eager, 4096 context",
            "engine_args": "fleet.sh on CPU: one core each (VLLM_CPU_OMP_THREADS_BIND), 1 GiB KV cache each",
            "router": "vllm-router 0.1.17, flags of scripts/fleet.sh",
            "workload": {
                "users": args.users,
                "conversations_per_user": args.conversations,
                "turns": args.turns,
                "answer_tokens": ANSWER_TOKENS,
                "system_prompt_chars": len(SYSTEM),
                "note": "each user is its own tenant (its own key and cache_salt); new tenants per row",
            },
        },
        "rows": rows,
        "failover": fail,
        "router_hop": hop,
        "routing_decisions": decisions,
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    _log(f"wrote {args.out}")
    shutil.rmtree(runtime, ignore_errors=True)


if __name__ == "__main__":
    main()
