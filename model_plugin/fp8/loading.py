"""Block-wise FP8 checkpoints (AntAngelMed-FP8) and the CPU dequantize-at-load fallback.

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

from model_plugin.checkpoints.fp8 import dequantize_block_fp8

FALLBACK_ENV = "ANTANGELMED_FP8_FALLBACK"
# Where the config class keeps a quantization_config it moved aside for the fallback.
STASH_KEY = "dequantized_quantization_config"
DEFAULT_BLOCK = (128, 128)


def is_block_fp8(quant_config: dict | None) -> bool:
    return bool(quant_config) and quant_config.get("quant_method") == "fp8" and bool(
        quant_config.get("weight_block_size"))


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
    block = (_quant_config(config) or {}).get("weight_block_size") or DEFAULT_BLOCK
    return int(block[0]), int(block[1])


def dequantized(weights: Iterable[tuple[str, torch.Tensor]], block: tuple[int, int] = DEFAULT_BLOCK,
                dtype: torch.dtype = torch.bfloat16) -> Iterator[tuple[str, torch.Tensor]]:
    """Pair each float8 ``*.weight`` with its ``*.weight_scale_inv`` (in either order) and yield BF16."""
    pending: dict[str, torch.Tensor] = {}
    for name, tensor in weights:
        if name.endswith(".weight_scale_inv"):
            base = name.removesuffix("_scale_inv")
        elif tensor.dtype == torch.float8_e4m3fn:
            base = name
        else:
            yield name, tensor
            continue
        other = pending.pop(base if base != name else base + "_scale_inv", None)
        if other is None:
            pending[name] = tensor
            continue
        weight, scale = (tensor, other) if base == name else (other, tensor)
        yield base, dequantize_block_fp8(weight, scale, block, dtype=dtype)
    if pending:
        raise ValueError(f"FP8 checkpoint tensors without their weight/scale twin: {sorted(pending)[:8]}")
