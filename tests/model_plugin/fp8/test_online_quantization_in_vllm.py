"""Online dynamic FP8 (``--quantization fp8``) on the BF16 tiny checkpoint, through real vLLM engines.

vLLM quantizes at load, per tensor: every linear layer our model builds with the quant config
(attention ``query_key_value`` and ``dense``, the dense layer's MLP, the shared experts) and the
routed experts (one scale per expert for w13 and one for w2), each scale amax / 448. The router
gate, ``expert_bias``, norms, embedding and ``lm_head`` stay as in the checkpoint.

What vLLM's CPU build cannot execute (details in tests/model_plugin/fp8/online_probe.py):
- the weight cast itself: ``_C::static_scaled_fp8_quant`` is declared without a kernel; the probe
  registers a plain-torch stand-in for it (test harness; GPUs run vLLM's CUDA kernel);
- anything with FP8 routed experts: there is no FP8 MoE backend (``Fp8MoeBackend.NONE``, "Unsupported
  FP8 MoE backend: NONE"), so that model is checked at the level of weights and scales only.

Hence two FP8 engines:
- ``full`` (``--quantization fp8``): every quantized layer, routed experts included, is compared
  with the checkpoint: dtype, scale = amax / 448, and dequantized weight = BF16 weight within FP8
  rounding (element by element for the experts; as a multiset for linear layers, whose layout is the
  CPU kernel's choice). No forward (there is no kernel for the experts).
- ``runnable`` (``--quantization fp8`` with the routed experts left out via
  ``--quantization-config '{"ignore": ["*.mlp.experts*"]}'``): everything else runs FP8 on the CPU
  (vLLM's ``torch._scaled_mm`` path), generates greedily, and its logprobs are compared with the
  BF16 model's within a stated tolerance.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from model_plugin.reference import ReferenceModel
from tests.model_plugin.engine.support import (
    MAX_TOKENS,
    PROMPTS,
    REPO,
    engine_env,
    logprob_gaps_to_reference,
    run_probe,
)

pytestmark = pytest.mark.vllm

FP8_MAX = 448.0  # largest finite float8_e4m3fn
# Rounding bound for one element w of a tensor quantized with scale s: e4m3 keeps 3 mantissa bits, so
# normal values (|w|/s >= 2^-6) in [2^e, 2^(e+1)) are 2^(e-3) apart, so round-to-nearest is off by
# at most 2^(e-4) <= 2^-4 |w|; below 2^-6 (subnormals) the spacing is 2^-9 in scaled units, so the
# error is at most 2^-10 s. The factor covers float32 rounding of w * (1/s) and of q * s.
REL_STEP, SUBNORMAL_ABS, ARITH_SLACK = 2.0**-4, 2.0**-10, 1 + 1e-5
FP8_LINEAR = "Fp8PerTensorOnlineLinearMethod"
FP8_MOE = "Fp8PerTensorOnlineMoEMethod"
DENSE_MLP, ATTENTION, SHARED, ROUTED = "dense MLP", "attention", "shared experts", "routed experts"


def _run_fp8_probe(model: Path, out: Path, mode: str) -> dict:
    prompts = out.with_suffix(".prompts.json")
    prompts.write_text(json.dumps(PROMPTS, ensure_ascii=False))
    cmd = [
        sys.executable,
        "-m",
        "tests.model_plugin.fp8.online_probe",
        "--model",
        str(model),
        "--out",
        str(out),
        "--mode",
        mode,
        "--prompts-file",
        str(prompts),
        "--prompt-logprobs",
        "5",
        "--max-tokens",
        str(MAX_TOKENS),
    ]
    proc = subprocess.run(
        cmd, cwd=REPO, env=engine_env(), capture_output=True, text=True, timeout=600, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"fp8 probe failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
        )
    return torch.load(out, weights_only=True)


@pytest.fixture(scope="module")
def checkpoint(tiny_checkpoint) -> dict[str, torch.Tensor]:
    tensors = {}
    for f in sorted(Path(tiny_checkpoint).glob("*.safetensors")):
        tensors.update(load_file(f))
    return tensors


@pytest.fixture(scope="module")
def full(tiny_checkpoint, tmp_path_factory):
    return _run_fp8_probe(tiny_checkpoint, tmp_path_factory.mktemp("fp8online") / "full.pt", "full")


@pytest.fixture(scope="module")
def runnable(tiny_checkpoint, tmp_path_factory):
    dump = _run_fp8_probe(tiny_checkpoint, tmp_path_factory.mktemp("fp8online") / "runnable.pt", "runnable")
    assert all(len(res["token_ids"]) == MAX_TOKENS for res in dump["results"])
    return dump


def _layers(ck: dict) -> list[tuple[str, bool]]:
    """(prefix, is_moe) per decoder layer, read off the checkpoint."""
    n = 1 + max(int(name.split(".")[2]) for name in ck if name.startswith("model.layers."))
    return [(f"model.layers.{i}", f"model.layers.{i}.mlp.gate.weight" in ck) for i in range(n)]


def expected_linear(ck: dict) -> dict[str, tuple[str, torch.Tensor]]:
    """Module -> (kind, BF16 weight [out, in] with our fusion applied) for every FP8 linear layer."""
    out = {}
    for p, moe in _layers(ck):
        out[f"{p}.attention.query_key_value"] = (ATTENTION, ck[f"{p}.attention.query_key_value.weight"])
        out[f"{p}.attention.dense"] = (ATTENTION, ck[f"{p}.attention.dense.weight"])
        mlp, kind = (f"{p}.mlp.shared_experts", SHARED) if moe else (f"{p}.mlp", DENSE_MLP)
        out[f"{mlp}.gate_up_proj"] = (
            kind,
            torch.cat([ck[f"{mlp}.gate_proj.weight"], ck[f"{mlp}.up_proj.weight"]]),
        )
        out[f"{mlp}.down_proj"] = (kind, ck[f"{mlp}.down_proj.weight"])
    return out


def expected_experts(ck: dict) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Routed-experts module -> (w13 [E, 2I, H] = gate | up per expert, w2 [E, H, I])."""
    out = {}
    for p, moe in _layers(ck):
        if moe:
            n = sum(
                1
                for name in ck
                if name.startswith(f"{p}.mlp.experts.") and name.endswith(".down_proj.weight")
            )
            e = [f"{p}.mlp.experts.{j}" for j in range(n)]
            w13 = torch.stack(
                [torch.cat([ck[f"{x}.gate_proj.weight"], ck[f"{x}.up_proj.weight"]]) for x in e]
            )
            out[f"{p}.mlp.experts.routed_experts"] = (
                w13,
                torch.stack([ck[f"{x}.down_proj.weight"] for x in e]),
            )
    return out


def unquantized(ck: dict) -> dict[str, torch.Tensor]:
    """Parameters that must equal the checkpoint bit for bit (the router gate is checked by output)."""
    keep = (
        "layernorm.weight",
        "model.norm.weight",
        "word_embeddings.weight",
        "lm_head.weight",
        "expert_bias",
    )
    return {name: t for name, t in ck.items() if name.endswith(keep)}


def check_fp8(
    q: torch.Tensor, scale: torch.Tensor, ref: torch.Tensor, what: str, layout: bool = True
) -> float:
    """One per-tensor-quantized weight against its BF16 source; returns its max relative error.

    layout=False compares the values as a multiset (both sides sorted): rounding to FP8 is monotone, so
    a permutation of the quantized checkpoint, sorted, equals the sorted checkpoint quantized, element
    for element, and the same bound applies.
    """
    assert q.dtype == torch.float8_e4m3fn, f"{what}: {q.dtype}, not float8_e4m3fn"
    assert q.numel() == ref.numel(), f"{what}: {tuple(q.shape)} vs checkpoint {tuple(ref.shape)}"
    # one scale per tensor; vLLM may repeat it once per fused shard, always the same value
    assert scale.dtype == torch.float32 and bool((scale == scale.flatten()[0]).all()), (
        f"{what}: scale {scale.dtype} {scale.flatten().tolist()}"
    )
    w, s = ref.float(), scale.float().flatten()[0]
    expected_scale = w.abs().amax() / FP8_MAX
    assert torch.isclose(s, expected_scale, rtol=1e-6, atol=0), (
        f"{what}: scale {s.item()} != amax/448 {expected_scale}"
    )
    if layout:
        assert q.shape == ref.shape, f"{what}: {tuple(q.shape)} vs checkpoint {tuple(ref.shape)}"
    else:
        q, w = q.float().flatten().sort().values, w.flatten().sort().values
    err = (q.float() * s - w).abs()
    bound = (REL_STEP * w.abs() + SUBNORMAL_ABS * s) * ARITH_SLACK
    worst = int((err - bound).argmax())
    assert (err <= bound).all(), (
        f"{what}: element {worst} dequantizes to {(q.float() * s).flatten()[worst]}, "
        f"checkpoint {w.flatten()[worst]}, bound {bound.flatten()[worst]}"
    )
    normal = w.abs() >= s * 2.0**-6
    return (err[normal] / w.abs()[normal]).max().item()


def check_linear_layers(dump: dict, ck: dict) -> dict[str, float]:
    """Every FP8 linear layer; returns the max relative error per layer kind."""
    worst: dict[str, float] = {}
    params = dump["params"]
    for module, (kind, ref) in expected_linear(ck).items():
        assert dump["methods"].get(module) == FP8_LINEAR, f"{module}: {dump['methods'].get(module)}"
        # vLLM's CPU build stores a per-tensor FP8 linear weight in the layout of the kernel it picks for
        # the CPU it runs on: [in, out] for torch._scaled_mm, [out, in], or prepacked in interleaved blocks
        # (all seen). So the values are compared as a multiset here; that the kernel reads its layout
        # right is shown by the runnable engine's logprobs matching the BF16 model's.
        q = params[f"{module}.weight"]
        rel = check_fp8(q, params[f"{module}.weight_scale"], ref, module, layout=False)
        worst[kind] = max(worst.get(kind, 0.0), rel)
    return worst


def check_unquantized(dump: dict, ck: dict) -> None:
    methods, params = dump["methods"], dump["params"]
    for name, ref in unquantized(ck).items():
        assert params[name].dtype == ref.dtype and torch.equal(params[name], ref), (
            f"{name} differs from the checkpoint"
        )
    for module in ("model.word_embeddings", "lm_head"):
        assert methods[module] == "UnquantizedEmbeddingMethod", f"{module}: {methods[module]}"
    for p, moe in _layers(ck):
        if not moe:
            continue
        gate = f"{p}.mlp.gate"
        assert methods[gate] == "UnquantizedLinearMethod", f"{gate}: {methods[gate]}"
        probe = dump["gates"][gate]
        # float32 router: the gate's output is x @ W.T in float32 with W the checkpoint's weight.
        assert probe["dtype"] == "torch.float32"
        expected = probe["x"].float() @ ck[f"{gate}.weight"].float().t()
        torch.testing.assert_close(probe["out"], expected, rtol=1e-5, atol=1e-6, msg=f"{gate} output")


def test_full_fp8_quantizes_exactly_the_intended_layers(full, checkpoint):
    fp8 = {m for m, meth in full["methods"].items() if meth.startswith("Fp8")}
    assert fp8 == set(expected_linear(checkpoint)) | set(expected_experts(checkpoint))
    assert all(full["methods"][m] == FP8_MOE for m in expected_experts(checkpoint))
    # Nothing else holds a float8 tensor, and every parameter is one the checks below look at.
    params = full["params"]
    fp8_params = {n for n, t in params.items() if t.dtype == torch.float8_e4m3fn}
    assert fp8_params == (
        {f"{m}.weight" for m in expected_linear(checkpoint)}
        | {f"{m}.{w}_weight" for m in expected_experts(checkpoint) for w in ("w13", "w2")}
    )
    checked = (
        fp8_params
        | {f"{m}.weight_scale" for m in expected_linear(checkpoint)}
        | {f"{m}.{w}_weight_scale" for m in expected_experts(checkpoint) for w in ("w13", "w2")}
        | set(unquantized(checkpoint))
        | {f"{p}.mlp.gate.weight" for p, moe in _layers(checkpoint) if moe}
    )
    assert set(params) == checked


def test_full_fp8_weights_equal_bf16_within_fp8_rounding(full, checkpoint):
    worst = check_linear_layers(full, checkpoint)
    params = full["params"]
    for module, (w13_ref, w2_ref) in expected_experts(checkpoint).items():
        for name, ref in (("w13", w13_ref), ("w2", w2_ref)):
            q, scales = params[f"{module}.{name}_weight"], params[f"{module}.{name}_weight_scale"]
            assert scales.shape == (ref.shape[0],), (
                f"{module}.{name}: scales {tuple(scales.shape)}, not one per expert"
            )
            for e in range(ref.shape[0]):
                rel = check_fp8(q[e], scales[e], ref[e], f"{module}.{name}[expert {e}]")
                worst[f"{ROUTED} {name}"] = max(worst.get(f"{ROUTED} {name}", 0.0), rel)
    print(
        "\nonline FP8, max relative error per layer kind (normal range; bound 2^-4 = 0.0625): "
        + ", ".join(f"{k} {v:.4f}" for k, v in sorted(worst.items()))
    )
    assert set(worst) == {ATTENTION, DENSE_MLP, SHARED, f"{ROUTED} w13", f"{ROUTED} w2"}


def test_full_fp8_leaves_router_norms_embeddings_and_lm_head_alone(full, checkpoint):
    check_unquantized(full, checkpoint)


def test_runnable_fp8_quantizes_all_but_the_routed_experts(runnable, checkpoint):
    check_linear_layers(runnable, checkpoint)
    check_unquantized(runnable, checkpoint)
    for module, (w13_ref, w2_ref) in expected_experts(checkpoint).items():
        assert runnable["methods"][module] == "UnquantizedFusedMoEMethod"
        # vLLM's CPU MoE backend repacks BF16 experts into its grouped-GEMM layout: same values,
        # other order. So: BF16, and the very multiset of the checkpoint's values.
        for name, ref in (("w13", w13_ref), ("w2", w2_ref)):
            got = runnable["params"][f"{module}.{name}_weight"]
            assert got.dtype == torch.bfloat16, f"{module}.{name}: {got.dtype}"
            assert torch.equal(got.flatten().sort().values, ref.flatten().sort().values), f"{module}.{name}"


@pytest.fixture(scope="module")
def bf16_run(tiny_checkpoint, tmp_path_factory):
    """The same engine settings without quantization: the noise floor of BF16 compute."""
    return run_probe(
        tiny_checkpoint,
        tmp_path_factory.mktemp("bf16") / "bf16.json",
        extra_args=[
            "--enforce-eager",
            "--dtype",
            "bfloat16",
            "--prompt-logprobs",
            "5",
            "--max-tokens",
            str(MAX_TOKENS),
        ],
    )


def test_runnable_fp8_logprobs_stay_within_stated_tolerance_of_bf16(runnable, bf16_run, tiny_checkpoint):
    # Judge: the BF16 checkpoint in float32 math, teacher-forced on each engine's own tokens.
    reference = ReferenceModel.from_pretrained(tiny_checkpoint, dtype=torch.float32)
    gaps, agree = logprob_gaps_to_reference(runnable, reference)
    base_gaps, base_agree = logprob_gaps_to_reference(bf16_run, reference)
    print(
        f"\nonline FP8 (routed experts BF16) vs BF16 weights: median logprob gap {gaps.median():.4f}, "
        f"p90 {gaps.quantile(0.9):.4f}, max {gaps.max():.4f}, top-1 agreement {agree:.3f}; "
        f"BF16 engine: median {base_gaps.median():.4f}, p90 {base_gaps.quantile(0.9):.4f}, "
        f"max {base_gaps.max():.4f}, top-1 {base_agree:.3f}"
    )
    # Stated tolerance for per-tensor e4m3 weights with dynamic per-tensor e4m3 activations and BF16
    # compute on this random, routing-fragile checkpoint (no outlier structure, near-tied logits; an
    # expert flip moves a logprob by O(1)): median gap < 0.6, top-1 agreement >= 65%. Measured on the
    # CPU: median 0.43, top-1 75%; weight-only FP8 in float32 math alone gives median 0.26, top-1 84%.
    assert gaps.median() < 0.6
    assert agree >= 0.65
