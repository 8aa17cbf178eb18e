"""The CPU fallback for block-FP8 checkpoints: config stash, streaming dequantization."""

import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from model_plugin import fp8
from model_plugin.config import AntAngelMedConfig
from tests.model_plugin.engine.support import REPO

QCONFIG = {
    "quant_method": "fp8",
    "activation_scheme": "dynamic",
    "weight_block_size": [128, 128],
    "fmt": "e4m3",
}


@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    root = tmp_path_factory.mktemp("fp8")
    for name, extra in (("bf16", []), ("fp8", ["--fp8"])):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "model_plugin.checkpoints",
                "--preset",
                "tiny",
                "--out",
                str(root / name),
                *extra,
            ],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
    return root / "bf16", root / "fp8"


@pytest.mark.parametrize("mode, stashed", [("always", True), ("never", False)])
def test_config_moves_quantization_config_aside_only_when_falling_back(monkeypatch, mode, stashed):
    monkeypatch.setenv(fp8.FALLBACK_ENV, mode)
    c = AntAngelMedConfig(quantization_config=dict(QCONFIG))
    assert (getattr(c, "quantization_config", None) is None) == stashed
    assert fp8.dequantize_on_load(c) == stashed
    assert fp8.checkpoint_is_block_fp8(c)
    assert fp8.block_size(c) == (128, 128)


def test_auto_mode_dequantizes_on_this_cpu_machine(monkeypatch):
    monkeypatch.delenv(fp8.FALLBACK_ENV, raising=False)
    assert fp8.should_dequantize(QCONFIG) is True
    assert fp8.should_dequantize({"quant_method": "fp8"}) is False  # per-tensor FP8 is not block-wise
    assert fp8.should_dequantize(None) is False


def test_bad_fallback_mode_is_refused(monkeypatch):
    monkeypatch.setenv(fp8.FALLBACK_ENV, "sometimes")
    with pytest.raises(ValueError, match=fp8.FALLBACK_ENV):
        fp8.should_dequantize(QCONFIG)


def test_streamed_dequantization_recovers_bf16_weights_within_fp8_rounding(twins):
    bf16_dir, fp8_dir = twins
    original = load_file(bf16_dir / "model.safetensors")
    stored = load_file(fp8_dir / "model.safetensors")
    assert json.loads((fp8_dir / "config.json").read_text())["quantization_config"]["weight_block_size"] == [
        128,
        128,
    ]
    # Scales arrive after their weights for some tensors and before for others: both orders must pair.
    items = sorted(stored.items(), key=lambda kv: (kv[0].endswith("scale_inv"), kv[0]))
    items = items[::2] + items[1::2]
    restored = dict(fp8.dequantized(iter(items)))
    assert set(restored) == set(original)
    quantized = [n for n in original if n + "_scale_inv" in stored]
    assert len(quantized) > 20
    for name in quantized:
        assert restored[name].dtype == torch.bfloat16
        want, got = original[name].float(), restored[name].float()
        # e4m3 keeps 3 mantissa bits: relative error <= 2^-4 of the block's scale, plus BF16 rounding.
        tol = 0.07 * want.abs().max().item() + 1e-6
        assert (got - want).abs().max().item() <= tol, name
    for name in set(original) - set(quantized):
        assert torch.equal(restored[name], original[name]), name  # router, norms, embeddings untouched


def test_unpaired_fp8_tensor_is_an_error():
    weight = torch.zeros(4, 4).to(torch.float8_e4m3fn)
    with pytest.raises(ValueError, match="without their weight/scale twin"):
        list(fp8.dequantized(iter([("model.layers.0.attention.dense.weight", weight)])))
