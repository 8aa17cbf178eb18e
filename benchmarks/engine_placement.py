"""Where vLLM's engine core runs on a CPU host, and what the API server's streams feel of it.

    .venv/bin/python benchmarks/engine_placement.py [--pairs 2]
        [--out benchmarks/results/engine_placement.json]

The `tiny` generated checkpoint in a real vLLM process, started with each placement of the engine core
(`ANTANGELMED_CPU_ENGINE_CORE`, model_plugin/cpu_placement.py): `vllm`, vLLM's own (the engine core on the
core it keeps spare, where the API server also runs) and `worker` (the plugin's default: the engine core on
its worker's cores). Starts alternate, `--pairs` times each. Per start:

- concurrent: 3 waves of 16 streams of 64 tokens: time to first content token (the first event with
  non-empty content) p50/p99 and content events per second over the waves;
- then sequential: 100 streamed chats of 32 tokens, one after another: time to first content token p50/p90,
  and the share of streams that arrived in one burst (first and last content event under 1 ms apart: the
  API server got the core only after the whole generation).

The plugin's default must not lose on any row; the table is printed and written to --out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.stream_timing import _pct  # noqa: E402
from model_plugin.cpu_placement import PLACEMENT_ENV, PLACEMENTS  # noqa: E402
from tests.model_plugin.engine.support import start_vllm_server  # noqa: E402

SEQUENTIAL = 100
WAVES, WAVE_STREAMS = 3, 16
BURST_MS = 1.0


async def _times(client: httpx.AsyncClient, url: str, body: dict) -> tuple[float, float, int]:
    """(ms to the first content event, ms from it to the last one, content events)."""
    t0 = time.perf_counter()
    stamps: list[float] = []
    async with client.stream("POST", url + "/v1/chat/completions", json=body) as r:
        assert r.status_code == 200, await r.aread()
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            for ch in orjson.loads(line[6:]).get("choices") or ():
                if (ch.get("delta") or {}).get("content"):
                    stamps.append((time.perf_counter() - t0) * 1000)
    return stamps[0], stamps[-1] - stamps[0], len(stamps)


def _body(model: str, text: str, max_tokens: int) -> dict[str, Any]:
    return {
        "model": model,
        "stream": True,
        "max_tokens": max_tokens,
        "temperature": 0,
        "ignore_eos": True,
        "messages": [{"role": "user", "content": text}],
    }


async def _measure(url: str, model: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=300, limits=httpx.Limits(max_connections=WAVE_STREAMS)) as client:
        firsts, events = [], 0
        t0 = time.perf_counter()
        for w in range(WAVES):
            wave = await asyncio.gather(
                *(
                    _times(client, url, _body(model, f"Wave {w}, patient {i}: is my pressure fine?", 64))
                    for i in range(WAVE_STREAMS)
                )
            )
            firsts += [first for first, _, _ in wave]
            events += sum(n for _, _, n in wave)
        seconds = time.perf_counter() - t0
        seq = [
            await _times(client, url, _body(model, f"Question {i}: how much water should I drink?", 32))
            for i in range(SEQUENTIAL)
        ]
    return {
        "sequential_ttft_p50_ms": _pct([s[0] for s in seq], 0.5),
        "sequential_ttft_p90_ms": _pct([s[0] for s in seq], 0.9),
        "sequential_burst_share": round(sum(s[1] < BURST_MS for s in seq) / len(seq), 3),
        "concurrent_ttft_p50_ms": _pct(firsts, 0.5),
        "concurrent_ttft_p99_ms": _pct(firsts, 0.99),
        "concurrent_content_events_per_s": round(events / seconds),
    }


def run(pairs: int) -> list[dict[str, Any]]:
    tmp = Path(tempfile.mkdtemp(prefix="engine-placement-"))
    ckpt = tmp / "tiny"
    generate = [sys.executable, "-m", "model_plugin.checkpoints", "--preset", "tiny", "--out", str(ckpt)]
    subprocess.run(generate, cwd=REPO, check=True, capture_output=True)
    rows = []
    for n in range(pairs):
        for mode in reversed(PLACEMENTS):  # vLLM's own first in each pair
            engine = start_vllm_server(ckpt, tmp / f"vllm-{mode}-{n}.log", env={PLACEMENT_ENV: mode})
            try:
                row = {"placement": mode, "start": n + 1, **asyncio.run(_measure(engine.url, engine.model))}
            finally:
                engine.stop()
            print(row, flush=True)
            rows.append(row)
    return rows


def _table(rows: list[dict[str, Any]]) -> str:
    cols = [k for k in rows[0] if k not in ("placement", "start")]
    lines = ["| placement | start | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
    for r in rows:
        lines.append(f"| {r['placement']} | {r['start']} | " + " | ".join(str(r[c]) for c in cols) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pairs", type=int, default=2, help="starts of each placement, alternating (default 2)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "engine_placement.json"))
    args = p.parse_args()
    rows = run(args.pairs)
    print(_table(rows))
    result = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores, "
        f"python {platform.python_version()}",
        "setup": {"sequential": SEQUENTIAL, "waves": WAVES, "streams": WAVE_STREAMS, "burst_ms": BURST_MS},
        "rows": rows,
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
