"""Latency the safety layer adds: input rails on 4,000-character messages, and the output guard per stream.

    python benchmarks/safety_latency.py [--iterations 2000] [--out benchmarks/results/safety_latency.json]

Messages are assembled from the evaluation set's sentences (tests/server/safety/eval/dev.jsonl) and
shuffled per
iteration, so no two calls see the same text:
- en_benign / zh_benign: long ordinary questions (hard negatives), nothing fires (the common case);
- en_phi / zh_phi: ordinary text with a few identifiers, PHI redaction runs (the common redaction case);
- dense_mixed: every sentence is a crisis, emergency, PHI or injection case (worst case, everything fires).
The output guard is timed on a 64-chunk streamed answer (~2,000 characters) with PHI in it.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from server.safety import SafetyEngine
from server.safety.gateway import warm_up
from server.safety.phi import name_model

EVAL = REPO / "tests" / "server" / "safety" / "eval" / "dev.jsonl"
LENGTH = 4000
PHI_LINES = {
    "en": [
        "My name is Sarah Mitchell and my phone is 415-555-0132.",
        "Email me at k.nguyen84@gmail.com.",
        "MRN 00482913, admitted 2024-03-15.",
    ],
    "zh": [
        "我叫李晓燕，电话13812345678。",
        "病历号MZ20230981，出生日期1952年3月8日。",
        "家住漕溪北路398号5号楼1203室。",
    ],
}


def _pool(cases: list[dict[str, Any]], lang: str | None, labelled: bool) -> list[str]:
    return [c["text"] for c in cases if (lang is None or c["lang"] == lang) and bool(c["labels"]) == labelled]


def _message(rng: random.Random, sentences: list[str], extra: list[str] | None = None) -> str:
    parts: list[str] = list(extra or [])
    while sum(len(p) + 1 for p in parts) < LENGTH:
        parts.append(rng.choice(sentences))
    rng.shuffle(parts)
    return " ".join(parts)[:LENGTH]


def _percentiles(samples: list[float]) -> dict[str, float]:
    s = sorted(samples)

    def pick(q: float) -> float:
        return s[min(len(s) - 1, int(q * len(s)))]

    return {
        "p50_ms": round(pick(0.50), 4),
        "p90_ms": round(pick(0.90), 4),
        "p99_ms": round(pick(0.99), 4),
        "max_ms": round(s[-1], 4),
        "mean_ms": round(statistics.fmean(s), 4),
    }


def bench_input(engine: SafetyEngine, messages: list[str], repeat: int = 1) -> dict[str, Any]:
    """Wall time per call, and the calling thread's CPU time per call. With `repeat` > 1 each message is
    checked that many times and its fastest call kept: the cost of the work itself, without the moments
    this shared VM runs slowly (the CPU time swings with them too, so it does not remove them)."""
    for text in messages[:50]:  # warm-up (automaton build, regex caches)
        engine.check_input([{"role": "user", "content": text}], "patient")
    wall, cpu = [], []
    for text in messages:
        body = [{"role": "user", "content": text}]
        best_wall = best_cpu = float("inf")
        for _ in range(repeat):
            name_model.load().forget()  # the name model remembers recent texts: time its reading each call
            c0, t0 = time.thread_time(), time.perf_counter()
            engine.check_input(body, "patient")
            best_wall = min(best_wall, (time.perf_counter() - t0) * 1000)
            best_cpu = min(best_cpu, (time.thread_time() - c0) * 1000)
        wall.append(best_wall)
        cpu.append(best_cpu)
    return {**_percentiles(wall), "cpu": _percentiles(cpu)}


def bench_output(engine: SafetyEngine, iterations: int) -> dict[str, float]:
    verdict = engine.check_input(
        [{"role": "user", "content": "My name is Sarah Mitchell, call 415-555-0132."}], "patient"
    )
    sentence = (
        "Your TSH of 6.2 is slightly high; we can call you at [PHONE_1] or 212-555-0147 to discuss it. "
    )
    answer = (sentence * 30)[:2000]
    chunks = [answer[i : i + len(answer) // 64 + 1] for i in range(0, len(answer), len(answer) // 64 + 1)]
    samples = []
    for _ in range(iterations):
        guard = engine.output_guard(verdict)
        t0 = time.perf_counter()
        for chunk in chunks:
            guard.feed(chunk)
        guard.finish()
        samples.append((time.perf_counter() - t0) * 1000)
    return {**_percentiles(samples), "chunks": len(chunks), "chars": len(answer)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--repeat", type=int, default=1, help="calls per message, the fastest kept (3: the work's own cost)"
    )
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "safety_latency.json"))
    args = parser.parse_args()

    cases = [json.loads(line) for line in EVAL.read_text(encoding="utf-8").splitlines() if line.strip()]
    rng = random.Random(args.seed)
    engine = SafetyEngine.from_policy_file(None)
    workloads = {
        "en_benign": [_message(rng, _pool(cases, "en", False)) for _ in range(args.iterations)],
        "zh_benign": [_message(rng, _pool(cases, "zh", False)) for _ in range(args.iterations)],
        "en_phi": [_message(rng, _pool(cases, "en", False), PHI_LINES["en"]) for _ in range(args.iterations)],
        "zh_phi": [_message(rng, _pool(cases, "zh", False), PHI_LINES["zh"]) for _ in range(args.iterations)],
        "dense_mixed": [_message(rng, _pool(cases, None, True)) for _ in range(args.iterations)],
    }
    results: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "load_average_1m_at_start": round(os.getloadavg()[0], 2),
            "platform": platform.platform(),
        },
        "message_chars": LENGTH,
        "iterations": args.iterations,
        "repeat": args.repeat,
        "goal": "input rails add <= 2 ms p99 for a 4,000-character message",
        "check_input": {},
    }
    # as the gateway starts (server/__main__.py): the engine's tables built and warmed, then frozen out of the
    # garbage collector, whose full passes over them would otherwise land on whichever call triggered one
    warm_up(engine)
    gc.collect()
    gc.freeze()
    for name, messages in workloads.items():
        results["check_input"][name] = bench_input(engine, messages, args.repeat)
    results["output_guard_64_chunk_stream"] = bench_output(engine, max(200, args.iterations // 4))
    results["machine"]["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)

    print(
        f"check_input on {LENGTH}-character messages, {args.iterations} messages each"
        f"{f', the fastest of {args.repeat} calls kept' if args.repeat > 1 else ''} "
        f"(load average {results['machine']['load_average_1m_at_start']} on {os.cpu_count()} CPUs)"
    )
    print(
        f"| {'workload':<12} | {'p50 ms':>7} | {'p99 ms':>7} | {'max ms':>7} | {'CPU p50':>7} "
        f"| {'CPU p99':>7} |"
    )
    print(f"|{'-' * 14}|{'-' * 9}|{'-' * 9}|{'-' * 9}|{'-' * 9}|{'-' * 9}|")
    for name, r in results["check_input"].items():
        print(
            f"| {name:<12} | {r['p50_ms']:>7.3f} | {r['p99_ms']:>7.3f} | {r['max_ms']:>7.3f} "
            f"| {r['cpu']['p50_ms']:>7.3f} | {r['cpu']['p99_ms']:>7.3f} |"
        )
    o = results["output_guard_64_chunk_stream"]
    print(
        f"output guard, {o['chunks']}-chunk stream of {o['chars']} chars: p50 {o['p50_ms']:.3f} ms, "
        f"p99 {o['p99_ms']:.3f} ms per stream"
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
