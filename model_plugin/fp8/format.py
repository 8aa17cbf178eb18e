"""Block-wise FP8 as AntAngelMed-FP8 ships it: float8_e4m3fn weights, one float32 scale per block.

``weight ~= fp8_weight * weight_scale_inv`` with the scale broadcast over its block; edge blocks
of shapes that are not multiples of the block are ragged (the scale shape is ceil-divided).
Only the linear projections are quantized (see :func:`is_quantizable_linear`). The generator
writes FP8 twins with :func:`quantize_for_checkpoint`; the plugin's CPU fallback and the
reference read them back with :func:`dequantize_block_fp8`.
"""

from __future__ import annotations

import torch

# The one definition of the block size: AntAngelMed-FP8's `weight_block_size`, and the default
# wherever a config does not say.
BLOCK_SIZE: tuple[int, int] = (128, 128)
FP8_DTYPE = torch.float8_e4m3fn
FP8_MAX = float(torch.finfo(FP8_DTYPE).max)  # 448
QUANTIZATION_CONFIG = {
    "quant_method": "fp8",
    "activation_scheme": "dynamic",
    "weight_block_size": list(BLOCK_SIZE),
    "fmt": "e4m3",
}
SCALE_SUFFIX = "_scale_inv"  # "x.weight" -> "x.weight_scale_inv"


def is_quantizable_linear(name: str) -> bool:
    """True for the projections a block-FP8 AntAngelMed checkpoint stores in float8.

    The router gate, expert_bias, norms, embeddings and lm_head stay in their own dtype.
    """
    if not name.endswith(".weight") or name.startswith("lm_head"):
        return False
    return (
        ".attention.query_key_value." in name
        or ".attention.dense." in name
        or name.endswith(("gate_proj.weight", "up_proj.weight", "down_proj.weight"))
    )


def scale_shape(shape: tuple[int, ...], block: tuple[int, int] = BLOCK_SIZE) -> tuple[int, int]:
    """Shape of weight_scale_inv for a 2-D weight: one entry per (possibly ragged) block."""
    rows, cols = shape
    return -(-rows // block[0]), -(-cols // block[1])


def _expand_scales(scale_inv: torch.Tensor, shape: tuple[int, int], block: tuple[int, int]) -> torch.Tensor:
    """Broadcast [ceil(R/br), ceil(C/bc)] scales to the weight's [R, C], cropping edge blocks."""
    rows, cols = shape
    full = scale_inv.float().repeat_interleave(block[0], dim=0).repeat_interleave(block[1], dim=1)
    return full[:rows, :cols]


def quantize_block_fp8(
    weight: torch.Tensor, block: tuple[int, int] = BLOCK_SIZE
) -> tuple[torch.Tensor, torch.Tensor]:
    """Quantize a 2-D weight: returns (float8_e4m3fn weight, float32 scale_inv per block).

    Each block's absolute max maps to FP8's max (448), so no value saturates.
    """
    if weight.dim() != 2:
        raise ValueError(f"block FP8 needs a 2-D weight, got shape {tuple(weight.shape)}")
    rows, cols = weight.shape
    sr, sc = scale_shape((rows, cols), block)
    w32 = weight.float()
    padded = torch.zeros(sr * block[0], sc * block[1], dtype=torch.float32)
    padded[:rows, :cols] = w32
    amax = padded.view(sr, block[0], sc, block[1]).abs().amax(dim=(1, 3))  # [sr, sc]
    # An all-zero block gets scale 1 (any scale would do; avoid 0/0).
    scale_inv = torch.where(amax > 0, amax / FP8_MAX, torch.ones_like(amax))
    scaled = w32 / _expand_scales(scale_inv, (rows, cols), block)
    q = scaled.clamp(-FP8_MAX, FP8_MAX).to(FP8_DTYPE)
    return q.contiguous(), scale_inv.contiguous()


def dequantize_block_fp8(
    weight: torch.Tensor,
    scale_inv: torch.Tensor,
    block: tuple[int, int] = BLOCK_SIZE,
    *,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """fp8 weight [R, C] * scale_inv [ceil(R/br), ceil(C/bc)] broadcast per block -> dtype."""
    if weight.dim() != 2:
        raise ValueError(f"block FP8 needs a 2-D weight, got shape {tuple(weight.shape)}")
    rows, cols = weight.shape
    block = (int(block[0]), int(block[1]))
    expected = scale_shape((rows, cols), block)
    if tuple(scale_inv.shape) != expected:
        raise ValueError(
            f"weight_scale_inv shape {tuple(scale_inv.shape)} does not match weight "
            f"{(rows, cols)} with block {block} (expected {expected})"
        )
    return (weight.float() * _expand_scales(scale_inv, (rows, cols), block)).to(dtype)


def quantize_for_checkpoint(name: str, tensor: torch.Tensor) -> dict[str, torch.Tensor]:
    """Writer hook: linear projections become fp8 + scale; everything else is kept as is."""
    if not is_quantizable_linear(name):
        return {name: tensor}
    q, scale_inv = quantize_block_fp8(tensor)
    return {name: q, name + SCALE_SUFFIX: scale_inv}
