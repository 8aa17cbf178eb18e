"""1,000 concurrent streaming requests through one gateway process, in front of the fast stand-in
upstream, compared with the same wave sent straight to the stand-in.

    .venv/bin/python benchmarks/load_streams.py [--streams 1000] [--chunks 64] [--delay-ms 100]
                                                [--out benchmarks/results/load_streams.json]

Every stream is checked: HTTP 200, the complete expected text (--chunks pieces, in order), a final
chunk with finish_reason "stop", `data: [DONE]` last and no error event. Reported: time to first token
(p50/p99) direct and through the gateway and the difference (the TTFT the gateway adds); per-chunk
inter-arrival gaps (p50/p99) both ways; the gateway process's CPU time for the wave; its peak RSS
(sampled every 20 ms); and memory per open stream (RSS with all streams open minus RSS at rest, over
the number of streams). Auth is a hashed database key, the safety layer, metrics, audit and logs are on
as in production. The load generator is a minimal asyncio HTTP/1.1 client (one connection per stream)
so that the client costs the same on both paths.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from server.db import Database
from server.keys import KeyStore
from tests.support.procs import start_gateway, start_standin

MODEL = "angel-standin"
WORD = "Fine. "  # the stand-in's content piece


class StreamResult:
    __slots__ = ("error", "gaps", "opened", "ttft")

    def __init__(self) -> None:
        self.ttft: float | None = None
        self.gaps: list[float] = []
        self.error: str | None = None
        self.opened = False


async def _events(r: asyncio.StreamReader):
    """Decodes chunked transfer encoding and yields (arrival time, data) for each SSE event."""
    buf = b""
    while True:
        size = int((await r.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            return
        buf += (await r.readexactly(size + 2))[:-2]
        now = time.perf_counter()
        while b"\n\n" in buf:
            event, buf = buf.split(b"\n\n", 1)
            if event.startswith(b"data: "):
                yield now, event[6:]


def _check_event(data: bytes, res: StreamResult, state: dict) -> None:
    if data == b"[DONE]":
        state["done"] = True
        return
    obj = orjson.loads(data)
    if "error" in obj:
        raise ValueError(f"error event {obj['error'].get('code')}")
    for choice in obj.get("choices", []):
        content = (choice.get("delta") or {}).get("content")
        if content:
            state["text"].append(content)
            state["chunks"] += 1
        if choice.get("finish_reason") == "stop":
            state["stop"] = True


async def one_stream(conn: tuple | None, head: bytes, body: bytes, chunks: int, res: StreamResult) -> None:
    """Sends one request on an already open connection and checks its stream to the end."""
    if conn is None:
        res.error = "connect failed"
        return
    r, w = conn
    try:
        t0 = time.perf_counter()
        w.write(head + body)
        status_head = await r.readuntil(b"\r\n\r\n")
        res.opened = True
        if status_head[9:12] != b"200":
            res.error = f"status {status_head[9:12].decode()}"
            return
        state: dict = {"chunks": 0, "text": [], "stop": False, "done": False}
        last = None
        async for now, data in _events(r):
            before = state["chunks"]
            _check_event(data, res, state)
            if state["chunks"] > before:
                if res.ttft is None:
                    res.ttft = now - t0
                else:
                    res.gaps.append(now - last)
                last = now
        # The whole answer, in order (the output guard may move a sentence's trailing space).
        text = "".join(state["text"])
        if text.split() != (WORD * chunks).split() or not state["stop"] or not state["done"]:
            res.error = (
                f"incomplete or wrong: {state['chunks']} chunks, stop={state['stop']}, done={state['done']}"
            )
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        res.error = f"{type(exc).__name__}: {exc}"
    finally:
        w.close()


async def _connect(host: str, port: int) -> tuple | None:
    try:
        return await asyncio.open_connection(host, port, limit=1 << 20)
    except OSError:
        return None


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(len(s) * q / 100))]


def ms(x: float) -> float:
    return round(x * 1000, 3)


async def wave(url: str, key: str | None, n: int, chunks: int, proc: psutil.Process | None) -> dict:
    host, port = url.removeprefix("http://").split(":")
    body = orjson.dumps(
        {
            "model": MODEL,
            "stream": True,
            "max_tokens": chunks,
            "messages": [{"role": "user", "content": "What does a TSH of 6.2 mean?"}],
        }
    )
    auth = f"Authorization: Bearer {key}\r\n".encode() if key else b""
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n%s"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n" % (auth, len(body))
    )
    results = [StreamResult() for _ in range(n)]
    samples: list[tuple[float, int]] = []  # (time, rss)
    stop = asyncio.Event()

    async def sample() -> None:
        while not stop.is_set() and proc is not None:
            samples.append((time.perf_counter(), proc.memory_info().rss))
            await asyncio.sleep(0.02)

    cpu0 = sum(proc.cpu_times()[:2]) if proc else 0.0
    rss0 = proc.memory_info().rss if proc else 0
    sampler = asyncio.create_task(sample())
    # All connections first, so that TTFT measures the request, not a storm of TCP handshakes.
    conns = await asyncio.gather(*(_connect(host, int(port)) for _ in range(n)))
    t0 = time.perf_counter()
    await asyncio.gather(*(one_stream(c, head, body, chunks, r) for c, r in zip(conns, results)))
    wall = time.perf_counter() - t0
    stop.set()
    await sampler
    errors = [r.error for r in results if r.error]
    ttft = [r.ttft for r in results if r.ttft is not None and not r.error]
    gaps = [g for r in results if not r.error for g in r.gaps]
    out = {
        "streams": n,
        "complete_and_correct": n - len(errors),
        "errors": len(errors),
        "error_examples": sorted(set(errors))[:5],
        "wall_s": round(wall, 3),
        "ttft_p50_ms": ms(pct(ttft, 50)) if ttft else None,
        "ttft_p99_ms": ms(pct(ttft, 99)) if ttft else None,
        "chunk_gap_p50_ms": ms(pct(gaps, 50)) if gaps else None,
        "chunk_gap_p99_ms": ms(pct(gaps, 99)) if gaps else None,
    }
    if proc is not None:
        peak = max(s[1] for s in samples) if samples else proc.memory_info().rss
        out["gateway_cpu_s"] = round(sum(proc.cpu_times()[:2]) - cpu0, 3)
        out["gateway_cpu_ms_per_stream"] = round(out["gateway_cpu_s"] * 1000 / n, 3)
        out["gateway_cpu_util_pct"] = round(out["gateway_cpu_s"] / wall * 100, 1)
        out["gateway_rss_at_rest_mb"] = round(rss0 / 2**20, 2)
        out["gateway_peak_rss_mb"] = round(peak / 2**20, 2)
        out["memory_per_open_stream_kb"] = round((peak - rss0) / n / 1024, 2)
    return out


async def run(args: argparse.Namespace, tmp: Path) -> dict:
    standin = start_standin(tmp, chunks=args.chunks, delay_ms=args.delay_ms)
    db = tmp / "gw.db"
    key, _ = KeyStore(Database(f"sqlite:///{db}")).create("load", rpm=10**9, tpm=10**12)
    gw = start_gateway(tmp, standin.url, db=db, ANGEL_LOG_LEVEL="warning")
    try:
        gproc = psutil.Process(gw.proc.pid)
        async with httpx.AsyncClient() as c:  # warm the gateway's code paths and its upstream pool
            for _ in range(20):
                await c.post(
                    gw.url + "/v1/chat/completions",
                    json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
                    headers={"Authorization": f"Bearer {key}"},
                )
        result: dict = {}
        # Direct first, then through the gateway, then direct again: the two direct waves bracket the
        # gateway's wave, so a machine that got busier or quieter shows up as disagreement between them.
        result["direct"] = await wave(standin.url, None, args.streams, args.chunks, None)
        print("direct", result["direct"], flush=True)
        result["gateway"] = await wave(gw.url, key, args.streams, args.chunks, gproc)
        print("gateway", result["gateway"], flush=True)
        result["direct_again"] = await wave(standin.url, None, args.streams, args.chunks, None)
        print("direct again", result["direct_again"], flush=True)
        d = result["direct"], result["direct_again"]
        g = result["gateway"]
        for q in ("p50", "p99"):
            base = sum(x[f"ttft_{q}_ms"] for x in d) / 2
            result[f"ttft_added_{q}_ms"] = round(g[f"ttft_{q}_ms"] - base, 3)
            base = sum(x[f"chunk_gap_{q}_ms"] for x in d) / 2
            result[f"chunk_gap_added_{q}_ms"] = round(g[f"chunk_gap_{q}_ms"] - base, 3)
        result["setup"] = {
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}",
            "chunks_per_stream": args.chunks,
            "upstream_chunk_delay_ms": args.delay_ms,
            "load_average_end": round(os.getloadavg()[0], 2),
        }
        return result
    finally:
        gw.stop()
        standin.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--streams", type=int, default=1000)
    p.add_argument("--chunks", type=int, default=64)
    p.add_argument("--delay-ms", type=float, default=100.0, help="the stand-in's pause between chunks")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "load_streams.json"))
    args = p.parse_args()
    # 1,000 streams need ~3,000 descriptors across client, gateway and stand-in (children inherit this).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 16384)), hard))
    with tempfile.TemporaryDirectory(prefix="angel-load-") as tmp:
        result = asyncio.run(run(args, Path(tmp)))
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(
        json.dumps(
            {k: v for k, v in result.items() if k not in ("direct", "gateway", "direct_again")}, indent=2
        )
    )
    if result["gateway"]["errors"] or result["direct"]["errors"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
