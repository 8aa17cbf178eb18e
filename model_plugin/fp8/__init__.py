"""Block-wise FP8 (AntAngelMed-FP8), in one place.

- :mod:`.format`: the format itself: the block size (defined once, ``BLOCK_SIZE``), which
  projections are quantized, quantize / dequantize, the ``quantization_config`` an FP8 twin
  carries and the writer hook the checkpoint generator uses for ``--fp8``.
- :mod:`.loading`: what the model's loader does with such a checkpoint: the ``weight_scale_inv``
  tensors it expects, and the CPU dequantize-at-load fallback (vLLM's CPU build has no block-FP8
  kernel).

Imports only torch and the standard library (vLLM only when the fallback asks which platform it
runs on), so the checkpoint generator can use it without vLLM.
"""

from .format import (
    BLOCK_SIZE,
    FP8_DTYPE,
    FP8_MAX,
    QUANTIZATION_CONFIG,
    SCALE_SUFFIX,
    dequantize_block_fp8,
    is_quantizable_linear,
    quantize_block_fp8,
    quantize_for_checkpoint,
    scale_shape,
)
from .loading import (
    FALLBACK_ENV,
    STASH_KEY,
    block_size,
    checkpoint_is_block_fp8,
    dequantize_on_load,
    dequantized,
    expected_tensors,
    is_block_fp8,
    should_dequantize,
    with_scales,
)

__all__ = [
    "BLOCK_SIZE",
    "FALLBACK_ENV",
    "FP8_DTYPE",
    "FP8_MAX",
    "QUANTIZATION_CONFIG",
    "SCALE_SUFFIX",
    "STASH_KEY",
    "block_size",
    "checkpoint_is_block_fp8",
    "dequantize_block_fp8",
    "dequantize_on_load",
    "dequantized",
    "expected_tensors",
    "is_block_fp8",
    "is_quantizable_linear",
    "quantize_block_fp8",
    "quantize_for_checkpoint",
    "scale_shape",
    "should_dequantize",
    "with_scales",
]
