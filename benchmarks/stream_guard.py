"""Streaming with safety on: how much of an answer the output guard holds back, and what it adds to the
time to first content token.

    .venv/bin/python benchmarks/stream_guard.py [--gateway [--rounds 3]] [--engine]
        [--out benchmarks/results/stream_guard.json]

1. The guard alone (always): benign medical answers (benchmarks/data/benign_answers.jsonl, English and
   Chinese) fed token by token through the patient profile's output guard, in two tokenizations: `words`,
   as a large-vocabulary model streams them (words with their leading space, digits one by one, Chinese
   characters one by one), and `bpe3000`, the generated checkpoints' byte-level BPE (3,000 tokens: many
   words in several pieces, a stress case). Per tokenization: content events kept (tokens whose feed
   released text, over tokens fed), hold per token (how many tokens later each token was released), and
   the guard's CPU time per token.
2. `--gateway`: the same answers through a real gateway process, streamed by the stand-in upstream 20 ms per
   token, beside the stand-in directly, with safety on and off: time to first content token (the first event
   whose delta carries non-empty content) and content events, per request.
3. `--engine`: the `tiny` generated checkpoint in a real vLLM process, directly and through gateways with
   safety on and off: time to first content token over 100 interleaved triples.

Goals (issue: token-speed release): added time to first content token p50 <= 2 ms over direct, at least 90 %
of content events kept, median hold per token <= 1 token, on benign medical answers.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from server.safety import SafetyEngine  # noqa: E402

ANSWERS = REPO / "benchmarks" / "data" / "benign_answers.jsonl"
_TOKEN = re.compile(r" ?[A-Za-z]+| ?\d| ?[^\sA-Za-z\d\u4e00-\u9fff]|[\u4e00-\u9fff]|\s+")


def answers() -> list[dict[str, str]]:
    return [json.loads(line) for line in ANSWERS.read_text(encoding="utf-8").splitlines() if line.strip()]


def tokens_of(text: str) -> list[str]:
    out = _TOKEN.findall(text)
    assert "".join(out) == text
    return out


def bpe_tokens() -> Any:
    """Token texts as the generated checkpoints' tokenizer streams them (decoded incrementally, so a
    multi-byte character split across tokens arrives with its last token, as vLLM's detokenizer sends it)."""
    from model_plugin.checkpoints.tokenizer import train_tokenizer

    tok = train_tokenizer(3000)

    def split(text: str) -> list[str]:
        ids = tok.encode(text).ids
        out, sent = [], ""
        for k in range(1, len(ids) + 1):
            now = tok.decode(ids[:k])
            if now.endswith("\ufffd"):
                continue
            out.append(now[len(sent) :])
            sent = now
        assert "".join(out) == text, "the tokenizer does not round-trip this text"
        return out

    return split


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


# ---- 1. the guard alone ------------------------------------------------------------------------------------
def guard_alone(engine: SafetyEngine, split: Any) -> dict[str, Any]:
    rows, holds, kept, fed, cpu = [], [], 0, 0, []
    for answer in answers():
        question = "高血压应该注意什么？" if answer["lang"] == "zh" else "What should I know about this?"
        guard = engine.output_guard(engine.check_input([{"role": "user", "content": question}], "patient"))
        toks = split(answer["text"])
        # the step at which each character of the answer left the guard
        out_chars = 0
        released_at: list[int] = []
        events = 0
        for step, tok in enumerate(toks):
            t0 = time.thread_time()
            out = guard.feed(tok)
            cpu.append(time.thread_time() - t0)
            if out:
                events += 1
            released_at += [step] * (len(out) if out else 0)
            out_chars += len(out)
        tail = guard.finish()
        released_at += [len(toks)] * len(tail)
        # a token's hold: the step its last character was released, minus the step it arrived
        pos, answer_holds = 0, []
        for step, tok in enumerate(toks):
            pos += len(tok)
            answer_holds.append(released_at[min(pos, len(released_at)) - 1] - step if released_at else 0)
        holds += answer_holds
        kept += events
        fed += len(toks)
        rows.append(
            {
                "lang": answer["lang"],
                "tokens": len(toks),
                "content_events": events,
                "kept": round(events / len(toks), 3),
                "median_hold_tokens": statistics.median(answer_holds),
                "max_hold_tokens": max(answer_holds),
                "unchanged": guard.events == [],
            }
        )
    return {
        "answers": len(rows),
        "tokens": fed,
        "content_events_kept": round(kept / fed, 3),
        "median_hold_tokens": statistics.median(holds),
        "p90_hold_tokens": pct(holds, 0.9),
        "max_hold_tokens": max(holds),
        "cpu_per_token_us_p50": round(pct(cpu, 0.5) * 1e6, 1),
        "cpu_per_token_us_p99": round(pct(cpu, 0.99) * 1e6, 1),
        "per_answer": rows,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--gateway", action="store_true", help="also stream through a real gateway process")
    p.add_argument(
        "--engine", action="store_true", help="also time the tiny engine directly and through the gateway"
    )
    p.add_argument(
        "--rounds", type=int, default=3, help="times each answer is streamed through the gateways (default 3)"
    )
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "stream_guard.json"))
    args = p.parse_args()
    engine = SafetyEngine.from_policy_file(None)
    result: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": f"{platform.machine()}, python {platform.python_version()}",
        "guard_alone": {
            "words": guard_alone(engine, tokens_of),
            "bpe3000": guard_alone(engine, bpe_tokens()),
        },
    }
    for name, g in result["guard_alone"].items():
        print(
            f"guard alone, {name}: {g['answers']} answers, {g['tokens']} tokens: content events kept "
            f"{g['content_events_kept']:.1%}, median hold {g['median_hold_tokens']} tokens (p90 "
            f"{g['p90_hold_tokens']}, max {g['max_hold_tokens']}), CPU per token p50 "
            f"{g['cpu_per_token_us_p50']} us, p99 {g['cpu_per_token_us_p99']} us"
        )
    if args.gateway or args.engine:
        from benchmarks.stream_timing import run_engine, run_gateway  # the process-level parts

        if args.gateway:
            result["gateway"] = run_gateway([tokens_of(a["text"]) for a in answers()] * args.rounds)
        if args.engine:
            result["engine"] = run_engine()
    Path(args.out).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
