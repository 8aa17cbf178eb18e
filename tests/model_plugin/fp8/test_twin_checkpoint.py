"""The generator's block-FP8 twin (``--fp8``, model_plugin.fp8.quantize_for_checkpoint): its
config, its layout against the BF16 twin of the same seed, and the reference running it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from model_plugin.checkpoints import get_preset, is_quantizable_linear, write_checkpoint
from model_plugin.fp8 import dequantize_block_fp8, scale_shape
from tests.model_plugin.fp8.conftest import within_fp8_rounding


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("fp8")
    bf16 = write_checkpoint(get_preset("tiny"), root / "bf16", seed=5)
    fp8 = write_checkpoint(get_preset("tiny"), root / "fp8", seed=5, fp8=True)
    return bf16, fp8


def tensors(path: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(path / "model.safetensors"), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118


def test_twin_config_is_the_bf16_config_plus_the_block_fp8_quantization_config(
    twins: tuple[Path, Path],
) -> None:
    bf16_cfg = json.loads((twins[0] / "config.json").read_text())
    cfg = json.loads((twins[1] / "config.json").read_text())
    assert cfg.pop("quantization_config") == {
        "quant_method": "fp8",
        "activation_scheme": "dynamic",
        "weight_block_size": [128, 128],
        "fmt": "e4m3",
    }
    assert cfg == bf16_cfg  # otherwise the same model


def test_twin_quantizes_exactly_the_linear_projections_within_fp8_rounding(twins: tuple[Path, Path]) -> None:
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


def test_reference_runs_the_twin_within_fp8_tolerance_of_bf16(twins: tuple[Path, Path]) -> None:
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


def test_cli_fp8_flag_writes_a_block_fp8_config(tmp_path: Path) -> None:
    import subprocess
    import sys

    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "model_plugin.checkpoints",
            "--preset",
            "tiny",
            "--fp8",
            "--out",
            str(tmp_path / "q"),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    cfg = json.loads((tmp_path / "q" / "config.json").read_text())
    assert cfg["quantization_config"]["weight_block_size"] == [128, 128]
