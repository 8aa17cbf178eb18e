"""Runs greedy MTP speculative decoding in a real vLLM engine and records every MTP draft call.

A forward hook on the loaded draft (our ``AntAngelMedMTP``, reached through the worker's
drafter) keeps each call's inputs (token ids, positions, the target's hidden states) and the
logits the draft gives for every row, so a test can compare them with the pure-PyTorch
reference. Outputs and ``vllm:spec_decode_*`` counters are saved beside them.

    python -m tests.model_plugin.mtp.draft_probe --model DIR --draft DIR --prompts-file FILE \\
        --out FILE.pt [-k 1]
"""

import argparse
import importlib
import json
import os
import sys
from pathlib import Path


def _record(calls, module, _args, kwargs, output):
    calls.append(
        {
            "input_ids": kwargs["input_ids"].detach().cpu().clone(),
            "positions": kwargs["positions"].detach().cpu().clone(),
            "hidden_states": kwargs["hidden_states"].detach().float().cpu().clone(),
            "logits": module.compute_logits(output).detach().float().cpu().clone(),
        }
    )


def _install(worker) -> str:
    import functools

    draft = worker.model_runner.drafter.model
    draft._mtp_calls = []
    draft.register_forward_hook(functools.partial(_record, draft._mtp_calls), with_kwargs=True)
    return type(draft).__name__


def _fetch(worker) -> list[dict]:
    return worker.model_runner.drafter.model._mtp_calls


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--draft", required=True)
    ap.add_argument("--prompts-file", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("-k", type=int, default=1, help="num_speculative_tokens")
    ap.add_argument("--max-tokens", type=int, default=32)
    args = ap.parse_args(argv)

    # collective_rpc ships these functions to the worker; this process talks to its own engine only.
    os.environ["VLLM_ALLOW_INSECURE_SERIALIZATION"] = "1"
    import torch
    from vllm import LLM, SamplingParams

    llm = LLM(
        model=args.model,
        dtype="float32",
        max_model_len=1024,
        seed=0,
        enforce_eager=True,
        disable_log_stats=False,
        speculative_config={"method": "mtp", "model": args.draft, "num_speculative_tokens": args.k},
    )
    # Ship the hooks by their importable name: under `python -m` this file is __main__, which the
    # worker process cannot import.
    probe = importlib.import_module("tests.model_plugin.mtp.draft_probe")
    [draft_class] = llm.collective_rpc(probe._install)
    prompts = json.loads(Path(args.prompts_file).read_text())
    params = SamplingParams(temperature=0.0, max_tokens=args.max_tokens, ignore_eos=True)
    results = [
        {"prompt_token_ids": list(out.prompt_token_ids), "token_ids": list(out.outputs[0].token_ids)}
        for out in llm.generate(prompts, params)
    ]
    [calls] = llm.collective_rpc(probe._fetch)
    metrics = {
        m.name: (list(m.values) if hasattr(m, "values") else m.value)
        for m in llm.get_metrics()
        if m.name.startswith("vllm:spec_decode")
    }
    torch.save({"draft_class": draft_class, "results": results, "metrics": metrics, "calls": calls}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
