"""What verifying k+1 tokens costs in vLLM's CPU fused-MoE kernel (the cap on CPU speculation).

    .venv/bin/python benchmarks/moe_verify_cost.py [--preset small] [--threads 1] [--repeats 200]

Speculative decoding pays off when checking k drafted tokens in one target forward costs little more
than decoding one. For a MoE target that depends on the MoE kernel: this script times vLLM's own CPU
op (`_custom_ops.cpu_fused_moe`, the one both our plugin and the built-in model run on CPU, weights
prepacked as vLLM prepacks them) at the preset's expert shapes for T = 1..8 tokens, each token routed
to its own random top-k experts (a random router: no expert locality between tokens). Every timed call
uses the next of `--layers` independent weight sets, so, as in a real forward through the layers, no
call finds its experts in cache. Prints a table (time per MoE layer, time relative to T=1, distinct
experts and (token, expert) pairs) and writes benchmarks/results/moe_verify_cost.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.plugin_vs_builtin import REPO

RESULTS = REPO / "benchmarks" / "results" / "moe_verify_cost.json"
TOKENS = (1, 2, 3, 4, 5, 6, 7, 8)
ISA = "vec"  # vLLM's CPU MoE without AMX (X86CPUUnquantizedExperts needs AMX tiles)


def measure(preset_name: str, layers: int, threads: int, repeats: int, seed: int) -> list[dict]:
    import torch
    import vllm._custom_ops as ops

    from model_plugin.checkpoints.presets import get_preset

    p = get_preset(preset_name)
    e, h, i, k = p.num_experts, p.hidden_size, p.moe_intermediate_size, p.num_experts_per_tok
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    weights = [
        (
            ops.cpu_prepack_moe_weight((torch.randn(e, 2 * i, h) * 0.02).bfloat16(), ISA),
            ops.cpu_prepack_moe_weight((torch.randn(e, h, i) * 0.02).bfloat16(), ISA),
        )
        for _ in range(layers)
    ]
    expert_bytes = 3 * h * i * 2  # gate, up and down projections in bf16
    rows = []
    for t in TOKENS:
        ids = torch.stack([torch.randperm(e)[:k] for _ in range(t)]).to(torch.int32)
        seconds = _time_moe(ops, weights, torch.randn(t, h).bfloat16(), ids, repeats)
        distinct = len(set(ids.flatten().tolist()))
        rows.append(
            {
                "tokens": t,
                "ms_per_layer": seconds * 1e3,
                "distinct_experts": distinct,
                "token_expert_pairs": t * k,
                "gb_s_distinct": distinct * expert_bytes / seconds / 1e9,
            }
        )
    base = rows[0]["ms_per_layer"]
    for row in rows:
        row["x_t1"] = row["ms_per_layer"] / base
    return rows


def _time_moe(ops, weights: list, x, ids, repeats: int) -> float:
    """Seconds per cpu_fused_moe call on tokens x routed to ids, each call on the next weight set."""
    import torch

    topk_w = torch.full(ids.shape, 1.0 / ids.shape[1])
    out = torch.empty_like(x)
    for n in range(2 * len(weights) + repeats):
        if n == 2 * len(weights):  # after the warm-up
            start = time.perf_counter()
        w13, w2 = weights[n % len(weights)]
        ops.cpu_fused_moe(out, x, w13, w2, None, None, topk_w, ids, "silu", ISA)
    return (time.perf_counter() - start) / repeats


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="small")
    ap.add_argument(
        "--layers", type=int, default=8, help="independent weight sets cycled through (cache-cold)"
    )
    ap.add_argument(
        "--threads", type=int, default=1, help="torch threads (vLLM's CPU worker uses its bound cores)"
    )
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--results", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    load_before = _load()
    rows = measure(args.preset, args.layers, args.threads, args.repeats, args.seed)
    print(
        f"\nvLLM CPU fused MoE ({ISA}), preset={args.preset}, {args.threads} thread(s), cache-cold over "
        f"{args.layers} weight sets"
    )
    print(
        "| tokens | ms per MoE layer | x T=1 | distinct experts | (token, expert) pairs | GB/s of distinct "
        "experts |"
    )
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['tokens']} | {r['ms_per_layer']:.3f} | {r['x_t1']:.2f} | {r['distinct_experts']} | "
            f"{r['token_expert_pairs']} | {r['gb_s_distinct']:.1f} |"
        )
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(
        json.dumps(
            {
                "preset": args.preset,
                "isa": ISA,
                "threads": args.threads,
                "layers": args.layers,
                "repeats": args.repeats,
                "machine": platform.processor() or platform.machine(),
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "load_before": load_before,
                "load_after": _load(),
                "rows": rows,
            },
            indent=2,
        )
    )
    print(f"wrote {args.results}")
    return 0


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())
