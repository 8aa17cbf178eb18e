"""Captures the EAGLE3 aux hidden states our model returns inside a real vLLM engine.

Through `LLM.apply_model` it asks the loaded model for aux states at `--layers` (our
`set_aux_hidden_state_layers`, shift included) and hooks the model's forward to keep them
(handing vLLM's runner the plain hidden states, as when no EAGLE3 draft is attached); then it runs
one prefill of `--prompt-ids` and saves what was captured.

    python -m tests.model_plugin.engine.aux_probe --model DIR --layers 0,1,3 --prompt-ids 1,2,3 \\
        --out FILE.safetensors
"""

import argparse
import functools
import json
import os
import sys


def _keep_aux(store, _module, _inputs, output):
    hidden, aux = output
    store.append([a.detach().float().cpu().clone() for a in aux])
    return hidden


def _install_capture(layers, model):
    model.set_aux_hidden_state_layers(tuple(layers))
    model._aux_captured = []
    model.register_forward_hook(functools.partial(_keep_aux, model._aux_captured))
    return model.model.aux_hidden_state_layers


def _fetch(model):
    return model._aux_captured


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--layers", required=True, help="comma-separated vLLM aux layer ids")
    ap.add_argument("--prompt-ids", required=True, help="comma-separated token ids")
    ap.add_argument("--out", required=True)
    ap.add_argument("--hf-overrides", default=None)
    args = ap.parse_args(argv)

    # apply_model ships these functions to the worker; this test process talks to its own engine only.
    os.environ["VLLM_ALLOW_INSECURE_SERIALIZATION"] = "1"
    import torch
    from safetensors.torch import save_file
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt

    llm = LLM(
        model=args.model,
        dtype="float32",
        enforce_eager=True,
        max_model_len=512,
        seed=0,
        enable_prefix_caching=False,
        hf_overrides=json.loads(args.hf_overrides) if args.hf_overrides else None,
    )
    layers = [int(x) for x in args.layers.split(",")]
    # Ship functions by their importable name (this file runs as __main__ under `python -m`).
    from tests.model_plugin.engine import aux_probe  # noqa: PLW0406

    [active] = llm.apply_model(functools.partial(aux_probe._install_capture, layers))
    ids = [int(x) for x in args.prompt_ids.split(",")]
    llm.generate([TokensPrompt(prompt_token_ids=ids)], SamplingParams(max_tokens=1, temperature=0.0))
    [captured] = llm.apply_model(aux_probe._fetch)
    prefill = next(step for step in captured if step[0].shape[0] == len(ids))
    tensors = {f"layer_{layer}": t for layer, t in zip(active, prefill)}
    tensors["active_layers"] = torch.tensor(list(active))
    save_file(tensors, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
