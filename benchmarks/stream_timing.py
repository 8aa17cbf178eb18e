"""Process-level parts of benchmarks/stream_guard.py: the time to first content token and the content events
a client receives, directly and through the gateway (safety on and off), with a paced stand-in upstream and
with the real tiny engine. Run through `benchmarks/stream_guard.py --gateway --engine`."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from tests.support.procs import REPO, TEST_KEY, control, start_gateway, start_standin

PACE_MS = 20  # between tokens: a fast engine's decode step
# triples: the engine's own TTFT varies by ~10 ms, so a median of differences needs many
ENGINE_REQUESTS = 100


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return round(s[min(len(s) - 1, int(q * len(s)))], 2)


async def _stream(client: httpx.AsyncClient, url: str, body: dict, headers: dict) -> tuple[float, int, int]:
    """(ms to the first event with non-empty content, content events, all events)."""
    t0 = time.perf_counter()
    first, content_events, events = None, 0, 0
    async with client.stream("POST", url + "/v1/chat/completions", json=body, headers=headers) as r:
        assert r.status_code == 200, await r.aread()
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            events += 1
            for ch in orjson.loads(line[6:]).get("choices") or ():
                if (ch.get("delta") or {}).get("content"):
                    content_events += 1
                    if first is None:
                        first = (time.perf_counter() - t0) * 1000
    return first if first is not None else float("nan"), content_events, events


def _row(ttft: list[float], events: list[int], tokens: list[int]) -> dict[str, Any]:
    return {
        "ttft_p50_ms": _pct(ttft, 0.5),
        "ttft_p99_ms": _pct(ttft, 0.99),
        "content_events": sum(events),
        "content_events_kept": round(sum(events) / sum(tokens), 3),
    }


def run_gateway(answers: list[list[str]]) -> dict[str, Any]:
    """Each answer streamed by the stand-in PACE_MS apart, directly and through gateways with safety on/off,
    interleaved answer by answer."""
    tmp = Path(tempfile.mkdtemp(prefix="stream-timing-"))
    standin = start_standin(tmp, delay_ms=PACE_MS)
    control(standin, mode="script")
    on = start_gateway(tmp, standin.url)
    off = start_gateway(tmp, standin.url, db=tmp / "off.db", ANGEL_SAFETY_ENABLED="false")
    auth = {"Authorization": f"Bearer {TEST_KEY}"}
    targets = {"direct": (standin.url, {}), "safety_on": (on.url, auth), "safety_off": (off.url, auth)}
    ttft: dict[str, list[float]] = {k: [] for k in targets}
    events: dict[str, list[int]] = {k: [] for k in targets}
    tokens: list[int] = []
    question = "What should I know about this?"

    async def one_round() -> None:
        async with httpx.AsyncClient(timeout=60) as client:
            for toks in answers:
                control(standin, script=[{"delta": {"content": t}} for t in toks])
                tokens.append(len(toks))
                for name, (url, headers) in targets.items():
                    messages = [{"role": "user", "content": question}]
                    body = {"model": "angel-standin", "stream": True, "messages": messages}
                    first, content, _ = await _stream(client, url, body, headers)
                    ttft[name].append(first)
                    events[name].append(content)

    try:
        asyncio.run(one_round())
    finally:
        for p in (off, on, standin):
            p.stop()
    out = {name: _row(ttft[name], events[name], tokens) for name in targets}
    for name in ("safety_on", "safety_off"):
        added = [a - d for a, d in zip(ttft[name], ttft["direct"], strict=True)]
        out[name]["added_ttft_p50_ms"] = _pct(added, 0.5)
        out[name]["added_ttft_p99_ms"] = _pct(added, 0.99)
    out["setup"] = {"answers": len(answers), "tokens": sum(tokens), "pace_ms": PACE_MS}
    for name, row in out.items():
        if name != "setup":
            print(f"paced stand-in, {name}: {row}")
    return out


def run_engine() -> dict[str, Any]:
    """The tiny generated checkpoint in a real vLLM process, directly and through gateways with safety on and
    off, interleaved request by request."""
    from tests.model_plugin.engine.support import start_vllm_server

    tmp = Path(tempfile.mkdtemp(prefix="stream-engine-"))
    ckpt = tmp / "tiny"
    generate = [sys.executable, "-m", "model_plugin.checkpoints", "--preset", "tiny", "--out", str(ckpt)]
    subprocess.run(generate, cwd=REPO, check=True, capture_output=True)
    engine = start_vllm_server(ckpt, tmp / "vllm.log")
    gateway = start_gateway(tmp, engine.url)
    off = start_gateway(tmp, engine.url, db=tmp / "off.db", ANGEL_SAFETY_ENABLED="false")
    auth = {"Authorization": f"Bearer {TEST_KEY}"}
    targets = {"direct": (engine.url, {}), "safety_on": (gateway.url, auth), "safety_off": (off.url, auth)}
    ttft: dict[str, list[float]] = {k: [] for k in targets}
    events: dict[str, list[int]] = {k: [] for k in targets}

    async def rounds() -> None:
        async with httpx.AsyncClient(timeout=120) as client:
            for i in range(ENGINE_REQUESTS):
                body = {
                    "model": engine.model,
                    "stream": True,
                    "max_tokens": 32,
                    "temperature": 0,
                    "seed": i,
                    "messages": [
                        {"role": "user", "content": f"Question {i}: how much water should I drink?"}
                    ],
                }
                for name, (url, headers) in targets.items():
                    first, content, _ = await _stream(client, url, body, headers)
                    ttft[name].append(first)
                    events[name].append(content)

    try:
        asyncio.run(rounds())
    finally:
        for p in (off, gateway, engine):
            p.stop()
    out: dict[str, Any] = {
        name: {"ttft_p50_ms": _pct(v, 0.5), "ttft_p99_ms": _pct(v, 0.99), "content_events": sum(events[name])}
        for name, v in ttft.items()
    }
    for name in ("safety_on", "safety_off"):
        added = [a - d for a, d in zip(ttft[name], ttft["direct"], strict=True)]
        out[name]["added_ttft_p50_ms"] = _pct(added, 0.5)
        out[name]["content_events_kept"] = round(sum(events[name]) / max(1, sum(events["direct"])), 3)
    out["setup"] = {"requests": ENGINE_REQUESTS, "max_tokens": 32, "median_of": "triples, interleaved"}
    print(f"tiny engine: {out}")
    return out
