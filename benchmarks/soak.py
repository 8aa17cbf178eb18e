"""Soak: mixed traffic through one gateway process (fast stand-in upstream) for a long time, with the
gateway's RSS sampled every minute; at the end, open connections, file descriptors, threads, asyncio
tasks and in-flight requests are counted after the traffic stops (anything left open is a leak).

    .venv/bin/python benchmarks/soak.py [--minutes 30] [--workers 24] [--out benchmarks/results/soak.json]

The mix (per worker iteration): streams (read to the end), non-streams, streams the client abandons
after a few chunks (disconnects), client errors (bad body 400, unknown model 404, wrong key 401), and
upstream failures: every 30 s the stand-in is switched for 2 s to a failing mode (500s, death
mid-stream), so those requests end with 502s or error events. Auth is a hashed database key with RPM/TPM
limits; safety, metrics, audit and logging are on as in production.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from server.db import Database
from server.keys import KeyStore
from tests.support.procs import Proc, start_gateway, start_standin

MODEL = "angel-standin"
FAIL_MODES = ("error500", "die-midstream", "overloaded", "malformed")


def chat(stream: bool, model: str = MODEL, text: str = "How should I store insulin?") -> dict:
    return {
        "model": model,
        "stream": stream,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": text}],
    }


async def one(c: httpx.AsyncClient, auth: dict, kind: str) -> str:
    """One request of the given kind; returns an outcome label."""
    url = "/v1/chat/completions"
    if kind == "nonstream":
        r = await c.post(url, json=chat(False), headers=auth)
        return f"nonstream:{r.status_code}"
    if kind in ("stream", "disconnect"):
        async with c.stream("POST", url, json=chat(True), headers=auth) as r:
            if r.status_code != 200:
                await r.aread()
                return f"{kind}:{r.status_code}"
            events, error = 0, False
            async for line in r.aiter_lines():
                if not line.startswith("data: "):
                    continue
                events += 1
                error |= line.startswith('data: {"error"')
                if kind == "disconnect" and events >= 3:
                    return "disconnect:abandoned"  # leaving the block closes the connection mid-stream
            return f"stream:{'error_event' if error else 'ok'}"
    if kind == "bad_body":
        r = await c.post(url, content=b'{"model": "x", "messages": [', headers=auth)
    elif kind == "unknown_model":
        r = await c.post(url, json=chat(False, model="no-such-model"), headers=auth)
    else:  # wrong_key
        r = await c.post(url, json=chat(False), headers={"Authorization": "Bearer sk-angel-wrong" + "x" * 40})
    return f"{kind}:{r.status_code}"


KINDS = ["stream"] * 40 + ["nonstream"] * 30 + ["disconnect"] * 12 + ["bad_body"] * 6
KINDS += ["unknown_model"] * 6 + ["wrong_key"] * 6


async def worker(url: str, auth: dict, stop: float, counts: Counter, rng: random.Random) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as c:
        while time.monotonic() < stop:
            kind = rng.choice(KINDS)
            try:
                counts[await one(c, auth, kind)] += 1
            except httpx.HTTPError as exc:
                counts[f"{kind}:client_{type(exc).__name__}"] += 1


async def fault_injector(standin: str, stop: float, counts: Counter) -> None:
    """Every 30 s, 2 s of a failing upstream mode, then back to normal."""
    async with httpx.AsyncClient(base_url=standin, timeout=5) as c:
        i = 0
        while time.monotonic() + 30 < stop:
            await asyncio.sleep(28)
            mode = FAIL_MODES[i % len(FAIL_MODES)]
            await c.post("/_control", json={"mode": mode})
            await asyncio.sleep(2)
            await c.post("/_control", json={"mode": "normal"})
            counts[f"fault_window:{mode}"] += 1
            i += 1


def gateway_sockets(p: psutil.Process, gw_port: int) -> dict:
    """Client-side sockets (accepted on the gateway's port) apart from the upstream keep-alive pool."""
    conns = [c for c in p.net_connections(kind="tcp") if c.status != psutil.CONN_LISTEN]
    clients = [c for c in conns if c.laddr and c.laddr.port == gw_port]
    pool = [c for c in conns if c not in clients]
    return {
        "client_open": len(clients),
        "client_states": sorted(c.status for c in clients),  # a leak shows as ESTABLISHED or CLOSE_WAIT
        "upstream_pool_open": len(pool),
        "upstream_pool_close_wait": sum(1 for c in pool if c.status == psutil.CONN_CLOSE_WAIT),
    }


def gauge(metrics: str, name: str) -> float:
    return sum(float(line.split()[-1]) for line in metrics.splitlines() if line.startswith(name))


async def sampler(p: psutil.Process, every: float, stop: float, samples: list) -> None:
    t0 = time.monotonic()
    while True:
        samples.append(
            {
                "t_s": round(time.monotonic() - t0, 1),
                "rss_mb": round(p.memory_info().rss / 2**20, 2),
                "fds": p.num_fds(),
                "threads": p.num_threads(),
                "cpu_s": round(sum(p.cpu_times()[:2]), 2),
            }
        )
        print("sample", samples[-1], flush=True)
        if time.monotonic() + every > stop + 1:
            return
        await asyncio.sleep(every)


async def soak(args: argparse.Namespace, tmp: Path) -> dict:
    standin = start_standin(tmp, chunks=32, delay_ms=2)
    db = tmp / "gw.db"
    key, _ = KeyStore(Database(f"sqlite:///{db}")).create("soak", rpm=1_000_000, tpm=1_000_000_000)
    gw: Proc = start_gateway(tmp, standin.url, db=db, ANGEL_LOG_LEVEL="warning")
    try:
        gproc = psutil.Process(gw.proc.pid)
        auth = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(timeout=5) as c:  # the idle level, to compare with the end
            idle_tasks = gauge((await c.get(gw.url + "/metrics")).text, "gateway_asyncio_tasks")
        duration = args.minutes * 60
        stop = time.monotonic() + duration
        counts: Counter = Counter()
        samples: list[dict] = []
        rng = random.Random(args.seed)
        tasks = [worker(gw.url, auth, stop, counts, random.Random(rng.random())) for _ in range(args.workers)]
        tasks += [fault_injector(standin.url, stop, counts), sampler(gproc, args.sample_s, stop, samples)]
        await asyncio.gather(*tasks)
        await asyncio.sleep(3)  # let the gateway finish its bookkeeping for the last requests
        async with httpx.AsyncClient(timeout=5) as c:
            metrics = (await c.get(gw.url + "/metrics")).text
            upstream = (await c.get(standin.url + "/_stats")).json()
        end = {
            "sockets": gateway_sockets(gproc, int(gw.url.rsplit(":", 1)[1])),
            "fds": gproc.num_fds(),
            "threads": gproc.num_threads(),
            # The scrape of /metrics is itself in flight while the gauge is read.
            "gateway_inflight_requests": gauge(metrics, "gateway_inflight_requests") - 1,
            "upstream_inflight": upstream["inflight"],
            "upstream_streams_cancelled": upstream["streams_cancelled"],
            "upstream_requests": upstream["requests"],
            "gateway_asyncio_tasks": gauge(metrics, "gateway_asyncio_tasks"),
            "gateway_asyncio_tasks_idle_before": idle_tasks,
        }
        warm = [s for s in samples if s["t_s"] >= args.warmup_min * 60]
        base = warm[0]["rss_mb"] if warm else samples[0]["rss_mb"]
        growth = (samples[-1]["rss_mb"] - base) / base * 100
        return {
            "minutes": args.minutes,
            "workers": args.workers,
            "requests": sum(v for k, v in counts.items() if not k.startswith("fault_window")),
            "outcomes": dict(sorted(counts.items())),
            "rss_samples": samples,
            "rss_after_warmup_mb": base,
            "rss_end_mb": samples[-1]["rss_mb"],
            "rss_peak_mb": max(s["rss_mb"] for s in samples),
            "rss_growth_after_warmup_pct": round(growth, 2),
            "warmup_min": args.warmup_min,
            "at_end": end,
            # Leaks once traffic has stopped: client sockets still open, upstream sockets never closed.
            # (Idle keep-alive connections in the upstream pool are bounded and reused, not leaks.)
            "leaked_connections": end["sockets"]["client_open"] + end["sockets"]["upstream_pool_close_wait"],
            "leaked_inflight": end["gateway_inflight_requests"] + end["upstream_inflight"],
            "leaked_tasks": end["gateway_asyncio_tasks"] - idle_tasks,
            "setup": {
                "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "machine": (
                    f"{platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}"
                ),
                "load_average_end": round(os.getloadavg()[0], 2),
            },
        }
    finally:
        gw.stop()
        standin.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=30.0, help="traffic duration (default 30)")
    p.add_argument("--warmup-min", type=float, default=2.0, help="RSS growth is measured after this")
    p.add_argument("--sample-s", type=float, default=60.0, help="RSS sampling period (default 60 s)")
    p.add_argument("--workers", type=int, default=24, help="concurrent clients")
    p.add_argument("--seed", type=int, default=6)
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "soak.json"))
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="angel-soak-") as tmp:
        result = asyncio.run(soak(args, Path(tmp)))
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "rss_samples"}, indent=2))


if __name__ == "__main__":
    main()
