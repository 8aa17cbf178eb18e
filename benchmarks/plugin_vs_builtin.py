"""Our AntAngelMed plugin against vLLM's built-in BailingMoeV2: same checkpoint, settings and machine.

    .venv/bin/python benchmarks/plugin_vs_builtin.py [--preset small] [--rounds 2] [--dtype bfloat16]

Each round starts one engine per implementation (alternating, so drift on a shared machine hits
both alike) and measures, with greedy decoding:
  prefill tok/s   prompts of --prompt-len random tokens, max_tokens=1 (batch 1: one request at a
                  time; batch 16: sixteen submitted together)
  decode tok/s    --decode-tokens new tokens after a 16-token prompt (prefill time excluded by
                  subtracting a max_tokens=1 run of the same batch)
The best round per cell is kept (least disturbed by other load). Prints a table and writes
benchmarks/results/plugin_vs_builtin.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "plugin_vs_builtin.json"
CELLS = [("prefill", 1), ("prefill", 16), ("decode", 1), ("decode", 16)]


def _worker(args: argparse.Namespace) -> None:
    """Runs inside a fresh process: one engine, all cells, JSON written to --result."""
    import random

    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt

    llm = LLM(
        model=args.model,
        dtype=args.dtype,
        max_model_len=args.prompt_len + args.decode_tokens + 64,
        seed=0,
        trust_remote_code=not args.plugin,
        enable_prefix_caching=False,
        max_num_seqs=16,
        max_num_batched_tokens=16 * args.prompt_len,
    )
    vocab = llm.get_tokenizer().vocab_size
    rng = random.Random(0)

    def prompts(n: int, length: int) -> list[TokensPrompt]:
        return [
            TokensPrompt(prompt_token_ids=[rng.randrange(10, vocab) for _ in range(length)]) for _ in range(n)
        ]

    def timed(batch: list[TokensPrompt], max_tokens: int, sequential: bool) -> float:
        params = SamplingParams(temperature=0.0, max_tokens=max_tokens, ignore_eos=True)
        start = time.perf_counter()
        if sequential:
            for p in batch:
                llm.generate([p], params, use_tqdm=False)
        else:
            llm.generate(batch, params, use_tqdm=False)
        return time.perf_counter() - start

    timed(prompts(16, args.prompt_len), 4, sequential=False)  # warm-up: compile / allocate
    out = {}
    for kind, batch in CELLS:
        if kind == "prefill":
            n = batch if batch > 1 else 8
            t = min(timed(prompts(n, args.prompt_len), 1, sequential=batch == 1) for _ in range(args.repeats))
            out[f"{kind}_b{batch}"] = n * args.prompt_len / t
        else:
            reqs = prompts(batch, 16)
            full = min(timed(reqs, args.decode_tokens + 1, False) for _ in range(args.repeats))
            first = min(timed(reqs, 1, False) for _ in range(args.repeats))
            out[f"{kind}_b{batch}"] = batch * args.decode_tokens / max(full - first, 1e-9)
    Path(args.result).write_text(json.dumps(out))


def _run_engine(model: Path, plugin: bool, args: argparse.Namespace, result: Path) -> dict[str, float]:
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE=os.environ.get("VLLM_CPU_KVCACHE_SPACE", "2"))
    if not plugin:
        env["VLLM_PLUGINS"] = "none"
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        "--model",
        str(model),
        "--dtype",
        args.dtype,
        "--prompt-len",
        str(args.prompt_len),
        "--decode-tokens",
        str(args.decode_tokens),
        "--repeats",
        str(args.repeats),
        "--result",
        str(result),
    ] + (["--plugin"] if plugin else [])
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"engine run failed ({'plugin' if plugin else 'built-in'}):\n{proc.stderr[-5000:]}")
    return json.loads(result.read_text())


def _checkpoints(args: argparse.Namespace, tmp: Path) -> tuple[Path, Path]:
    from model_plugin.checkpoints.builtin_view import write_builtin_view

    model = Path(args.model) if args.model else tmp / args.preset
    if not args.model:
        subprocess.run(
            [sys.executable, "-m", "model_plugin.checkpoints", "--preset", args.preset, "--out", str(model)],
            cwd=REPO,
            check=True,
        )
    return model, write_builtin_view(model, tmp / "builtin-view")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="small")
    ap.add_argument("--model", help="use this checkpoint instead of generating --preset")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--prompt-len", type=int, default=256)
    ap.add_argument("--decode-tokens", type=int, default=64)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--plugin", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return _worker(args)

    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        model, builtin_view = _checkpoints(args, Path(tmp))
        runs: dict[str, list[dict[str, float]]] = {"plugin": [], "builtin": []}
        for r in range(args.rounds):
            for name in ("plugin", "builtin") if r % 2 == 0 else ("builtin", "plugin"):
                print(f"round {r + 1}/{args.rounds}: {name} ...", file=sys.stderr, flush=True)
                runs[name].append(
                    _run_engine(
                        model if name == "plugin" else builtin_view,
                        name == "plugin",
                        args,
                        Path(tmp) / f"{name}-{r}.json",
                    )
                )

    best = {name: {cell: max(run[cell] for run in rs) for cell in rs[0]} for name, rs in runs.items()}
    rows = []
    print(
        f"\nAntAngelMed plugin vs vLLM built-in, preset={args.model or args.preset}, dtype={args.dtype}, "
        f"prompt={args.prompt_len}, decode={args.decode_tokens}, best of {args.rounds} rounds"
    )
    print(f"{'metric':<22}{'plugin tok/s':>14}{'built-in tok/s':>16}{'ratio':>8}")
    for kind, batch in CELLS:
        cell = f"{kind}_b{batch}"
        ratio = best["plugin"][cell] / best["builtin"][cell]
        rows.append(
            {"metric": cell, "plugin": best["plugin"][cell], "builtin": best["builtin"][cell], "ratio": ratio}
        )
        print(
            f"{kind + ' batch ' + str(batch):<22}{best['plugin'][cell]:>14.1f}"
            f"{best['builtin'][cell]:>16.1f}{ratio:>8.3f}"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "machine": f"{platform.machine()} {os.cpu_count()} cpus",
                "preset": args.model or args.preset,
                "dtype": args.dtype,
                "prompt_len": args.prompt_len,
                "decode_tokens": args.decode_tokens,
                "rounds": runs,
                "rows": rows,
            },
            indent=2,
        )
    )
    print(f"\nwrote {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
