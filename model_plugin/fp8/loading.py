"""Loading block-FP8 checkpoints (AntAngelMed-FP8): their tensor table and the CPU fallback.

On GPUs a block-FP8 checkpoint runs on vLLM's FP8 kernels: its ``quantization_config`` reaches
vLLM untouched. vLLM's CPU build has no kernel for it (block FP8 needs AMX), so on a CPU the
config class moves ``quantization_config`` aside (vLLM then builds BF16 layers) and the model's
loader turns each float8 weight and its ``weight_scale_inv`` back into BF16 while streaming. The
same checkpoint therefore loads everywhere; only the kernels differ.

``ANTANGELMED_FP8_FALLBACK`` = ``auto`` (default: dequantize on CPU only), ``always`` or ``never``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

import torch

from model_plugin.checkpoint_schema import TensorSpec

from .format import BLOCK_SIZE, FP8_DTYPE, SCALE_SUFFIX, dequantize_block_fp8, scale_shape

FALLBACK_ENV = "ANTANGELMED_FP8_FALLBACK"
# Where the config class keeps a quantization_config it moved aside for the fallback.
STASH_KEY = "dequantized_quantization_config"


def is_block_fp8(quant_config: dict | None) -> bool:
    return (
        bool(quant_config)
        and quant_config.get("quant_method") == "fp8"
        and bool(quant_config.get("weight_block_size"))
    )


def should_dequantize(quant_config: dict | None) -> bool:
    """Whether a config carrying ``quant_config`` should be served dequantized on this machine."""
    if not is_block_fp8(quant_config):
        return False
    mode = os.environ.get(FALLBACK_ENV, "auto").lower()
    if mode not in ("auto", "always", "never"):
        raise ValueError(f"{FALLBACK_ENV}={mode!r}: expected auto, always or never")
    if mode != "auto":
        return mode == "always"
    from vllm.platforms import current_platform  # only asked for FP8 checkpoints

    return current_platform.is_cpu()


def _quant_config(config) -> dict | None:
    return getattr(config, "quantization_config", None) or getattr(config, STASH_KEY, None)


def checkpoint_is_block_fp8(config) -> bool:
    return is_block_fp8(_quant_config(config))


def dequantize_on_load(config) -> bool:
    return bool(getattr(config, STASH_KEY, None))


def block_size(config) -> tuple[int, int]:
    block = (_quant_config(config) or {}).get("weight_block_size") or BLOCK_SIZE
    return int(block[0]), int(block[1])


def with_scales(specs: dict[str, TensorSpec], block: tuple[int, int] = BLOCK_SIZE) -> dict[str, TensorSpec]:
    """Add the ``weight_scale_inv`` tensors a block-FP8 checkpoint stores beside each quantized weight."""
    out = dict(specs)
    for name, spec in specs.items():
        if spec.quantized:
            out[name + SCALE_SUFFIX] = TensorSpec(scale_shape(spec.shape, block))
    return out


def expected_tensors(specs: dict[str, TensorSpec], config) -> dict[str, TensorSpec]:
    """A model's tensor table as its checkpoint stores it: with scales when the config is block-FP8."""
    return with_scales(specs, block_size(config)) if checkpoint_is_block_fp8(config) else specs


def dequantized(
    weights: Iterable[tuple[str, torch.Tensor]],
    block: tuple[int, int] = BLOCK_SIZE,
    dtype: torch.dtype = torch.bfloat16,
) -> Iterator[tuple[str, torch.Tensor]]:
    """Pair each float8 ``*.weight`` with its ``*.weight_scale_inv`` (in either order) and yield BF16."""
    pending: dict[str, torch.Tensor] = {}
    for name, tensor in weights:
        if name.endswith(".weight" + SCALE_SUFFIX):
            base = name.removesuffix(SCALE_SUFFIX)
        elif tensor.dtype == FP8_DTYPE:
            base = name
        else:
            yield name, tensor
            continue
        other = pending.pop(base if base != name else base + SCALE_SUFFIX, None)
        if other is None:
            pending[name] = tensor
            continue
        weight, scale = (tensor, other) if base == name else (other, tensor)
        yield base, dequantize_block_fp8(weight, scale, block, dtype=dtype)
    if pending:
        raise ValueError(f"FP8 checkpoint tensors without their weight/scale twin: {sorted(pending)[:8]}")
