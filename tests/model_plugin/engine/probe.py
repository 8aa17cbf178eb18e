"""Runs one vLLM engine over a prompt set and dumps what tests compare, as JSON.

A separate process per engine configuration: vLLM's offline engine spawns workers, so it cannot
run inside pytest's process, and each configuration (plugin on/off, dtype, speculative config)
needs a fresh engine anyway.

    python -m tests.model_plugin.engine.probe --model DIR --out FILE [--dtype float32] [--max-tokens 32]
        [--prompt-logprobs 5] [--speculative-config JSON] [--prompts-file FILE]
"""

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--prompts-file", required=True, help="JSON list of prompt strings")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--logprobs", type=int, default=5)
    ap.add_argument("--prompt-logprobs", type=int, default=None)
    ap.add_argument("--speculative-config", default=None)
    ap.add_argument("--hf-overrides", default=None)
    ap.add_argument("--enforce-eager", action="store_true")
    ap.add_argument("--trust-remote-code", action="store_true")
    args = ap.parse_args(argv)

    from vllm import LLM, SamplingParams

    kwargs = {
        "model": args.model,
        "dtype": args.dtype,
        "max_model_len": 1024,
        "seed": 0,
        "enforce_eager": args.enforce_eager,
        "disable_log_stats": False,
        "trust_remote_code": args.trust_remote_code,
    }
    if args.speculative_config:
        kwargs["speculative_config"] = json.loads(args.speculative_config)
    if args.hf_overrides:
        kwargs["hf_overrides"] = json.loads(args.hf_overrides)
    llm = LLM(**kwargs)
    with open(args.prompts_file) as f:
        prompts = json.load(f)
    params = SamplingParams(
        temperature=0.0,
        max_tokens=args.max_tokens,
        ignore_eos=True,
        logprobs=args.logprobs,
        prompt_logprobs=args.prompt_logprobs,
    )
    results = []
    for out in llm.generate(prompts, params):
        comp = out.outputs[0]
        results.append(
            {
                "prompt_token_ids": list(out.prompt_token_ids),
                "prompt_logprobs": [
                    None if p is None else {str(t): lp.logprob for t, lp in p.items()}
                    for p in (out.prompt_logprobs or [])
                ],
                "token_ids": list(comp.token_ids),
                "logprobs": [
                    {str(t): lp.logprob for t, lp in step.items()} for step in (comp.logprobs or [])
                ],
            }
        )
    metrics = {}
    for m in llm.get_metrics():
        if m.name.startswith("vllm:spec_decode"):
            metrics[m.name] = getattr(m, "value", None) if not hasattr(m, "values") else list(m.values)
    with open(args.out, "w") as f:
        json.dump({"results": results, "metrics": metrics}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
