"""Block-wise FP8 twin: quantize/dequantize math (ragged edge blocks included) and the --fp8
checkpoint's layout against its BF16 twin."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from model_plugin.checkpoints import get_preset, is_quantizable_linear, write_checkpoint
from model_plugin.checkpoints.fp8 import (
    FP8_MAX,
    dequantize_block_fp8,
    quantize_block_fp8,
    scale_shape,
)

E4M3_REL = 2.0**-4  # 3 mantissa bits: round-to-nearest error <= half a step of 2^-3
E4M3_SUBNORMAL_STEP = 2.0**-9


def within_fp8_rounding(w: torch.Tensor, deq: torch.Tensor, scale_inv: torch.Tensor) -> bool:
    rows, cols = w.shape
    scale = scale_inv.repeat_interleave(128, 0).repeat_interleave(128, 1)[:rows, :cols]
    bound = E4M3_REL * w.abs() + 0.5 * E4M3_SUBNORMAL_STEP * scale + 1e-12
    return bool(((deq - w).abs() <= bound).all())


@pytest.mark.parametrize("shape", [(128, 128), (256, 512), (200, 300), (64, 130), (1, 1)])
def test_round_trip_within_fp8_rounding(shape: tuple[int, int]) -> None:
    w = torch.randn(shape, generator=torch.Generator().manual_seed(0)) * 0.05
    q, s = quantize_block_fp8(w)
    assert q.dtype == torch.float8_e4m3fn and q.shape == w.shape
    assert s.dtype == torch.float32 and tuple(s.shape) == scale_shape(shape)
    deq = dequantize_block_fp8(q, s)
    assert deq.dtype == torch.float32
    assert within_fp8_rounding(w, deq, s)
    # Not a no-op: FP8 really rounds.
    assert not torch.equal(deq, w) or shape == (1, 1)


def test_ragged_edge_blocks_have_their_own_scale() -> None:
    w = torch.randn(200, 300, generator=torch.Generator().manual_seed(1))
    w[128:, 256:] *= 1000  # the bottom-right ragged block is much larger
    q, s = quantize_block_fp8(w)
    assert s.shape == (2, 3)
    assert s[1, 2] == pytest.approx(float(w[128:, 256:].abs().max()) / FP8_MAX, rel=1e-6)
    assert s[0, 0] == pytest.approx(float(w[:128, :128].abs().max()) / FP8_MAX, rel=1e-6)
    # Each block's largest magnitude lands on FP8's max, nothing saturates.
    assert float(q[128:, 256:].float().abs().max()) == FP8_MAX
    assert float(q[:128, :128].float().abs().max()) == FP8_MAX
    assert within_fp8_rounding(w, dequantize_block_fp8(q, s), s)


def test_zero_block_and_bf16_output() -> None:
    w = torch.zeros(130, 128)
    w[128:] = 1.0
    q, s = quantize_block_fp8(w)
    assert s[0, 0] == 1.0 and torch.count_nonzero(q[:128].float()) == 0
    deq = dequantize_block_fp8(q, s, dtype=torch.bfloat16)
    assert deq.dtype == torch.bfloat16 and torch.equal(deq.float(), w)


def test_dequantize_rejects_wrong_scale_shape() -> None:
    q, s = quantize_block_fp8(torch.randn(200, 300))
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        dequantize_block_fp8(q, s[:, :2])
    with pytest.raises(ValueError, match="2-D"):
        dequantize_block_fp8(q.reshape(-1), s)
    # A custom block size is honoured.
    q64, s64 = quantize_block_fp8(torch.randn(200, 300), block=(64, 64))
    assert s64.shape == (4, 5)
    assert dequantize_block_fp8(q64, s64, (64, 64)).shape == (200, 300)


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("fp8")
    bf16 = write_checkpoint(get_preset("tiny"), root / "bf16", seed=5)
    fp8 = write_checkpoint(get_preset("tiny"), root / "fp8", seed=5, fp8=True)
    return bf16, fp8


def tensors(path: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(path / "model.safetensors"), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118


def test_fp8_config(twins: tuple[Path, Path]) -> None:
    bf16_cfg = json.loads((twins[0] / "config.json").read_text())
    cfg = json.loads((twins[1] / "config.json").read_text())
    assert cfg.pop("quantization_config") == {
        "quant_method": "fp8", "activation_scheme": "dynamic", "weight_block_size": [128, 128],
        "fmt": "e4m3"}
    assert cfg == bf16_cfg  # otherwise the same model


def test_fp8_twin_layout_and_values(twins: tuple[Path, Path]) -> None:
    ref, fp8 = tensors(twins[0]), tensors(twins[1])
    scales = {n for n in fp8 if n.endswith(".weight_scale_inv")}
    assert set(fp8) - scales == set(ref)
    quantized = {n.removesuffix("_scale_inv") for n in scales}
    # Exactly the linear projections: attention qkv/dense, dense MLP, experts, shared experts.
    leaves = ("query_key_value", "dense", "gate_proj", "up_proj", "down_proj")
    want = {n for n in ref if n.endswith(".weight") and n.split(".")[-2] in leaves}
    assert quantized == want and all(is_quantizable_linear(n) for n in want)
    assert any(".experts." in n for n in quantized) and any("shared_experts" in n for n in quantized)
    for name, t in fp8.items():
        if name in quantized:
            assert t.dtype == torch.float8_e4m3fn, name
            s = fp8[name + "_scale_inv"]
            assert s.dtype == torch.float32 and tuple(s.shape) == scale_shape(tuple(t.shape)), name
            w = ref[name].float()
            assert within_fp8_rounding(w, dequantize_block_fp8(t, s), s), name
        elif name not in scales:
            # Router gate, expert_bias, norms, embeddings and lm_head are untouched.
            assert torch.equal(t, ref[name]) and t.dtype == ref[name].dtype, name


def test_reference_runs_fp8_twin(twins: tuple[Path, Path]) -> None:
    from model_plugin.reference import ReferenceModel

    ids = torch.randint(5, 1900, (32,), generator=torch.Generator().manual_seed(0))
    a = ReferenceModel.from_pretrained(twins[0]).forward_with_states(ids)
    b = ReferenceModel.from_pretrained(twins[1]).forward_with_states(ids)
    # Where the FP8 model routes like BF16, logits stay within FP8 weight rounding of BF16.
    same = torch.ones(len(ids), dtype=torch.bool)
    for layer, chosen in a.expert_ids.items():
        same &= (chosen.sort(-1).values == b.expert_ids[layer].sort(-1).values).all(-1)
    assert same.float().mean() > 0.5
    err = (a.logits - b.logits).abs().amax(-1)
    # Measured: ~6-9% of the largest |logit| (random weights, 3 layers); bound at 12%.
    assert err[same].max() < 0.12 * a.logits.abs().max()
    assert not torch.equal(a.logits, b.logits)


def test_cli_fp8(tmp_path: Path) -> None:
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "model_plugin.checkpoints", "--preset", "tiny",
                          "--fp8", "--out", str(tmp_path / "q")], check=False, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    cfg = json.loads((tmp_path / "q" / "config.json").read_text())
    assert cfg["quantization_config"]["weight_block_size"] == [128, 128]
